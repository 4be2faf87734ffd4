"""The suite as users deploy it: built as a wheel, installed into a fresh venv, run in an empty
directory outside any checkout (the case tables, requirements, ledger, schema, templates and
example profiles all come from the wheel)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, wheel): the wheel built from this checkout, installed with its dependencies from
    the package registry into a venv that has never seen the checkout."""
    scratch = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
                  "-w", str(scratch / "dist"), str(REPO)])
    if built.returncode != 0:
        pytest.fail(f"pip wheel failed: {built.stderr[-2000:]}")
    (wheel,) = (scratch / "dist").glob("wcce_conformance-*.whl")
    venv = scratch / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = _run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)])
    if done.returncode != 0:
        pytest.fail(f"pip install of the wheel failed: {done.stderr[-2000:]}")
    return venv, wheel


def test_the_wheel_runs_the_suite_in_an_empty_directory(installed, tmp_path):
    venv, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("conformance/_shipped/cases/2_1_binding.toml", "conformance/_shipped/cases/client/wcce_2_1_client.toml",
                    "conformance/_shipped/examples/adcs-lab.toml", "conformance/model/requirements.toml",
                    "conformance/model/ledger.toml", "conformance/report/results.schema.json"):
        assert shipped in names, shipped
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = _run([str(venv / "bin" / "wcce-conformance"), "run", "-k", "interface-version"], cwd=empty, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (run_dir,) = (empty / "reports").iterdir()
    assert {"results.json", "report.html", "junit.xml", "pcap"} <= {p.name for p in run_dir.iterdir()}
    document = json.loads((run_dir / "results.json").read_text())
    assert len(document["cases"]) == 12 and {c["verdict"] for c in document["cases"]} == {"PASS"}
    # the tables it ran are the wheel's own, not this checkout's
    located = _run([str(venv / "bin" / "python"), "-c", "from conformance.model.shipped import CASES_DIR, installed; "
                    "print(installed(), CASES_DIR)"], cwd=empty, env=env)
    flag, where = located.stdout.split()
    assert flag == "True" and str(venv) in where and str(REPO) not in where
    listed = _run([str(venv / "bin" / "wcce-conformance"), "cases", "--list", "--case", "wcce/2.1/interface-version/"],
                  cwd=empty, env=env)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 12
