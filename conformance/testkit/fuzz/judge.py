"""The judge: what the CA answered to one input, and which answers are acceptable."""

from __future__ import annotations

import dataclasses
import enum
import struct

from conformance.testkit.fuzz.choose import Kind
from conformance.testkit.fuzz.fragments import FragmentInput
from conformance.wire.framing import CommonHeader, FramingError, PduFramer
from conformance.wire.rpc import PType

__all__ = ["AnswerClass", "Answer", "classify", "ACCEPTABLE", "acceptable"]


class AnswerClass(enum.Enum):
    BIND_ACK = "bind_ack"
    ALTER_CONTEXT_RESP = "alter_context_resp"
    BIND_NAK = "bind_nak"
    FAULT = "fault"
    RESPONSE = "response"
    DROPPED = "dropped"  # the CA closed without answering
    TIMEOUT = "timeout"  # neither an answer nor a close within the bound
    UNEXPECTED = "unexpected"  # a PDU type a server never sends a client
    GARBAGE = "garbage"  # bytes that do not frame as PDUs
    UNVERIFIED = "unverified"  # a protected response that does not unseal


_BY_PTYPE = {PType.BIND_ACK: AnswerClass.BIND_ACK, PType.ALTER_CONTEXT_RESP: AnswerClass.ALTER_CONTEXT_RESP,
             PType.BIND_NAK: AnswerClass.BIND_NAK, PType.FAULT: AnswerClass.FAULT,
             PType.RESPONSE: AnswerClass.RESPONSE}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    cls: AnswerClass
    detail: int | None = None  # fault status, bind_nak reason or ptype
    pdus: int = 0

    @property
    def label(self) -> str:
        return self.cls.value if self.detail is None else f"{self.cls.value} 0x{self.detail:x}"


def classify(stream: bytes, *, closed: bool, timed_out: bool, verified: bool = True) -> Answer:
    """The CA's answer to one input from the bytes it sent back.

    ``closed``: the CA closed the connection; ``timed_out``: the bound passed first (for
    a half-closed connection, a CA that neither answers nor closes hangs);
    ``verified``: a protected response unsealed."""
    try:
        framer = PduFramer()
        pdus = framer.feed(stream)
    except FramingError:
        return Answer(cls=AnswerClass.GARBAGE)
    if timed_out:
        return Answer(cls=AnswerClass.TIMEOUT, pdus=len(pdus))
    if framer.pending and closed:
        return Answer(cls=AnswerClass.GARBAGE, pdus=len(pdus))
    if not pdus:
        return Answer(cls=AnswerClass.DROPPED if closed else AnswerClass.TIMEOUT)
    first = CommonHeader.parse(pdus[0])
    cls = _BY_PTYPE.get(first.ptype, AnswerClass.UNEXPECTED)
    detail = None
    order = "<" if first.little_endian else ">"
    if cls is AnswerClass.FAULT and len(pdus[0]) >= 28:
        detail = struct.unpack_from(order + "I", pdus[0], 24)[0]
    elif cls is AnswerClass.BIND_NAK and len(pdus[0]) >= 18:
        detail = struct.unpack_from(order + "H", pdus[0], 16)[0]
    elif cls is AnswerClass.UNEXPECTED:
        detail = first.ptype
    elif cls is AnswerClass.RESPONSE and not verified:
        cls = AnswerClass.UNVERIFIED
    return Answer(cls=cls, detail=detail, pdus=len(pdus))


_ANY_REPLY = frozenset({AnswerClass.BIND_ACK, AnswerClass.ALTER_CONTEXT_RESP, AnswerClass.BIND_NAK,
                        AnswerClass.FAULT, AnswerClass.RESPONSE, AnswerClass.DROPPED})
#: What may answer each kind.  A mutation may leave a PDU valid, so a normal reply is
#: fine; a hang, garbage, a PDU type no server sends, or a response that does not
#: unseal never is.  A sealed call with a bad stub must be answered, not dropped.
ACCEPTABLE = {
    Kind.RAW: frozenset({AnswerClass.BIND_ACK, AnswerClass.BIND_NAK, AnswerClass.FAULT,
                         AnswerClass.DROPPED}),
    Kind.PDU: _ANY_REPLY,
    Kind.FRAGMENTS: frozenset({AnswerClass.FAULT, AnswerClass.RESPONSE, AnswerClass.DROPPED}),
    Kind.NDR: frozenset({AnswerClass.FAULT, AnswerClass.RESPONSE}),
}


def acceptable(item) -> frozenset[AnswerClass]:
    if isinstance(item, FragmentInput) and item.honest:
        return frozenset({AnswerClass.RESPONSE})  # nothing was broken: it is a valid call
    if getattr(item, "only_truncated", False):
        return frozenset({AnswerClass.FAULT})  # RPC_X_BAD_STUB_DATA, or an ORPC fault
    return ACCEPTABLE[item.kind]
