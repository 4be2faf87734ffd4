"""The pytest plugin loads in every pytest session of an environment where the suite is
installed: an unrelated session must not pay for the protocol stack (bench/bench_plugin.py
measures the time; this says what is imported)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scapy", "cryptography", "jinja2", "jsonschema", "impacket", "conformance.judge",
         "conformance.refca", "conformance.wire", "conformance.commands.pytest_run")

CONFTEST = f'''
import sys

def pytest_sessionfinish(session):
    print("\\nLOADED=" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
'''


def _loaded(directory, *extra) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *extra,
                          str(directory)], capture_output=True, text=True, cwd=directory, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("LOADED="))
    return [m for m in line[len("LOADED="):].split(",") if m]


def test_an_unrelated_session_imports_nothing_heavy(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_unrelated.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    assert _loaded(tmp_path) == []


def test_the_probe_sees_heavy_imports(tmp_path):
    """The probe itself can fail: a session that imports the judge is reported."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_related.py").write_text("import conformance.judge.checks\n\ndef test_one():\n    pass\n")
    assert {"scapy", "conformance.judge", "conformance.wire"} <= set(_loaded(tmp_path))
