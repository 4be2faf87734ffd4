"""Sans-IO framing of a connection-oriented DCE/RPC byte stream into PDUs.

A TCP read can hold half a PDU or three of them; C706 12.6.2 frames PDUs by the
``frag_length`` field of the 16-byte common header, whose byte order is given by
the first octet of ``packed_drep``.  This module knows nothing about sockets: the
caller feeds bytes and gets whole PDUs back (h11 style), or a :class:`FramingError`
when the stream cannot be framed any more and the connection must be dropped.
"""

from __future__ import annotations

import dataclasses

from scapy.layers.dcerpc import DceRpc5

from conformance.wire.compiled import layout
from conformance.wire.rpc import COMMON_HEADER_LEN

__all__ = ["FramingError", "CommonHeader", "PduFramer"]

_OFF_DREP = 4  # packed_drep's offset in the common header (C706 12.6.3.1)
_HEADS = {0: layout(DceRpc5, little_endian=False), 1: layout(DceRpc5, little_endian=True)}  # by drep's integer rep


class FramingError(ValueError):
    """The peer's byte stream is not a sequence of CO DCE/RPC PDUs."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CommonHeader:
    """The 16-byte common header of a connection-oriented PDU."""

    rpc_vers: int
    rpc_vers_minor: int
    ptype: int
    pfc_flags: int
    drep: bytes
    frag_len: int
    auth_len: int
    call_id: int

    @property
    def little_endian(self) -> bool:
        return self.drep[0] >> 4 == 1

    @classmethod
    def parse(cls, pdu: bytes) -> "CommonHeader":
        """The header as scapy's ``DceRpc5`` declares it (its compiled head), in the byte order
        ``packed_drep`` names."""
        if len(pdu) < COMMON_HEADER_LEN:
            raise FramingError(f"PDU shorter than the common header: {len(pdu)} bytes")
        integer_rep = pdu[_OFF_DREP] >> 4
        if integer_rep not in (0, 1):
            raise FramingError(f"packed_drep integer representation {integer_rep} is undefined")
        fields = _HEADS[integer_rep].unpack(pdu)
        return cls(rpc_vers=fields["rpc_vers"], rpc_vers_minor=fields["rpc_vers_minor"], ptype=fields["ptype"],
                   pfc_flags=fields["pfc_flags"], drep=bytes(pdu[_OFF_DREP:_OFF_DREP + 4]),
                   frag_len=fields["frag_len"], auth_len=fields["auth_len"], call_id=fields["call_id"])


class PduFramer:
    """Accumulates stream bytes and cuts them into PDUs on ``frag_length``.

    ``feed(b"")`` is not special; the caller decides what EOF means.  When the
    stream stops being framable, the PDUs before the bad header are still returned
    and :attr:`broken` is set; from then on ``feed`` raises the
    :class:`FramingError`, because the stream has lost its PDU boundaries for good.
    """

    def __init__(self, *, max_frag_len: int = 0xFFFF) -> None:
        self._buffer = bytearray()
        self._max_frag_len = max_frag_len
        self._broken: FramingError | None = None

    @property
    def broken(self) -> FramingError | None:
        """The error that ended framing, once one was met."""
        return self._broken

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole PDU."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        pdus = []
        while len(self._buffer) >= COMMON_HEADER_LEN:
            try:
                header = CommonHeader.parse(self._buffer[:COMMON_HEADER_LEN])
                if header.rpc_vers != 5:
                    raise FramingError(f"rpc_vers {header.rpc_vers} is not connection-oriented (5)")
                if header.frag_len < COMMON_HEADER_LEN:
                    raise FramingError(f"frag_length {header.frag_len} is shorter than the header")
                if header.frag_len > self._max_frag_len:
                    raise FramingError(
                        f"frag_length {header.frag_len} exceeds the negotiated {self._max_frag_len}"
                    )
            except FramingError as exc:
                self._broken = exc
                if pdus:
                    break  # hand out the PDUs before the bad one; the next feed raises
                raise
            if len(self._buffer) < header.frag_len:
                break
            pdus.append(bytes(self._buffer[:header.frag_len]))
            del self._buffer[:header.frag_len]
        return pdus
