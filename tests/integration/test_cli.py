"""``wcce-conformance ca ...``: the reference CA on the command line."""

from __future__ import annotations


import signal
import socket
import subprocess
import sys
import time

import pytest

from conformance.commands.cli import main
from tests.conftest import USERS
from tests.support.hosts import can_bind_privileged, fresh_loopback
from tests.support.ourclient import open_session, request, security


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True,
                          text=True, timeout=timeout)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["ca", "serve", "--port", "banana"], "not a port number"),
    (["ca", "serve", "--port", "70000"], "not a TCP port"),
    (["ca", "serve", "--user", "nopassword"], "NAME:PASSWORD"),
    (["ca", "serve", "--host", "10.1.2.3"], "not a loopback address"),
    (["ca", "serve", "--config", "/nonexistent/ca.toml"], "cannot read configuration"),
    (["ca", "frobnicate"], "invalid choice"),
])
def test_bad_arguments_get_one_clear_line(args, fragment):
    assert fragment in _one_line_error(run_cli(*args))


def test_bad_configuration_gets_one_clear_line(tmp_path):
    config = tmp_path / "ca.toml"
    config.write_text('[ca]\nname = "X"\ncolour = "blue"\n')
    assert "unknown key(s) in [ca]: colour" in _one_line_error(run_cli("ca", "serve", "--config", str(config)))
    config.write_text('[users]\nalice = "Passw0rd"\n')
    assert "clear-text passwords are not stored" in _one_line_error(
        run_cli("ca", "serve", "--config", str(config)))
    config.write_text("[ca\n")
    assert "not valid TOML" in _one_line_error(run_cli("ca", "serve", "--config", str(config)))


def test_port_in_use_gets_one_clear_line(tmp_path):
    host = fresh_loopback()
    blocker = socket.socket()
    blocker.bind((host, 0))
    blocker.listen(1)
    try:
        result = run_cli("ca", "serve", "--host", host, "--port", str(blocker.getsockname()[1]),
                         "--state-dir", str(tmp_path), "--user", "alice:x")
        assert "cannot listen on" in _one_line_error(result)
    finally:
        blocker.close()


def test_serve_logs_each_call_and_stops_on_sigterm(tmp_path):
    host = fresh_loopback()
    port = 135 if can_bind_privileged() else 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "ca", "serve", "--host", host, "--port",
         str(port), "--state-dir", str(tmp_path), "--user", f"alice:{USERS['alice']}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        deadline = time.monotonic() + 30
        while "serving" not in banner and time.monotonic() < deadline:
            banner = proc.stderr.readline()
        assert "serving" in banner, banner
        activation_port = int(banner.split("activation ")[1].split(",")[0].rsplit(":", 1)[1])

        class _CA:  # what open_session needs to know about the CA
            class config:
                class listen:
                    pass
        _CA.config.listen.host = host
        _CA.activation_port = activation_port
        session = open_session(_CA, security(9, 6))
        assert session.call(request()).response.pdwDisposition == 3
        session.close()
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    calls = [line for line in err.splitlines() if " call " in line]
    assert any("opnum=3" in c and "auth_type=9" in c and "auth_level=6" in c and "response" in c
               for c in calls), err
    assert "Passw0rd" not in err  # no secret in the log


def test_approve_deny_and_list(ca_factory, tmp_path, capsys):
    state = tmp_path / "state"
    ca = ca_factory(state_dir=state)
    session = open_session(ca, security(9, 6))
    ids = [session.call(request(template="UserApproval")).response.pdwRequestId for _ in range(2)]
    session.close()
    ca.stop()
    assert main(["ca", "approve", str(ids[0]), "--state-dir", str(state)]) == 0
    assert main(["ca", "deny", str(ids[1]), "--state-dir", str(state)]) == 0
    assert main(["ca", "approve", "999", "--state-dir", str(state)]) == 2
    assert main(["ca", "list", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "issued" in out and "denied" in out



def test_enroll_writes_a_key_and_a_certificate_the_ca_issued(ca, tmp_path, monkeypatch, capsys):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from tests.support.certs import verify_issued

    monkeypatch.setenv("ENROLL_PW", USERS["alice"])
    out = tmp_path / "alice"
    status = main(["enroll", "--host", ca.config.listen.host, "--port", str(ca.activation_port),
                   "--ca", ca.config.ca_name, "--user", "alice", "--domain", "lab.test",
                   "--password-env", "ENROLL_PW", "--key", "ec-p256", "--out", str(out)])
    assert status == 0, capsys.readouterr()
    cert = x509.load_pem_x509_certificate(out.with_suffix(".crt").read_bytes())
    key = serialization.load_pem_private_key(out.with_suffix(".key").read_bytes(), None)
    verify_issued(cert, ca.ca.certificate)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert oct(out.with_suffix(".key").stat().st_mode & 0o777) == "0o600"
    assert USERS["alice"] not in capsys.readouterr().out


@pytest.mark.parametrize("extra, env, status, fragment", [
    ([], {}, 2, "ENROLL_PW is not set"),
    (["--template", "NoSuchTemplate"], {"ENROLL_PW": USERS["alice"]}, 1, "not issued"),
    ([], {"ENROLL_PW": "wrong"}, 1, "refused"),
])
def test_enroll_failures_are_one_line(ca, tmp_path, monkeypatch, capsys, extra, env, status, fragment):
    monkeypatch.delenv("ENROLL_PW", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["enroll", "--host", ca.config.listen.host, "--port", str(ca.activation_port),
                 "--ca", ca.config.ca_name, "--user", "alice", "--domain", "lab.test",
                 "--password-env", "ENROLL_PW", "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err
    assert code == status and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.crt").exists()
