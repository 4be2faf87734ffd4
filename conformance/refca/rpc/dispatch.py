"""Method dispatch for plain (non-ORPC) RPC interfaces on scapy NDR definitions.

A handler receives the :class:`~conformance.refca.rpc.calls.Call` and the
dissected request packet and returns the response packet or a
:class:`~conformance.refca.rpc.calls.Fault`.  Stub data that does not dissect is
answered with RPC_X_BAD_STUB_DATA, an opnum the interface lacks as the ledger's
rpc/request/opnum-out-of-range (nca_s_op_rng_error, C706 appendix N).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping

from scapy.config import conf
from scapy.layers.dcerpc import DceRpcOp, NDRPacket
from scapy.packet import Packet, Padding

from conformance.refca import answers
from conformance.refca.rpc.calls import Call, Fault, Reply
from conformance.wire.ndrcodec import NdrRecord, codec
from conformance.wire.rpc import FaultStatus

__all__ = ["Handler", "InterfaceSpec", "InterfaceDispatcher", "BadStubData", "dissect_stub"]

Handler = Callable[[Call, NDRPacket], "NDRPacket | Fault"]


class BadStubData(ValueError):
    """The stub is not the NDR of the method's [in] parameters."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceSpec:
    name: str
    uuid: uuid.UUID
    version: int  # wire if_version: minor << 16 | major
    opnums: Mapping[int, DceRpcOp]
    handlers: Mapping[int, Handler]
    #: Opnums whose requests are read by the compiled codecs (their handlers take NdrRecords)
    compiled: frozenset[int] = frozenset()


#: Appended to every stub before dissection.  scapy reads a count that runs past the
#: end of a stub into whatever follows instead of failing (a varying array cut short
#: keeps its actual_count and re-encodes to the same bytes), so a stub that held its
#: whole structure is one that leaves all of these bytes undissected.
_SENTINEL = b"\xa5" * 64


def dissect_stub(cls: type[NDRPacket], stub: bytes, *, little_endian: bool,
                 compiled: bool = False) -> NDRPacket | NdrRecord:
    """Dissect NDR ``stub`` as ``cls``; raise :class:`BadStubData` when it is not one.

    ``compiled``: read it with the codec compiled from ``cls`` (an :class:`NdrRecord`, read as
    scapy reads it) when that codec reads it; scapy judges every stub the codec leaves."""
    if compiled and (fast := codec(cls, little_endian)) is not None and (read := fast.read(stub)) is not None:
        return read[0]
    try:
        pkt = cls(stub + _SENTINEL, ndr64=False, ndrendian="little" if little_endian else "big")
    except Exception as exc:  # scapy's NDR engine raises many types on garbage
        raise BadStubData(f"{cls.__name__}: {type(exc).__name__}: {exc}") from exc
    rest = _cut_rest(pkt)
    if len(rest) < len(_SENTINEL) or not rest.endswith(_SENTINEL):
        raise BadStubData(f"{cls.__name__}: stub of {len(stub)} bytes is truncated")
    # scapy does not raise on a short stub; it leaves fields unset.  A request that
    # does not re-encode to its own prefix did not hold the whole structure.
    try:
        encoded = bytes(pkt)
    except Exception as exc:
        raise BadStubData(f"{cls.__name__} does not re-encode: {exc}") from exc
    if len(encoded) > len(stub):
        raise BadStubData(f"{cls.__name__}: stub of {len(stub)} bytes is truncated")
    if _holds_undissected(pkt):
        raise BadStubData(f"{cls.__name__}: an element of a list does not dissect")
    return pkt


def _cut_rest(pkt: NDRPacket) -> bytes:
    """Remove and return the bytes scapy left after the structure (Padding or Raw)."""
    for layer in (Padding, conf.raw_layer):
        if layer in pkt and not isinstance(pkt, layer):
            rest = bytes(pkt[layer].load)
            pkt[layer].underlayer.remove_payload()
            return rest
    return b""


def _holds_undissected(value) -> bool:
    """scapy keeps a list element it could not dissect (a truncated REMINTERFACEREF,
    say) as Raw bytes that re-encode to themselves; a handler would meet bytes where
    it expects a structure."""
    if isinstance(value, conf.raw_layer):
        return True
    if isinstance(value, list):
        return any(_holds_undissected(v) for v in value)
    if isinstance(value, Packet):
        return any(_holds_undissected(v) for v in value.fields.values())
    return False


class InterfaceDispatcher:
    """Serves a fixed set of plain RPC interfaces, version-checked on bind."""

    def __init__(self, specs: list[InterfaceSpec]) -> None:
        self._specs = {spec.uuid: spec for spec in specs}

    def supports_interface(self, if_uuid: uuid.UUID, if_version: int) -> bool:
        spec = self._specs.get(if_uuid)
        return spec is not None and spec.version == if_version

    def dispatch(self, call: Call) -> Reply | Fault:
        spec = self._specs[call.interface]
        op = spec.opnums.get(call.opnum)
        handler = spec.handlers.get(call.opnum)
        if op is None or handler is None:
            return Fault(answers.fault_status("rpc/request/opnum-out-of-range"))
        try:
            request = dissect_stub(op.request, call.stub, little_endian=call.little_endian,
                                   compiled=call.opnum in spec.compiled)
        except BadStubData:
            return Fault(FaultStatus.RPC_X_BAD_STUB_DATA)
        result = handler(call, request)
        if isinstance(result, Fault):
            return result
        return Reply(encode(result, call.little_endian))


def encode(pkt: NDRPacket | NdrRecord, little_endian: bool) -> bytes:
    if isinstance(pkt, NdrRecord):
        return codec(pkt.cls, little_endian).write(pkt)
    pkt.ndr64 = False
    pkt.ndrendian = "little" if little_endian else "big"
    return bytes(pkt)
