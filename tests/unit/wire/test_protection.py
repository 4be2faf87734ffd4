"""Per-PDU protection with real NTLM contexts made in-process (no sockets)."""

from __future__ import annotations

import pytest
from scapy.layers.gssapi import GSS_S_COMPLETE
from scapy.layers.ntlm import MD4le, NTLMSSP

from conformance.client.rpc import gss_flags
from conformance.wire import pdu as build
from conformance.wire.framing import CommonHeader
from conformance.wire.gss import token_packet
from conformance.wire.protection import (
    Mechanism, ProtectionContext, ProtectionError, SecTrailer, signature_bit_flipped,
)

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


def _protected_response(sender: ProtectionContext, *, level: int, stub: bytes = STUB,
                        advance_sequence: bool = True) -> bytes:
    pad = (-len(stub)) % 16
    verifier = build.auth_verifier(auth_type=10, auth_level=level, context_id=0,
                                   token=b"\0" * sender.signature_length(), pad_length=pad)
    unsigned = bytes(build.response(call_id=1, cont_id=0, stub=stub, alloc_hint=len(stub),
                                    auth=verifier, auth_padding=b"\0" * pad))
    header = CommonHeader.parse(unsigned)
    return sender.protect(unsigned, header, SecTrailer.parse(unsigned, header), privacy=level == 6,
                          advance_sequence=advance_sequence)


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



@pytest.mark.parametrize("level", [4, 5, 6])
def test_a_send_sequence_that_does_not_advance_is_caught_on_the_next_pdu(level):
    """A sender that leaves its sequence number where it was (mutant stuck-response-sequence):
    the first PDU verifies, the second carries the same number again and does not."""
    client, server = _contexts(level)
    first = _protected_response(server, level=level, advance_sequence=False)
    assert server.context.SendSeqNum == 0  # it did not move
    assert _open(client, first, level) == STUB
    again = _protected_response(server, level=level, advance_sequence=False)
    with pytest.raises(ProtectionError, match="NTLM sequence number 0, expected 1"):
        _open(client, again, level)


@pytest.mark.parametrize("level", [5, 6])
def test_a_flipped_checksum_bit_does_not_verify_and_changes_nothing_else(level):
    """signature_bit_flipped (mutant corrupt-response-signature): one bit of the NTLM
    Checksum field, not of the sequence number, so it is the signature that fails."""
    client, server = _contexts(level)
    pdu = _protected_response(server, level=level)
    flipped = signature_bit_flipped(pdu, Mechanism.NTLM)
    changed = [i for i, (a, b) in enumerate(zip(pdu, flipped)) if a != b]
    token_at = len(pdu) - CommonHeader.parse(pdu).auth_len
    assert len(flipped) == len(pdu) and changed == [token_at + 4]  # Version (4), then Checksum
    with pytest.raises(ProtectionError, match="signature verification failed"):
        _open(client, flipped, level)


def test_a_pdu_without_verifier_cannot_be_corrupted():
    unsigned = bytes(build.response(call_id=1, cont_id=0, stub=STUB, alloc_hint=len(STUB)))
    with pytest.raises(ProtectionError):
        signature_bit_flipped(unsigned, Mechanism.NTLM)


def test_the_sequence_number_a_verifier_carries_in_clear():
    from scapy.layers.ntlm import NTLMSSP_MESSAGE_SIGNATURE

    from conformance.wire.protection import verifier_sequence

    ntlm = bytes(NTLMSSP_MESSAGE_SIGNATURE(Version=1, Checksum=b"\xaa" * 8, SeqNum=7))
    mic = b"\x04\x04\x05\xff\xff\xff\xff\xff" + (9).to_bytes(8, "big") + b"\xbb" * 12
    wrap = b"\x05\x04\x06\xff\x00\x00\x00\x1c" + (3).to_bytes(8, "big") + b"\xcc" * 60
    assert [verifier_sequence(t) for t in (ntlm, mic, wrap)] == [7, 9, 3]
    assert verifier_sequence(b"\x60\x33" + bytes(40)) is None  # RFC 1964/4757: encrypted


def test_a_wrap_message_copies_deeply_as_scapys_does():
    """scapy's NTLM wrap deep-copies the messages it signs: the copy of ours is equal, of
    scapy's class, and changing it leaves the original (bytes and flags are immutable)."""
    import copy

    from scapy.layers.gssapi import SSP

    from conformance.wire.protection import _WrapMessage

    message = _WrapMessage(conf_req_flag=True, sign=True, data=b"stub")
    copied = copy.deepcopy([message])[0]
    assert copied == message and copied is not message and isinstance(copied, SSP.WRAP_MSG)
    copied.data = b"sealed"
    assert message.data == b"stub"
