"""``wcce-conformance run``, ``mutants`` and ``ca serve --mutant`` from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from conformance.model.cases import CASES_DIR
from tests.support.hosts import can_bind_privileged, fresh_loopback

REPO = CASES_DIR.parent


def cli(*args: str, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_run_writes_results_junit_and_pcaps(tmp_path):
    result = cli("run", "--report-dir", str(tmp_path), "--case", "wcce/2.1/interface-version/")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    (run_dir,) = tmp_path.iterdir()
    results = json.loads((run_dir / "results.json").read_text())["cases"]
    assert len(results) == 12 and {r["verdict"] for r in results} == {"PASS"}
    names = sorted(case.get("name") for case in ET.parse(run_dir / "junit.xml").getroot().iter("testcase"))
    assert names == sorted(r["id"] for r in results)  # stable name = case ID
    assert len(list((run_dir / "pcap").glob("*.pcapng"))) == 12
    assert (run_dir / "report.html").is_file()
    assert f"wrote {run_dir / 'report.html'}" in result.stderr


def test_run_against_a_mutant_fails(tmp_path):
    result = cli("run", "--report-dir", str(tmp_path), "--mutant", "ignore-ca-name", "--case", "wcce/3.2.1.4.2.1.1/")
    assert result.returncode == 1, result.stdout[-3000:]
    failed = [r["id"] for r in json.loads(next(tmp_path.iterdir()).joinpath("results.json").read_text())["cases"]
              if r["verdict"] == "FAIL"]
    assert failed and all("/ca-name/" in f for f in failed)


@pytest.mark.parametrize("args, fragment", [
    (["run", "--target", "/nonexistent.toml"], "cannot read target profile"),
    (["run", "-n", "0"], "use 1 to 64"),
    (["mutants", "--server", "nope"], "unknown server mutant(s) nope"),
    (["ca", "serve", "--mutant", "nope", "--host", "127.0.0.1", "--port", "0"], "unknown mutant 'nope'"),
])
def test_bad_arguments_are_one_line(args, fragment, tmp_path):
    result = cli(*args, "--state-dir", str(tmp_path)) if args[0] == "ca" else cli(*args)
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_mutants_list_names_every_mutant():
    from conformance.mutation.client import CLIENT_MUTANTS
    from conformance.mutation.server import MUTANTS

    result = cli("mutants", "--list")
    assert result.returncode == 0
    listed = {line.split()[1] for line in result.stdout.splitlines()}
    assert listed == set(MUTANTS) | set(CLIENT_MUTANTS)


def _serve(config_or_args: list[str]) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "ca", "serve", *config_or_args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "WCCE_LAB_PASSWORD": "Lab-Passw0rd!"})
    deadline = time.monotonic() + 30
    banner = ""
    while "serving" not in banner and time.monotonic() < deadline:
        banner = proc.stderr.readline()
        if not banner and proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
    address = banner.split("activation ")[1].split(",")[0]
    host, port = address.rsplit(":", 1)
    return proc, host, int(port)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def test_examples_run_against_a_served_reference_ca(tmp_path):
    """examples/embedded-ca.toml served, examples/embedded.toml as the target (host made fresh)."""
    host = fresh_loopback()
    port = 135 if can_bind_privileged() else 0
    config = (REPO / "examples" / "embedded-ca.toml").read_text()
    config = config.replace('host = "127.0.0.1"', f'host = "{host}"').replace(
        "activation_port = 135", f"activation_port = {port}").replace(
        'state_dir = "../state/embedded-ca"', f'state_dir = "{tmp_path / "state"}"')
    (tmp_path / "ca.toml").write_text(config)
    proc, host, port = _serve(["--config", str(tmp_path / "ca.toml")])
    try:
        profile = (REPO / "examples" / "embedded.toml").read_text().replace(
            'host = "127.0.0.1"', f'host = "{host}"').replace("activation_port = 135", f"activation_port = {port}")
        (tmp_path / "target.toml").write_text(profile)
        result = cli("run", "--report-dir", str(tmp_path / "reports"), "--target", str(tmp_path / "target.toml"),
                     "--case", "wcce/2.1/auth-level/privacy/", "--case", "wcce/3.2.1.4.2.1.3/pending/",
                     env={"WCCE_LAB_PASSWORD": "Lab-Passw0rd!"})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert "Lab-Passw0rd!" not in result.stdout + result.stderr
    finally:
        _stop(proc)


def test_served_mutant_is_caught_through_a_profile(tmp_path):
    host = fresh_loopback()
    port = 135 if can_bind_privileged() else 0
    proc, host, port = _serve(["--host", host, "--port", str(port), "--state-dir", str(tmp_path / "state"),
                               "--user", "wcce-suite:Lab-Passw0rd!", "--mutant", "accept-interface-version-1.0"])
    try:
        profile = (REPO / "examples" / "embedded.toml").read_text().replace(
            'host = "127.0.0.1"', f'host = "{host}"').replace("activation_port = 135", f"activation_port = {port}")
        (tmp_path / "target.toml").write_text(profile)
        result = cli("run", "--report-dir", str(tmp_path / "reports"), "--target", str(tmp_path / "target.toml"),
                     "--case", "wcce/2.1/interface-version/", env={"WCCE_LAB_PASSWORD": "Lab-Passw0rd!"})
        assert result.returncode == 1
        assert "FAIL wcce/2.1/interface-version/ICertRequestD/v1.0" in result.stdout
    finally:
        _stop(proc)


def test_run_without_port_135_uses_a_free_loopback_port(tmp_path):
    """Without CAP_NET_BIND_SERVICE (as a non-root user) the embedded CA takes a free port."""
    import shutil

    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    result = subprocess.run([setpriv, "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service",
                             sys.executable, "-m", "conformance", "run", "--report-dir", str(tmp_path),
                             "--case", "wcce/2.1/auth-level/privacy/spnego-ntlm-l6-imp3/"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    (run_dir,) = tmp_path.iterdir()
    results = json.loads((run_dir / "results.json").read_text())["cases"]
    assert len(results) == 7 and {c["verdict"] for c in results} == {"PASS"}
    servers = {conn["server"] for c in results for conn in c["evidence"]["connections"]}
    assert servers and all(not s.endswith(":135") for s in servers)


def test_a_wrong_password_in_the_profile_is_one_line_and_no_verdict(tmp_path):
    """A typo in a lab's credentials is the configuration's failure, not a non-conformant CA:
    exit 2, one line naming the account and what the target answered, no results written."""
    host = fresh_loopback()
    port = 135 if can_bind_privileged() else 0
    proc, host, port = _serve(["--host", host, "--port", str(port), "--state-dir", str(tmp_path / "state"),
                               "--user", "wcce-suite:Lab-Passw0rd!"])
    try:
        profile = (REPO / "examples" / "embedded.toml").read_text().replace(
            'host = "127.0.0.1"', f'host = "{host}"').replace("activation_port = 135", f"activation_port = {port}")
        (tmp_path / "target.toml").write_text(profile)
        result = cli("run", "--report-dir", str(tmp_path / "reports"), "--target", str(tmp_path / "target.toml"),
                     "--case", "wcce/2.1/auth-level/", env={"WCCE_LAB_PASSWORD": "Not-The-Passw0rd!"})
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert "[credentials] lab.test\\wcce-suite" in lines[0] and "refused this account's activation" in lines[0]
        assert "Not-The-Passw0rd!" not in result.stdout + result.stderr
        assert not list((tmp_path / "reports").glob("*/results.json"))
    finally:
        _stop(proc)
