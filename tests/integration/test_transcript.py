"""Tap → transcript → checks, for every level and both NTLM carriers, against the reference CA."""

from __future__ import annotations

import pytest

from conformance.capture.tap import Tap
from conformance.client import methods
from conformance.client.settings import ClientSettings, Provider
from conformance.client.session import WcceSession
from conformance.refca.config import Policy
from conformance.wire.gss import nt_hash
from conformance.judge import checks
from conformance.model.verdicts import Verdict
from conformance.wire.rpc import PType
from conformance.wire.wcce import InterfaceFlag
from tests.conftest import CA_NAME, USERS

RELAXED = Policy(interface_flags=InterfaceFlag(0), activation_min_level=1, exporter_min_level=1)
IDENTITIES = {"alice": nt_hash(USERS["alice"])}
ATTRIBUTES = "CertificateTemplate:User"


def settings_for(ca, provider: Provider, level: int, **knobs) -> ClientSettings:
    auth = {} if provider is Provider.NONE else {"user": "alice", "domain": "lab.test",
                                                 "password": USERS["alice"]}
    return ClientSettings(host=ca.config.listen.host, port=ca.activation_port, provider=provider,
                          level=level, **auth, **knobs)


def enroll(settings: ClientSettings, csr: bytes):
    tap = Tap()
    session = WcceSession.from_settings(settings, tap=tap)
    try:
        _, activation = session.activate()
        result = None
        if activation is not None and activation.status == 0:
            session.connect_exporter()
            result = session.call(methods.request(CA_NAME, csr, template="User"))
    finally:
        session.close()
    return tap, result


@pytest.fixture(scope="module")
def relaxed_ca(tmp_path_factory):
    import dataclasses

    from conformance.refca.ca import ReferenceCA
    from conformance.refca.config import load_config
    from tests.support.hosts import can_bind_privileged, fresh_loopback

    config = load_config(None, host=fresh_loopback(), port=135 if can_bind_privileged() else 0,
                         ca_name=CA_NAME, state_dir=tmp_path_factory.mktemp("transcript"),
                         users={n: nt_hash(p) for n, p in USERS.items()})
    ca = ReferenceCA(dataclasses.replace(config, policy=RELAXED)).start()
    yield ca
    ca.stop()


CARRIERS = [Provider.SPNEGO_NTLM, Provider.NTLM]


@pytest.mark.parametrize("provider", CARRIERS, ids=lambda p: p.value)
@pytest.mark.parametrize("level", [2, 4, 5, 6])  # a bind at CALL (3) is refused: test_levels.py
def test_transcript_of_every_level(relaxed_ca, provider, level):
    csr = methods.new_pkcs10(f"transcript-{provider.value}-{level}")
    tap, result = enroll(settings_for(relaxed_ca, provider, level), csr)
    assert result is not None and result.response.pdwDisposition == 3
    t = tap.transcript(IDENTITIES)
    assert not t.garbage
    binds = t.of_type(PType.BIND, PType.ALTER_CONTEXT)
    assert binds and all(c.if_version == 0 for b in binds for c in b.contexts)
    # sec_trailers: the negotiated provider everywhere; the call level on the WCCE connection
    assert {p.sec_trailer.auth_type for p in t.pdus if p.sec_trailer} == {provider.auth_type}
    wcce_conn = checks.wcce_connections(t)
    calls = [p for p in t.pdus if p.conn in wcce_conn and p.ptype in (PType.REQUEST, PType.RESPONSE)]
    assert len(calls) == 2
    for pdu in calls:
        if level == 2:
            assert pdu.sec_trailer is None
        else:
            assert pdu.sec_trailer.auth_level == level and pdu.verified is True
        assert pdu.decoded.ok, pdu.decoded.error
    request_pdu = calls[0]
    assert request_pdu.decoded.name == "Request_Request"
    assert request_pdu.decoded.packet.valueof("pwszAuthority") == CA_NAME.encode()
    assert bytes(request_pdu.decoded.packet.pctbRequest.valueof("pb")) == csr
    # ciphertext at privacy, plaintext below it
    assert (csr in request_pdu.body) is (level < 6)
    assert (csr in request_pdu.plain) is True

    verdicts = {c.check: c.verdict for c in [
        checks.interface_version(t), checks.auth_type_consistent(t),
        checks.stub_confidentiality(t, [csr, CA_NAME.encode("utf-16-le")]),
        checks.impersonation_flags(t), checks.not_anonymous(t),
        checks.auth_level(t), checks.security_provider(t), checks.even_legs(t)]}
    assert verdicts["interface-version"] is Verdict.PASS
    assert verdicts["auth-type-consistent"] is Verdict.PASS
    assert verdicts["stub-confidentiality"] is Verdict.PASS
    assert verdicts["impersonation-flags"] is Verdict.PASS
    assert verdicts["not-anonymous"] is Verdict.PASS
    assert verdicts["auth-level"] is (Verdict.PASS if level == 6 else Verdict.WARN)
    assert verdicts["security-provider"] is (Verdict.PASS if provider.auth_type == 9 else Verdict.FAIL)
    assert verdicts["even-legs"] is (Verdict.PASS if provider.auth_type == 9 else Verdict.NA)
    if provider.auth_type == 9:
        assert checks.spnego_mechanism(t).actual == "NTLM"


def test_transcript_of_level_none(relaxed_ca):
    tap, result = enroll(settings_for(relaxed_ca, Provider.NONE, 1), methods.new_pkcs10("none"))
    t = tap.transcript(IDENTITIES)
    assert all(p.sec_trailer is None for p in t.pdus)
    assert checks.auth_level(t).verdict is Verdict.WARN
    assert checks.security_provider(t).verdict is Verdict.NA  # nothing authenticated
    assert checks.stub_confidentiality(t, [CA_NAME.encode("utf-16-le")]).verdict is Verdict.PASS


def test_without_keys_sealed_stubs_are_inconclusive(relaxed_ca):
    tap, _ = enroll(settings_for(relaxed_ca, Provider.SPNEGO_NTLM, 6), methods.new_pkcs10("nokeys"))
    t = tap.transcript({})  # credentials unknown to the judge
    result = checks.stub_confidentiality(t, [CA_NAME.encode("utf-16-le")])
    assert result.verdict is Verdict.INCONCLUSIVE


def test_server_alive2_knob(relaxed_ca):
    tap, _ = enroll(settings_for(relaxed_ca, Provider.SPNEGO_NTLM, 6, server_alive2=True),
                    methods.new_pkcs10("sa2"))
    t = tap.transcript(IDENTITIES)
    first = [p for p in t.pdus if p.conn == 1]
    assert first[0].sec_trailer is None  # "MUST NOT specify security" for ServerAlive2
    assert first[-1].decoded.name == "ServerAlive2_Response"
