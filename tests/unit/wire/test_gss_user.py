"""The acceptor reads the NTLM user from the token it dissected as ``ntlm_user`` reads the bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.ntlm import NTLMSSP
from scapy.layers.spnego import SPNEGOSSP

from conformance.wire.gss import nt_hash, ntlm_user, ntlm_user_of, token_packet

names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0@\\"), min_size=1, max_size=20)


def _legs(auth_type: int, user: str, domain: str):
    """Every token the client sends in an NTLM (10) or SPNEGO/NTLM (9) exchange."""
    password = "Passw0rd!"
    client_ntlm = NTLMSSP(UPN=f"{user}@{domain}", PASSWORD=password)
    server_ntlm = NTLMSSP(IDENTITIES={user: nt_hash(password)}, DOMAIN_NB_NAME="LAB")
    client, server = (SPNEGOSSP([client_ntlm]), SPNEGOSSP([server_ntlm])) if auth_type == 9 else (client_ntlm,
                                                                                                  server_ntlm)
    sent = []
    c_ctx, token, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
    sent.append(bytes(token))
    s_ctx, reply, _ = server.GSS_Accept_sec_context(None, token_packet(auth_type, bytes(token)))
    c_ctx, token, _ = client.GSS_Init_sec_context(c_ctx, input_token=token_packet(auth_type, bytes(reply)),
                                                  target_name="host/ca")
    sent.append(bytes(token))
    return sent


@pytest.mark.parametrize("auth_type", [9, 10])
@settings(max_examples=25, deadline=None)
@given(user=names, domain=names)
def test_the_user_of_the_dissected_token_is_the_user_of_its_bytes(auth_type, user, domain):
    legs = _legs(auth_type, user, domain)
    for token in legs:
        assert ntlm_user_of(token_packet(auth_type, token)) == ntlm_user(token)
    assert ntlm_user(legs[-1]) is not None  # the AUTHENTICATE leg names someone
