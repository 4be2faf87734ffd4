"""certipy-ad 5.1 ``req -dcom`` (its own Python 3.12 venv) enrolls against the reference CA."""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from conformance.wire.wcce import Disposition
from tests.conftest import CA_NAME, USERS
from tests.support import tools
from tests.support.certs import verify_issued

pytestmark = pytest.mark.interop


def run_certipy(host: str, workdir, *args: str) -> subprocess.CompletedProcess:
    # -ns/-dns-tcp/-dc-ip point every lookup certipy makes at the CA's loopback
    # address: nothing may leave the machine.
    command = [tools.certipy(), "req", "-u", "alice@lab.test", "-p", USERS["alice"],
               "-ca", CA_NAME, "-target", host, "-target-ip", host, "-dc-ip", host,
               "-ns", host, "-dns-tcp", "-dcom", "-timeout", "10", *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_certipy_req_dcom_gets_a_certificate_that_verifies(ca, tmp_path):
    if ca.activation_port != 135:
        pytest.skip("certipy -dcom always connects to port 135 (needs root)")
    result = run_certipy(ca.config.listen.host, tmp_path, "-template", "User", "-out", "alice")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully requested certificate" in result.stdout, result.stdout
    key, cert, _ = pkcs12.load_key_and_certificates((tmp_path / "alice.pfx").read_bytes(), None)
    verify_issued(cert, ca.ca.certificate)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    [row] = ca.store.issued()
    assert row.disposition == Disposition.ISSUED
    assert int(row.serial, 16) == cert.serial_number


def test_certipy_unknown_template_reports_the_ca_error(ca, tmp_path):
    if ca.activation_port != 135:
        pytest.skip("certipy -dcom always connects to port 135 (needs root)")
    result = run_certipy(ca.config.listen.host, tmp_path, "-template", "NoSuchTemplate")
    output = result.stdout + result.stderr
    assert "CERTSRV_E_UNSUPPORTED_CERT_TYPE" in output or "0x80094800" in output, output
    assert not (tmp_path / "alice.pfx").exists()
