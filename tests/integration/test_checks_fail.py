"""Every wire check can fail: on a recorded transcript with its property broken, or
on the wire of a client that breaks it on purpose."""

from __future__ import annotations

import dataclasses

import pytest

from conformance.client import methods
from conformance.client.settings import Provider
from conformance.wire.gss import nt_hash
from conformance.judge import checks
from conformance.model.verdicts import Verdict
from conformance.wire.framing import CommonHeader
from conformance.wire.passive import NtlmFlag
from conformance.wire.protection import SecTrailer
from conformance.wire.rpc import PType
from conformance.wire.transcript import Chunk, Transcript, build_transcript
from tests.conftest import CA_NAME, USERS
from tests.integration.test_transcript import enroll, relaxed_ca, settings_for  # noqa: F401

IDENTITIES = {"alice": nt_hash(USERS["alice"])}
CSR = methods.new_pkcs10("checks-fail")
KNOWN = [CSR, CA_NAME.encode("utf-16-le")]


@pytest.fixture(scope="module")
def recorded(relaxed_ca) -> Transcript:
    tap, result = enroll(settings_for(relaxed_ca, Provider.SPNEGO_NTLM, 6), CSR)
    assert result.response.pdwDisposition == 3
    return tap.transcript(IDENTITIES)


def rebuilt(t: Transcript, index: int, change) -> Transcript:
    """The transcript with PDU ``index`` replaced by ``change(raw)``, re-decoded."""
    chunks = [Chunk(conn=p.conn, direction=p.direction, time=p.time,
                    data=change(p.raw) if p.index == index else p.raw) for p in t.pdus]
    return build_transcript(chunks, t.connections, identities=IDENTITIES)


def patched(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value):]


def trailer_offset(raw: bytes) -> int:
    return SecTrailer.parse(raw, CommonHeader.parse(raw)).offset


def first(t: Transcript, ptype: int, *, wcce: bool = False):
    conns = checks.wcce_connections(t)
    return next(p for p in t.pdus if p.ptype == ptype and (not wcce or p.conn in conns))


def test_recorded_transcript_passes_everything(recorded):
    results = [checks.interface_version(recorded), checks.security_provider(recorded),
               checks.auth_type_consistent(recorded), checks.auth_level(recorded),
               checks.stub_confidentiality(recorded, KNOWN), checks.impersonation_flags(recorded),
               checks.privacy_requested(recorded), checks.not_anonymous(recorded),
               checks.even_legs(recorded)]
    assert [r.verdict for r in results] == [Verdict.PASS] * len(results), results


# -- mutations of a recorded transcript ----------------------------------------------------


def test_interface_version_fails_on_a_1_0_bind(recorded):
    bind = first(recorded, PType.BIND, wcce=True)
    # p_cont_elem[0]: header 16 + 12, cont_id 2, n_syn 1, reserved 1, UUID 16, then if_version
    t = rebuilt(recorded, bind.index, lambda raw: patched(raw, 16 + 12 + 4 + 16, b"\x01\x00\x00\x00"))
    result = checks.interface_version(t)
    assert result.verdict is Verdict.FAIL and bind.index in result.evidence
    assert "ICertRequestD v1.0" in result.actual


def test_auth_type_consistency_fails_when_a_response_names_another_type(recorded):
    response = first(recorded, PType.RESPONSE, wcce=True)
    t = rebuilt(recorded, response.index,
                lambda raw: patched(raw, trailer_offset(raw), b"\x0a"))
    result = checks.auth_type_consistent(t)
    assert (result.verdict, result.evidence) == (Verdict.FAIL, (response.index,))


def test_auth_level_warns_on_a_level_5_request(recorded):
    request = first(recorded, PType.REQUEST, wcce=True)
    t = rebuilt(recorded, request.index,
                lambda raw: patched(raw, trailer_offset(raw) + 1, b"\x05"))
    assert checks.auth_level(t).verdict is Verdict.WARN  # WCCE-T-07 is a SHOULD (the catalogue says)


def test_confidentiality_fails_when_a_sealed_pdu_carries_plaintext(recorded):
    request = first(recorded, PType.REQUEST, wcce=True)
    plain = request.plain

    def unsealed(raw: bytes) -> bytes:
        start = len(raw) - len(request.body) - (len(raw) - trailer_offset(raw))
        body = (plain + b"\0" * len(request.body))[:len(request.body)]
        return raw[:start] + body + raw[trailer_offset(raw):]

    t = rebuilt(recorded, request.index, unsealed)
    result = checks.stub_confidentiality(t, KNOWN)
    assert result.verdict is Verdict.FAIL and "plaintext in sealed PDUs" in result.actual


