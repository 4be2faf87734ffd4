"""Evidence that opens decrypted: a run's pcapng and, with --evidence-secrets, the keytab that
lets tshark (a second, independent dissector) unseal the ICertRequestD stubs, NTLM and
Kerberos alike; without it, no key is written, and DECRYPT.txt says how."""

from __future__ import annotations

import pathlib
import stat
import subprocess

import pytest

from tests.integration.test_run_cli import cli
from tests.support import tools

pytestmark = pytest.mark.tshark

REQUESTS = ("privacy/ntlm-l6-imp3/Request or privacy/spnego-ntlm-l6-imp3/Request or "
            "privacy/kerberos-l6-imp3/Request or privacy/spnego-kerberos-l6-imp3/Request")
CA_NAME = "WCCE-LAB-CA".encode("utf-16-le").hex()


def _pcaps(tmp_path: pathlib.Path) -> pathlib.Path:
    (run_dir,) = tmp_path.iterdir()
    return run_dir / "pcap"


def _request_stubs(tshark: str, pcap: pathlib.Path, *options: str) -> list[str]:
    """The decrypted stub of every opnum-3 (ICertRequestD::Request) request tshark unseals."""
    fields = subprocess.run([tshark, "-r", str(pcap), *options, "-Y", "dcerpc.pkt_type == 0 && dcerpc.opnum == 3",
                             "-T", "fields", "-e", "dcerpc.decrypted_stub_data"],
                            capture_output=True, text=True, timeout=60).stdout
    return [line.replace(":", "") for line in fields.splitlines() if line.strip()]


def test_with_the_secrets_tshark_unseals_every_request_ntlm_and_kerberos(tmp_path):
    tshark = tools.tshark()
    result = cli("run", "--evidence-secrets", "--report-dir", str(tmp_path), "-k", REQUESTS)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    pcaps = _pcaps(tmp_path)
    keytab = pcaps / "secrets" / "wcce.keytab"
    assert stat.S_IMODE(keytab.stat().st_mode) == 0o600
    assert not list((pcaps / "secrets").glob("part-*"))  # the workers' parts are joined
    decrypt = (pcaps / "DECRYPT.txt").read_text()
    assert "-o kerberos.decrypt:TRUE -o kerberos.file:secrets/wcce.keytab" in decrypt
    files = sorted(pcaps.glob("*_Request.pcapng"))  # (the selection also matches Request2)
    assert {f.name.split("_privacy_")[1].split("-l6")[0] for f in files} == {"ntlm", "spnego-ntlm", "kerberos",
                                                                               "spnego-kerberos"}
    for pcap in files:
        opened = _request_stubs(tshark, pcap, "-o", "kerberos.decrypt:TRUE", "-o", f"kerberos.file:{keytab}")
        assert opened and all(CA_NAME in stub for stub in opened), pcap.name  # the CA name, in the clear
        assert not _request_stubs(tshark, pcap), pcap.name  # and nothing without the keys


def test_without_the_flag_no_key_is_written_and_decrypt_txt_says_how(tmp_path):
    result = cli("run", "--report-dir", str(tmp_path), "-k", "privacy/ntlm-l6-imp3/Request")
    assert result.returncode == 0, result.stderr
    pcaps = _pcaps(tmp_path)
    assert not (pcaps / "secrets").exists()
    decrypt = (pcaps / "DECRYPT.txt").read_text()
    assert "without --evidence-secrets" in decrypt and "ntlmssp.nt_password:PASSWORD" in decrypt
