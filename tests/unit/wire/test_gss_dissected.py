"""A token's bytes are dissected once in a process: the receiver and the transcript take the
same packet, which is scapy's own dissection of those bytes."""

from __future__ import annotations

import pytest
from scapy.layers.gssapi import GSSAPI_BLOB
from scapy.layers.ntlm import NTLM_Header, NTLMSSP
from scapy.layers.spnego import SPNEGOSSP

from conformance.model.verdicts import Direction
from conformance.refca.rpc.kerberos import KeytabKerberosSSP
from conformance.refca.rpc.ntlm import NtlmAcceptor, NtlmBehaviour
from conformance.wire import gss
from conformance.wire import passive as passive_module
from conformance.wire.gss import dissected, nt_hash, token_packet
from conformance.wire.passive import PassiveContext
from tests.unit.wire.kerberos_lab import FLAGS, kerberos_lab


def _negotiate(spnego: bool) -> bytes:
    ntlm = NTLMSSP(UPN="alice@LAB", PASSWORD="Passw0rd!")
    _, token, _ = (SPNEGOSSP([ntlm]) if spnego else ntlm).GSS_Init_sec_context(None, target_name="host/ca")
    return bytes(token)


def test_the_same_bytes_give_the_same_packet_which_is_scapys():
    token = _negotiate(spnego=True)
    first = dissected(GSSAPI_BLOB, token)
    assert dissected(GSSAPI_BLOB, bytearray(token)) is first
    assert token_packet(9, token) is first
    assert first.show(dump=True) == GSSAPI_BLOB(token).show(dump=True) and bytes(first) == token
    raw = _negotiate(spnego=False)
    assert token_packet(10, raw) is dissected(NTLM_Header, raw) is not dissected(GSSAPI_BLOB, token)


def test_what_does_not_dissect_raises_each_time_and_is_not_kept():
    gss._dissection.cache_clear()
    for _ in range(2):
        with pytest.raises(Exception):
            dissected(GSSAPI_BLOB, b"\x60\x82\xff\xff")
    assert gss._dissection.cache_info().currsize == 0


def test_the_dissections_kept_are_bounded():
    gss._dissection.cache_clear()
    token = _negotiate(spnego=False)
    tokens = [token[:-1] + bytes([n]) for n in range(200)]  # 200 NEGOTIATEs, each its own bytes
    packets = [dissected(NTLM_Header, t) for t in tokens]
    assert gss._dissection.cache_info().currsize == gss._dissection.cache_info().maxsize == 128
    assert dissected(NTLM_Header, tokens[-1]) is packets[-1]  # the latest are kept
    assert dissected(NTLM_Header, tokens[0]) is not packets[0]  # the oldest were dropped


def _exchange_through(client, acceptor, first: bytes, client_ctx, *, flags=None):
    """Every token of a SPNEGO handshake, each party and the passive reading taking the
    shared dissection; returns the tokens in wire order with their direction."""
    kwargs = {"req_flags": flags} if flags is not None else {}
    legs, token, server_ctx = [(first, Direction.TO_SERVER)], first, None
    while token is not None:
        server_ctx, reply, _ = acceptor.GSS_Accept_sec_context(server_ctx, token_packet(9, token), **kwargs)
        if reply is None:
            break
        legs.append((bytes(reply), Direction.TO_CLIENT))
        client_ctx, answer, _ = client.GSS_Init_sec_context(client_ctx, input_token=token_packet(9, bytes(reply)),
                                                            **kwargs)
        token = bytes(answer) if answer is not None else None
        if token is not None:
            legs.append((token, Direction.TO_SERVER))
    return legs


@pytest.mark.parametrize("mechanism", ["ntlm", "kerberos"])
def test_no_reader_changes_the_dissection_it_shares(mechanism, monkeypatch):
    """The acceptor (the reference CA's), the initiator and the passive reading take the same
    packets: each is, after all of them, what scapy's dissection of its bytes shows (every field
    and the bytes; scapy's ``parent`` links, which the initiator re-links, are not read)."""
    snapshots: dict[bytes, str] = {}
    keep = gss.dissected

    def snapshot(cls, token):
        packet = keep(cls, token)
        snapshots.setdefault(bytes(token), cls(bytes(token)).show(dump=True))
        return packet

    gss._dissection.cache_clear()
    monkeypatch.setattr(gss, "dissected", snapshot)
    monkeypatch.setattr(passive_module, "dissected", snapshot)
    if mechanism == "ntlm":
        client = SPNEGOSSP([NTLMSSP(UPN="alice@LAB", PASSWORD="Passw0rd!")])
        acceptor = SPNEGOSSP([NtlmAcceptor(behaviour=NtlmBehaviour(), IDENTITIES={"alice": nt_hash("Passw0rd!")},
                                           DOMAIN_NB_NAME="LAB")])
        ctx, first, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
        legs = _exchange_through(client, acceptor, bytes(first), ctx)
        reading = PassiveContext(auth_type=9, identities={"ALICE": nt_hash("Passw0rd!")})
    else:
        lab = kerberos_lab()
        acceptor = SPNEGOSSP([KeytabKerberosSSP(lab["keys"])])
        legs = _exchange_through(lab["initiator"], acceptor, lab["token"], lab["context"], flags=FLAGS)
        reading = PassiveContext(auth_type=9, identities={}, service_keys=lab["keys"])
    for token, direction in legs:
        reading.feed(token, direction)
    assert len(legs) >= 3 and reading.facts.keys  # the handshake completed and was read
    for token, _ in legs:
        packet = keep(GSSAPI_BLOB, token)  # the one kept: a hit, not a dissection
        assert packet.show(dump=True) == snapshots[token] and bytes(packet) == token
