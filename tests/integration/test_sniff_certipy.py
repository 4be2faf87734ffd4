"""The same Transcript, built from an interface capture of ``certipy req -dcom``.

certipy (through impacket) authenticates with raw NTLM, auth_type 10, not
SPNEGO: WCCE-T-06 must fail on its wire while what it does right passes.
"""

from __future__ import annotations

import os

import pytest

from conformance.capture.sniff import Sniffer
from conformance.wire.gss import nt_hash
from conformance.judge import checks
from conformance.model.verdicts import Verdict
from conformance.wire.rpc import PType
from conformance.wire.transcript import build_transcript
from tests.conftest import CA_NAME, USERS
from tests.integration.test_certipy import run_certipy

pytestmark = pytest.mark.interop


def test_certipy_transcript(ca, tmp_path):
    if ca.activation_port != 135 or os.geteuid() != 0:
        pytest.skip("certipy needs port 135 and sniffing lo needs root")
    host = ca.config.listen.host
    with Sniffer(host=host) as sniffer:
        result = run_certipy(host, tmp_path, "-template", "User", "-out", "alice")
    assert result.returncode == 0, result.stdout + result.stderr
    sniffer.write_pcapng(tmp_path / "certipy.pcapng")
    t = build_transcript(sniffer.chunks, sniffer.connections,
                         identities={"alice": nt_hash(USERS["alice"])})
    assert not t.garbage and len(t.connections) == 2
    assert {p.sec_trailer.auth_type for p in t.pdus if p.sec_trailer} == {10}
    assert t.of_type(PType.AUTH3)  # raw NTLM's third leg
    request = next(p for p in t.of_type(PType.REQUEST) if p.decoded and p.decoded.name == "Request_Request")
    assert request.verified and request.decoded.packet.valueof("pwszAuthority") == CA_NAME.encode()

    provider = checks.security_provider(t)
    assert provider.verdict is Verdict.FAIL
    assert provider.actual == "auth_type 10" and provider.evidence
    known = [CA_NAME.encode("utf-16-le"), "CertificateTemplate:User".encode("utf-16-le")]
    passing = [checks.interface_version(t), checks.auth_type_consistent(t), checks.auth_level(t),
               checks.stub_confidentiality(t, known), checks.impersonation_flags(t),
               checks.privacy_requested(t), checks.not_anonymous(t)]
    assert all(r.verdict is Verdict.PASS for r in passing), [r for r in passing if not r.passed]
