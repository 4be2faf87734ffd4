"""The acceptor's CHALLENGE is serialized once, from a template after the first of its
shape: the bytes sent are those scapy builds, the MIC covers them, and a MIC that does not
cover them still fails the context."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.gssapi import GSS_S_BAD_MIC, GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED
from scapy.layers.ntlm import NTLM_CHALLENGE, NTLM_NEGOTIATE, NTLM_Header, NTLMSSP

from conformance.refca.rpc.ntlm import ChallengeTemplates, NtlmAcceptor, NtlmBehaviour
from conformance.wire.gss import nt_hash, token_packet

PASSWORD = "Passw0rd!"


def _exchange(server: NtlmAcceptor, tamper_mic: bool):
    client = NTLMSSP(UPN="alice@lab.test", PASSWORD=PASSWORD)
    c_ctx, negotiate, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
    s_ctx, challenge, status = server.GSS_Accept_sec_context(None, token_packet(10, bytes(negotiate)))
    assert status == GSS_S_CONTINUE_NEEDED and isinstance(challenge, NTLM_CHALLENGE)
    assert challenge is s_ctx.chall_tok and bytes(challenge) == bytes(s_ctx.chall_tok)
    c_ctx, authenticate, _ = client.GSS_Init_sec_context(c_ctx, input_token=token_packet(10, bytes(challenge)),
                                                         target_name="host/ca")
    wire = bytearray(bytes(authenticate))
    if tamper_mic:
        wire[72] ^= 0x01  # the MIC ([MS-NLMP] 2.2.1.3: after the 8-byte Version at 64)
    _, _, status = server.GSS_Accept_sec_context(s_ctx, token_packet(10, bytes(wire)))
    return status


@pytest.mark.parametrize("tamper, expected", [(False, GSS_S_COMPLETE), (True, GSS_S_BAD_MIC)])
def test_the_mic_is_checked_against_the_challenge_sent(tamper, expected):
    """The first CHALLENGE of an acceptor's shape (scapy's build) and the next ones (its template)."""
    for _ in range(3):
        server = NtlmAcceptor(behaviour=NtlmBehaviour(), IDENTITIES={"alice": nt_hash(PASSWORD)},
                              DOMAIN_NB_NAME="LAB")
        assert _exchange(server, tamper) == expected


NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
#: the NEGOTIATE flags scapy's CHALLENGE echoes: NEGOTIATE_SIGN (0x10) and NEGOTIATE_SEAL (0x20)
FLAGS = st.sampled_from([0, 0x10, 0x20, 0x30]).map(lambda f: f | 0x62088215 & ~0x30)
#: FILETIME-scaled times from 1970 to 2100 (scapy's time.time() in MsvAvTimestamp)
TIMES = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)


def _scapy_challenge(acceptor, flags: int, challenge: bytes, now: float) -> NTLM_CHALLENGE:
    acceptor.SERVER_CHALLENGE = challenge
    negotiate = NTLMSSP(UPN="alice@lab.test", PASSWORD=PASSWORD).GSS_Init_sec_context(None)[1]
    negotiate.NegotiateFlags = flags
    negotiate = NTLM_Header(bytes(negotiate))
    assert isinstance(negotiate, NTLM_NEGOTIATE)
    with mock.patch("scapy.layers.ntlm.time.time", return_value=now):
        _, token, _ = NTLMSSP.GSS_Accept_sec_context(acceptor, None, negotiate)  # scapy's own
    return token


@settings(max_examples=150, deadline=None)
@given(names=st.tuples(NAMES, NAMES, NAMES, NAMES), custom=st.sampled_from([None, {"NetbiosDomainName": "X"},
                                                                             {"Timestamp": None}]),
       flags=FLAGS, first=st.binary(min_size=8, max_size=8), then=st.binary(min_size=8, max_size=8),
       times=st.tuples(TIMES, TIMES))
def test_a_challenge_written_from_the_template_is_scapys(names, custom, flags, first, then, times):
    """One set of templates across the examples, as the CA keeps one: an example's acceptor
    finds the templates of earlier examples' shapes beside its own."""
    computer, domain, fqdn, domain_fqdn = names
    acceptor = NTLMSSP(IDENTITIES={}, COMPUTER_NB_NAME=computer, DOMAIN_NB_NAME=domain, COMPUTER_FQDN=fqdn,
                       DOMAIN_FQDN=domain_fqdn, NTLM_VALUES=custom or {})
    kept = _scapy_challenge(acceptor, flags, first, times[0])
    assert SHARED.bytes_of(acceptor, kept) == bytes(kept)  # the first of its shape: scapy's build, kept
    fresh = _scapy_challenge(acceptor, flags, then, times[1])
    assert SHARED.bytes_of(acceptor, fresh) == bytes(fresh)  # the next: the template, filled


SHARED = ChallengeTemplates()
BASE = dict(IDENTITIES={}, COMPUTER_NB_NAME="CA01", DOMAIN_NB_NAME="LAB", COMPUTER_FQDN="ca01.lab.test",
            DOMAIN_FQDN="lab.test", NTLM_VALUES={})


@pytest.mark.parametrize("other", [
    {"COMPUTER_NB_NAME": "CA02"}, {"DOMAIN_NB_NAME": "OTHERLAB"}, {"COMPUTER_FQDN": "ca02.lab.test"},
    {"DOMAIN_FQDN": "other.test"}, {"NTLM_VALUES": {"DnsTreeName": "tree.test"}}, {"NTLM_VALUES": {"Timestamp": None}},
    {"VARIANT": 0}, {"VARIANT": 1},
])
def test_an_acceptor_that_differs_in_one_input_has_its_own_template(other):
    """Each input scapy builds a CHALLENGE from is in the template's key: after an acceptor's
    template is kept, one that differs from it in that input alone gets scapy's bytes."""
    templates = ChallengeTemplates()
    first = NTLMSSP(**BASE)
    templates.bytes_of(first, _scapy_challenge(first, 0x62088215, b"12345678", 1.7e9))
    second = NTLMSSP(**{**BASE, **other})
    for challenge, now in ((b"abcdefgh", 1.8e9), (b"ABCDEFGH", 1.9e9)):  # its first, then its template
        token = _scapy_challenge(second, 0x62088215, challenge, now)
        assert templates.bytes_of(second, token) == bytes(token)


def test_each_shape_has_its_own_template():
    """Another NEGOTIATE's flags or another acceptor's names are another CHALLENGE."""
    templates = ChallengeTemplates()
    one = NTLMSSP(IDENTITIES={}, DOMAIN_NB_NAME="LAB")
    other = NTLMSSP(IDENTITIES={}, DOMAIN_NB_NAME="OTHERLAB")
    for acceptor, flags in [(one, 0x62088215), (one, 0x62088235), (other, 0x62088215)]:
        token = _scapy_challenge(acceptor, flags, b"12345678", 1.7e9)
        assert templates.bytes_of(acceptor, token) == bytes(token)
    token = _scapy_challenge(other, 0x62088215, b"abcdefgh", 1.8e9)
    assert templates.bytes_of(other, token) == bytes(token)
