"""The verification trailer of a request stub ([MS-RPCE] 2.2.2.13, 3.3.3.5.3).

"The data structures MUST only appear in a request PDU, and they SHOULD be placed
in the PDU immediately after the stub data"; the server "SHOULD search for ... the
signature".  It is found on a 4-byte boundary of the stub, parsed, checked against
the call, and removed before the stub reaches NDR.
"""

from __future__ import annotations

import struct
import uuid

from conformance.wire.rpc import SEC_VT_MAGIC

__all__ = ["VerificationError", "split_verification_trailer", "strip_verification_trailer"]

_CMD_BITMASK_1 = 0x0001
_CMD_PCONTEXT = 0x0002
_CMD_HEADER2 = 0x0003
_CMD_END = 0x4000
_CMD_MUST_PROCESS = 0x8000
_CMD_TYPE_MASK = 0x3FFF


class VerificationError(ValueError):
    """The trailer contradicts the call it travels with."""


def _commands(data: bytes):
    """Yield (type, flags, value) until END; raise ValueError when malformed."""
    offset = 0
    while True:
        if offset + 4 > len(data):
            raise ValueError("truncated command")
        command, length = struct.unpack_from("<HH", data, offset)
        value = data[offset + 4:offset + 4 + length]
        if len(value) != length:
            raise ValueError("truncated value")
        yield command & _CMD_TYPE_MASK, command & ~_CMD_TYPE_MASK, value
        offset += 4 + length
        if command & _CMD_END:
            if data[offset:].strip(b"\0"):
                raise ValueError("bytes after the END command")
            return


def split_verification_trailer(stub: bytes) -> tuple[bytes, list | None]:
    """(stub without trailer, its commands) or (stub, None) when there is none."""
    at = stub.rfind(SEC_VT_MAGIC)
    while at >= 0:
        if at % 4 == 0:
            try:
                return stub[:at], list(_commands(stub[at + len(SEC_VT_MAGIC):]))
            except ValueError:
                pass
        at = stub.rfind(SEC_VT_MAGIC, 0, at)
    return stub, None


def strip_verification_trailer(stub: bytes, *, context, ptype: int, drep: bytes, call_id: int,
                               opnum: int) -> bytes:
    """Return ``stub`` without its verification trailer, after checking the trailer.

    ``context`` is the bound PresentationContext of the call.
    """
    body, commands = split_verification_trailer(stub)
    if commands is not None:
        _verify(commands, context=context, ptype=ptype, drep=drep, call_id=call_id, opnum=opnum)
    return body


def _verify(commands, *, context, ptype, drep, call_id, opnum) -> None:
    for kind, flags, value in commands:
        if kind == _CMD_BITMASK_1:
            continue  # the client's header-signing capability: informational here
        if kind == _CMD_PCONTEXT:
            if len(value) != 40:
                raise VerificationError("PCONTEXT of wrong length")
            interface = uuid.UUID(bytes_le=value[0:16])
            (if_version,) = struct.unpack_from("<I", value, 16)
            syntax = uuid.UUID(bytes_le=value[20:36])
            (syntax_version,) = struct.unpack_from("<I", value, 36)
            if (interface, if_version) != (context.interface, context.if_version):
                raise VerificationError(f"PCONTEXT names {interface} v{if_version:#x}")
            if (syntax, syntax_version) != (context.transfer_syntax, context.transfer_version):
                raise VerificationError(f"PCONTEXT names transfer syntax {syntax}")
        elif kind == _CMD_HEADER2:
            if len(value) != 16:
                raise VerificationError("HEADER2 of wrong length")
            v_ptype = value[0]
            v_drep = value[4:8]
            v_call_id, v_cont_id, v_opnum = struct.unpack_from("<IHH", value, 8)
            if (v_ptype, v_drep, v_call_id, v_opnum) != (ptype, drep, call_id, opnum) \
                    or v_cont_id != context.cont_id:
                raise VerificationError("HEADER2 does not match the request header")
        elif flags & _CMD_MUST_PROCESS:
            raise VerificationError(f"unknown MUST_PROCESS command {kind}")
