"""examples/ci: every wcce-conformance command the CI examples run parses as the CLI reads it,
and the shards are cut and joined the way the README says."""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

from conformance.commands.cli import build_parser

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples" / "ci"
FILES = sorted(EXAMPLES.glob("*.yml"))


def _commands(path: pathlib.Path) -> list[list[str]]:
    found = []
    for line in path.read_text().splitlines():
        match = re.search(r"(?:run:|- )\s*(wcce-conformance .*?)(?:\s*\|\|.*)?$", line)
        if match and not line.lstrip().startswith("#"):
            found.append(shlex.split(match.group(1).replace("${{ matrix.shard }}", "1"))[1:])
    return found


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_command_parses(path):
    commands = _commands(path)
    assert {c[0] for c in commands} == {"run", "report", "gate"}, commands
    parser = build_parser()
    for argv in commands:
        parser.parse_args([a.replace('"', "") for a in argv])  # argparse exits on an unknown option
    runs = [c for c in commands if c[0] == "run"]
    assert all("--shard" in c for c in runs)
    assert any(c[:2] == ["report", "merge"] and "--out" in c for c in commands)
