"""conformance.wire stays sans-IO: no sockets, threads, selectors or sleeps (style rule 1)."""

from __future__ import annotations

import ast
import pathlib

import conformance.wire

FORBIDDEN_MODULES = {"socket", "select", "selectors", "threading", "asyncio", "subprocess",
                     "scapy.sendrecv", "scapy.supersocket"}


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Attribute) and node.attr == "sleep":
            yield "time.sleep"


def test_wire_modules_do_no_io():
    root = pathlib.Path(conformance.wire.__file__).parent
    offenders = {}
    for path in root.rglob("*.py"):
        names = set(_imports(ast.parse(path.read_text())))
        bad = {n for n in names if n in FORBIDDEN_MODULES or n == "time.sleep"}
        if bad:
            offenders[path.name] = bad
    assert offenders == {}
