"""Runs of the main job shared by the report tests: the whole suite against the
embedded reference CA, and a selection against a mutant."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from conformance.report.results import load_results


class Run:
    def __init__(self, directory: pathlib.Path, returncode: int, stderr: str) -> None:
        self.dir = directory
        self.returncode = returncode
        self.stderr = stderr

    @property
    def document(self) -> dict:
        return load_results(self.dir / "results.json")


def run_main_job(base: pathlib.Path, *args: str) -> Run:
    result = subprocess.run([sys.executable, "-m", "conformance", "run", "--report-dir", str(base), *args],
                            capture_output=True, text=True, timeout=900, env=dict(os.environ))
    (directory,) = [p for p in base.iterdir() if p.is_dir()]
    return Run(directory, result.returncode, result.stderr + result.stdout[-4000:])


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> Run:
    """Every case against the embedded reference CA, two workers."""
    return run_main_job(tmp_path_factory.mktemp("reference"), "-n", "2")


@pytest.fixture(scope="session")
def mutant_run(tmp_path_factory) -> Run:
    """The CA-name and interface-version cases against a CA that ignores the CA name."""
    return run_main_job(tmp_path_factory.mktemp("mutant"), "--mutant", "ignore-ca-name",
                        "--case", "wcce/3.2.1.4.2.1.1/", "--case", "wcce/2.1/interface-version/")
