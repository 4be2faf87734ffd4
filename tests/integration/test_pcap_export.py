"""A tapped transcript exported as pcapng is read, dissected and decrypted by tshark."""

from __future__ import annotations

import subprocess

import pytest

from conformance.capture.pcap import write_pcapng
from conformance.capture.sniff import read_capture
from conformance.client import methods
from conformance.client.settings import Provider
from conformance.wire.gss import nt_hash
from conformance.wire.transcript import build_transcript
from tests.conftest import USERS
from tests.integration.test_transcript import enroll, relaxed_ca, settings_for  # noqa: F401
from tests.support import tools

pytestmark = pytest.mark.tshark


def test_export_opens_in_tshark_with_real_endpoints(relaxed_ca, tmp_path):
    tap, _ = enroll(settings_for(relaxed_ca, Provider.SPNEGO_NTLM, 6), methods.new_pkcs10("pcap"))
    path = tmp_path / "case.pcapng"
    count = write_pcapng(path, tap.chunks, tap.connections)
    assert count > 10
    out = subprocess.run([tools.tshark(), "-r", str(path), "-o",
                          f"ntlmssp.nt_password:{USERS['alice']}", "-T", "fields", "-e", "ip.src",
                          "-e", "tcp.dstport", "-e", "_ws.col.Info"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "RemoteCreateInstance response" in out
    assert relaxed_ca.config.listen.host in out
    assert str(relaxed_ca.exporter_port) in out
    detail = subprocess.run([tools.tshark(), "-r", str(path), "-V"], capture_output=True, text=True,
                            timeout=60).stdout
    assert "Malformed" not in detail and "Long frame" not in detail
    # and the file reads back into the same transcript
    chunks, conns = read_capture(path)
    again = build_transcript(chunks, conns, identities={"alice": nt_hash(USERS["alice"])})
    original = tap.transcript({"alice": nt_hash(USERS["alice"])})
    assert [p.raw for p in again.pdus] == [p.raw for p in original.pdus]
