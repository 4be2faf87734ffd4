"""The package's layers import one way, and no module imports itself round a cycle.

Every import counts, at the top of a module or inside a function: an import deferred
for speed is still a dependency.  README "Architecture" draws the same picture.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import conformance

ROOT = pathlib.Path(conformance.__file__).parent

#: What each part of ``conformance`` may import besides itself (lowest first).
ALLOWED: dict[str, frozenset[str]] = {
    "model": frozenset(),  # vocabulary, catalogue, case tables, profiles: no scapy, no I/O
    "wire": frozenset({"model"}),  # sans-IO protocol: PDUs, NDR, protection, transcript
    "client": frozenset({"model", "wire"}),
    "capture": frozenset({"model", "wire"}),
    "refca": frozenset({"model", "wire"}),  # the reference CA knows nothing of the suite
    "judge": frozenset({"model", "wire", "client", "capture"}),  # ...and the suite nothing of it
    "report": frozenset({"model"}),  # results.json in, HTML/JUnit/gate out
    "targets": frozenset({"model", "wire", "refca"}),
    "mutation": frozenset({"model", "wire", "client", "capture", "refca", "judge", "targets"}),
    "commands": frozenset({"model", "wire", "client", "capture", "refca", "judge", "report", "targets",
                           "mutation"}),
    "testkit": frozenset({"model", "wire", "client", "capture", "refca"}),  # fuzzing, synthetic data
    "plugin": frozenset({"commands"}),  # the pytest entry point
    "__main__": frozenset({"commands"}),
    "__init__": frozenset(),
}

#: Parts that must stay sans-IO (style rule 1): no sockets, threads, selectors or sleeps.
SANS_IO = ["model", "wire", "report", "judge/checks.py", "judge/outcome.py", "judge/clientcases.py", "judge/decide.py",
           "judge/evidence.py", "judge/errors.py"]
IO_MODULES = {"socket", "select", "selectors", "threading", "asyncio", "subprocess", "scapy.sendrecv",
              "scapy.supersocket"}


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """``conformance.judge.engine`` -> ``judge``; ``conformance.plugin`` -> ``plugin``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: pathlib.Path, known: set[str], root: pathlib.Path = ROOT) -> set[str]:
    """The ``conformance`` modules ``path`` imports, wherever in it the import stands."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t == "conformance" or t.startswith("conformance."))
    return found - {module}


def graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    return {m: imports_of(p, set(paths), root) for m, p in paths.items()}


def direction_violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(edges.items()):
        source = part_of(module)
        for target in sorted(targets):
            wanted = part_of(target)
            if target == "conformance" and module.endswith(("commands.cli", "commands.pytest_run",
                                                              "commands.probe_client")):
                continue  # the package's __version__
            if wanted != source and wanted not in ALLOWED[source]:
                bad.append(f"{module} imports {target} ({source} may import only "
                           f"{', '.join(sorted(ALLOWED[source])) or 'nothing'})")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of modules larger than one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in edges:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_every_part_is_declared():
    parts = {part_of(m) for m in graph()}
    assert parts <= set(ALLOWED), parts - set(ALLOWED)


def test_layers_import_one_way():
    assert direction_violations(graph()) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


@pytest.mark.parametrize("part", SANS_IO)
def test_sans_io_parts_do_no_io(part):
    where = ROOT / part
    files = [where] if where.is_file() else sorted(where.rglob("*.py"))
    offenders = {}
    for path in files:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Attribute) and node.attr == "sleep":
                names.add("time.sleep")
        bad = {n for n in names if n in IO_MODULES or n == "time.sleep"}
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_model_does_not_load_scapy():
    """The vocabulary, catalogue and case tables load without the protocol stack."""
    for path in (ROOT / "model").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.startswith(("scapy", "cryptography", "impacket")) for n in names), path


# -- the test proves it can fail: a lower layer importing a higher one, and a cycle ------------


def _package(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / "conformance"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_lower_layer_importing_a_higher_one_is_caught(tmp_path):
    root = _package(tmp_path, {
        "wire/__init__.py": "", "wire/pdu.py": "def build():\n    from conformance.judge.checks import CHECKS\n",
        "judge/__init__.py": "", "judge/checks.py": "from conformance.wire.pdu import build\nCHECKS = {}\n"})
    violations = direction_violations(graph(root))
    assert violations == ["conformance.wire.pdu imports conformance.judge.checks (wire may import only model)"]
    assert cycles(graph(root)) == [["conformance.judge.checks", "conformance.wire.pdu"]]


def test_peers_may_not_import_each_other(tmp_path):
    root = _package(tmp_path, {
        "judge/__init__.py": "", "judge/engine.py": "from conformance.refca.ca import ReferenceCA\n",
        "refca/__init__.py": "", "refca/ca.py": "class ReferenceCA: ...\n"})
    assert direction_violations(graph(root)) == [
        "conformance.judge.engine imports conformance.refca.ca (judge may import only capture, client, model, wire)"]
