"""The README's set-up commands and CI stay the same commands."""

from __future__ import annotations

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]


def _command_after(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(re.escape(heading) + r".*?```sh\n(.+?)\n```", text, re.S)
    assert match, f"README has no command block after {heading!r}"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    command = _command_after("Run the tests:")
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert command in lines, f".ci/run does not run {command!r}"


def test_main_job_command_names_the_cli():
    assert _command_after("Run the main job").endswith(".venv/bin/wcce-conformance run")
