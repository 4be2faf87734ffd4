"""Per-PDU protection with real NTLM contexts made in-process (no sockets)."""

from __future__ import annotations

import pytest
from scapy.layers.gssapi import GSS_S_COMPLETE
from scapy.layers.ntlm import MD4le, NTLMSSP

from conformance.client.rpc import gss_flags
from conformance.wire import pdu as build
from conformance.wire.framing import CommonHeader
from conformance.wire.gss import token_packet
from conformance.wire.protection import ProtectionContext, ProtectionError, SecTrailer

STUB = "WCCE-LAB-CA".encode("utf-16-le") * 3


def _contexts(level: int):
    client, server = NTLMSSP(UPN="alice@lab.test", PASSWORD="pw"), NTLMSSP(IDENTITIES={"alice": MD4le("pw")})
    cctx, tok, _ = client.GSS_Init_sec_context(None, req_flags=gss_flags(level, 3), target_name="host/x")
    sctx, tok, _ = server.GSS_Accept_sec_context(None, token_packet(10, bytes(tok)))
    cctx, tok, _ = client.GSS_Init_sec_context(cctx, input_token=token_packet(10, bytes(tok)), target_name="host/x")
    sctx, _, status = server.GSS_Accept_sec_context(sctx, token_packet(10, bytes(tok)))
    assert status == GSS_S_COMPLETE
    return (ProtectionContext(ssp=client, context=cctx, header_sign=False),
            ProtectionContext(ssp=server, context=sctx, header_sign=False))


def _protected_response(sender: ProtectionContext, *, level: int, stub: bytes = STUB) -> bytes:
    pad = (-len(stub)) % 16
    verifier = build.auth_verifier(auth_type=10, auth_level=level, context_id=0,
                                   token=b"\0" * sender.signature_length(), pad_length=pad)
    unsigned = bytes(build.response(call_id=1, cont_id=0, stub=stub, alloc_hint=len(stub),
                                    auth=verifier, auth_padding=b"\0" * pad))
    header = CommonHeader.parse(unsigned)
    return sender.protect(unsigned, header, SecTrailer.parse(unsigned, header), privacy=level == 6)


def _open(receiver: ProtectionContext, pdu: bytes, level: int) -> bytes:
    header = CommonHeader.parse(pdu)
    return receiver.unprotect(pdu, header, SecTrailer.parse(pdu, header), privacy=level == 6)


@pytest.mark.parametrize("level", [5, 6])
def test_round_trip_and_sealing(level):
    client, server = _contexts(level)
    for _ in range(3):  # sequence numbers advance in step
        pdu = _protected_response(server, level=level)
        assert (STUB in pdu) is (level == 5)
        assert _open(client, pdu, level) == STUB


@pytest.mark.parametrize("level", [5, 6])
@pytest.mark.parametrize("where", ["header", "body", "trailer", "token"])
def test_any_tampering_is_detected(level, where):
    """NTLMv2 signs header, body and sec_trailer even without header signing."""
    client, server = _contexts(level)
    pdu = bytearray(_protected_response(server, level=level))
    header = CommonHeader.parse(bytes(pdu))
    trailer = SecTrailer.parse(bytes(pdu), header)
    offset = {"header": 12, "body": 30, "trailer": trailer.offset + 4, "token": len(pdu) - 6}[where]
    pdu[offset] ^= 0x01
    with pytest.raises(ProtectionError):
        _open(client, bytes(pdu), level)


def test_replay_is_detected():
    client, server = _contexts(6)
    pdu = _protected_response(server, level=6)
    _open(client, pdu, 6)
    with pytest.raises(ProtectionError, match="sequence number"):
        _open(client, pdu, 6)
