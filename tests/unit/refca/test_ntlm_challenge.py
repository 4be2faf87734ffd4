"""The acceptor's CHALLENGE is serialized once: the message sent is the one the MIC covers,
and a MIC that does not cover it still fails the context."""

from __future__ import annotations

import pytest
from scapy.layers.gssapi import GSS_S_BAD_MIC, GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED
from scapy.layers.ntlm import NTLM_CHALLENGE, NTLMSSP

from conformance.refca.rpc.ntlm import NtlmAcceptor, NtlmBehaviour
from conformance.wire.gss import nt_hash, token_packet

PASSWORD = "Passw0rd!"


def _exchange(tamper_mic: bool):
    client = NTLMSSP(UPN="alice@lab.test", PASSWORD=PASSWORD)
    server = NtlmAcceptor(behaviour=NtlmBehaviour(), IDENTITIES={"alice": nt_hash(PASSWORD)}, DOMAIN_NB_NAME="LAB")
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
    assert _exchange(tamper) == expected