def test_a_response_whose_ciphertext_does_not_decrypt_fails_response_protection(recorded):
    """A sealed response that does not verify is RPCE-PROT-02's finding; whether it would
    unseal to its NDR cannot be told, so stub-confidentiality leaves it to that check."""
    response = first(recorded, PType.RESPONSE, wcce=True)
    t = rebuilt(recorded, response.index, lambda raw: patched(raw, 40, bytes([raw[40] ^ 0xFF])))
    result = checks.stub_confidentiality(t, KNOWN)
    assert result.verdict is Verdict.INCONCLUSIVE and "response-protection judges them" in result.actual
    protection = checks.response_protection(t)
    assert protection.verdict is Verdict.FAIL and "does not verify" in protection.actual


def test_confidentiality_fails_when_a_request_does_not_decrypt(recorded):
    request = first(recorded, PType.REQUEST, wcce=True)
    t = rebuilt(recorded, request.index, lambda raw: patched(raw, 40, bytes([raw[40] ^ 0xFF])))
    result = checks.stub_confidentiality(t, KNOWN)
    assert result.verdict is Verdict.FAIL and "do not verify or decode" in result.actual


def test_confidentiality_fails_when_clear_stubs_lack_the_plaintext(relaxed_ca):
    tap, _ = enroll(settings_for(relaxed_ca, Provider.SPNEGO_NTLM, 5), CSR)
    t = tap.transcript(IDENTITIES)
    assert checks.stub_confidentiality(t, KNOWN).verdict is Verdict.PASS
    assert checks.stub_confidentiality(t, [b"never sent"]).verdict is Verdict.FAIL


def test_even_legs_fails_on_an_auth3_in_spnego(recorded):
    alter = first(recorded, PType.ALTER_CONTEXT, wcce=True)
    t = rebuilt(recorded, alter.index, lambda raw: patched(raw, 2, bytes([PType.AUTH3])))
    result = checks.even_legs(t)
    assert (result.verdict, result.evidence) == (Verdict.FAIL, (alter.index,))


# -- clients that break a requirement on purpose -----------------------------------------------


@pytest.mark.parametrize("knobs, check, verdict", [
    ({"provider": Provider.NTLM}, checks.security_provider, Verdict.FAIL),
    ({"impersonation": 2}, checks.impersonation_flags, Verdict.FAIL),
    ({"impersonation": 1}, checks.impersonation_flags, Verdict.FAIL),
    ({"level": 5}, checks.auth_level, Verdict.WARN),
    ({"ntlm_clear_flags": int(NtlmFlag.SEAL)}, checks.privacy_requested, Verdict.WARN),
    # WCCE-T-09 speaks of PKT_PRIVACY; a call at level 5 is judged by auth-level (T-07)
    ({"level": 5}, checks.privacy_requested, Verdict.NA),
    ({"if_version": 0x00000001}, checks.interface_version, Verdict.FAIL),
], ids=["raw-ntlm", "identify", "anonymous-impersonation", "level-5", "no-seal", "privacy-requested-at-level-5",
        "version-1.0"])
def test_misbehaving_client(relaxed_ca, knobs, check, verdict):
    provider = knobs.pop("provider", Provider.SPNEGO_NTLM)
    level = knobs.pop("level", 6)
    tap, _ = enroll(settings_for(relaxed_ca, provider, level, **knobs), CSR)
    result = check(tap.transcript(IDENTITIES))
    assert result.verdict is verdict, result
    assert bool(result.evidence) is (verdict is not Verdict.NA)  # a finding names its PDUs


def test_anonymous_client_fails_not_anonymous(relaxed_ca):
    settings = dataclasses.replace(settings_for(relaxed_ca, Provider.SPNEGO_NTLM, 6),
                                   user=None, password=None, anonymous=True)
    tap, result = enroll(settings, CSR)
    assert result is None  # the CA refuses anonymous NTLM
    t = tap.transcript(IDENTITIES)
    check = checks.not_anonymous(t)
    assert check.verdict is Verdict.FAIL and check.actual == "anonymous authentication"
