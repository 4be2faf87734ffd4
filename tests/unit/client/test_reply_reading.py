"""The client reads the answer to a bind or a call with the compiled layouts only where they
read it with one meaning; everything else is scapy's reading, as before: ``dissected(pdu)``
and ``dissected(pdu, compiled=False)`` (scapy alone) give the client the same values or the
same MalformedReply — for the reference CA's recorded replies (with their auth verifiers) cut,
grown, with a byte changed or a verification trailer's signature inside."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.client.errors import MalformedReply
from conformance.client.rpc import dissected
from conformance.wire.rpc import SEC_VT_MAGIC, PType
from tests.support.recorded import read

ANSWERS = [p.raw for name in ("replies", "conformant", "level-2", "spnego-auth3", "raw-ntlm") for p in read(name).pdus
           if p.direction.value == "s2c" and p.ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP, PType.BIND_NAK,
                                                         PType.FAULT)]


def test_the_recordings_hold_each_kind_of_answer():
    assert {pdu[2] for pdu in ANSWERS} == {PType.BIND_ACK, PType.ALTER_CONTEXT_RESP, PType.BIND_NAK, PType.FAULT}
    assert any(struct.unpack_from("<H", pdu, 10)[0] for pdu in ANSWERS)  # some carry an auth verifier


def _read(pdu: bytes, compiled: bool):
    """What the client reads of the answer (``of_reply``, ``_note_contexts``), or its MalformedReply."""
    try:
        body = dissected(pdu, compiled=compiled)
        if pdu[2] == PType.FAULT:
            return int(body.status)
        if pdu[2] == PType.BIND_NAK:
            return int(body.provider_reject_reason)
        return (int(body.assoc_group_id) if pdu[2] == PType.BIND_ACK else None,
                [(int(r.result), int(r.reason)) for r in body.results])
    except MalformedReply as exc:
        return "malformed", str(exc)


def _framed(pdu: bytes) -> bytes:
    order = "<" if pdu[4] & 0x10 else ">"
    return pdu[:8] + struct.pack(order + "H", len(pdu)) + pdu[10:]


@settings(max_examples=400, deadline=None)
@given(index=st.integers(0, len(ANSWERS) - 1), cut=st.integers(0, 40), grown=st.binary(max_size=40),
       flip=st.none() | st.tuples(st.integers(16, 160), st.integers(0, 255)),
       signature_at=st.none() | st.integers(16, 160))
def test_the_compiled_reading_is_scapys(index, cut, grown, flip, signature_at):
    pdu = ANSWERS[index]
    pdu = pdu[:max(16, len(pdu) - cut)] + grown
    if flip is not None and flip[0] < len(pdu):
        pdu = pdu[:flip[0]] + bytes([flip[1]]) + pdu[flip[0] + 1:]
    if signature_at is not None:
        pdu = pdu[:signature_at] + SEC_VT_MAGIC + pdu[signature_at:]
    pdu = _framed(pdu)
    assert _read(pdu, compiled=True) == _read(pdu, compiled=False)
