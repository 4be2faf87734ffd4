"""SPNEGO's mechListMIC, tampered: scapy's initiator and the reference CA's acceptor
exchange tokens in memory; one flipped bit of the client's MIC must fail the context."""

from __future__ import annotations

import pytest
from scapy.layers.gssapi import GSS_S_COMPLETE
from scapy.layers.ntlm import NTLMSSP
from scapy.layers.spnego import SPNEGOSSP

from conformance.client.rpc import RpcError, tampered_mech_list_mic
from conformance.wire.gss import nt_hash
from conformance.wire.gss import token_packet

PASSWORD = "Passw0rd!"


def negotiate(tamper: bool):
    client = SPNEGOSSP([NTLMSSP(UPN="alice@lab.test", PASSWORD=PASSWORD)])
    server = SPNEGOSSP([NTLMSSP(IDENTITIES={"alice": nt_hash(PASSWORD)}, DOMAIN_NB_NAME="LAB")])
    c_ctx, token, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
    s_ctx, reply, _ = server.GSS_Accept_sec_context(None, token_packet(9, bytes(token)))
    c_ctx, token, _ = client.GSS_Init_sec_context(c_ctx, input_token=token_packet(9, bytes(reply)),
                                                  target_name="host/ca")
    final = tampered_mech_list_mic(token) if tamper else bytes(token)
    assert len(final) == len(bytes(token))
    try:
        _, _, status = server.GSS_Accept_sec_context(s_ctx, token_packet(9, final))
    except Exception:  # scapy's VerifyMechListMIC raises; the CA turns that into a failed context
        return False
    return status == GSS_S_COMPLETE


def test_the_untampered_third_leg_completes():
    assert negotiate(tamper=False)


def test_a_flipped_mic_bit_fails_the_context():
    assert not negotiate(tamper=True)


def test_a_token_without_mic_is_a_clear_error():
    client = SPNEGOSSP([NTLMSSP(UPN="alice@lab.test", PASSWORD=PASSWORD)])
    _, first, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
    with pytest.raises(RpcError, match="no mechListMIC"):
        tampered_mech_list_mic(first)
