"""NDR decoding of request/response stubs by interface and opnum.

ORPC interfaces (ICertRequestD/D2, IRemUnknown/2) start every stub with ORPCTHIS
(requests) or ORPCTHAT (responses), "marshaled using NDR" ([MS-DCOM] 2.2.13);
the activation-port interfaces are plain RPC.
"""

from __future__ import annotations

import dataclasses
import uuid

from scapy.config import conf
from scapy.layers.dcerpc import NDRPacket
from scapy.layers.msrpce.raw import ms_dcom
from scapy.layers.msrpce.raw.ms_dcom import ORPCTHAT, ORPCTHIS

from conformance.wire import wcce
from conformance.wire.dcom import (
    IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR, IID_IREMUNKNOWN, IID_IREMUNKNOWN2,
    IREMUNKNOWN2_OPNUMS, IREMUNKNOWN_OPNUMS,
)

__all__ = ["INTERFACES", "Decoded", "decode_stub", "interface_name"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Interface:
    name: str
    opnums: dict
    orpc: bool


INTERFACES: dict[uuid.UUID, _Interface] = {
    IID_IOBJECT_EXPORTER: _Interface("IObjectExporter", ms_dcom.IOBJECTEXPORTER_OPNUMS, False),
    IID_IREMOTE_SCM_ACTIVATOR: _Interface("IRemoteSCMActivator", ms_dcom.IREMOTESCMACTIVATOR_OPNUMS, False),
    IID_IREMUNKNOWN: _Interface("IRemUnknown", IREMUNKNOWN_OPNUMS, True),
    IID_IREMUNKNOWN2: _Interface("IRemUnknown2", IREMUNKNOWN2_OPNUMS, True),
    wcce.IID_ICERTREQUESTD: _Interface("ICertRequestD", wcce.ICERTREQUESTD_OPNUMS, True),
    wcce.IID_ICERTREQUESTD2: _Interface("ICertRequestD2", wcce.ICERTREQUESTD2_OPNUMS, True),
}


def interface_name(interface: uuid.UUID | None) -> str:
    if interface is None:
        return "?"
    known = INTERFACES.get(interface)
    return known.name if known else str(interface)


@dataclasses.dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded stub: the method's packet (None if it did not decode) and why not."""

    packet: NDRPacket | None
    name: str | None
    error: str | None = None
    orpc: NDRPacket | None = None  # ORPCTHIS / ORPCTHAT of an ORPC stub

    @property
    def ok(self) -> bool:
        return self.packet is not None and self.error is None


def decode_stub(interface: uuid.UUID | None, opnum: int | None, stub: bytes, *, response: bool,
                little_endian: bool = True, request: NDRPacket | None = None) -> Decoded:
    """Decode ``stub``; never raises.  ``request`` (the decoded request of the same
    call) supplies the sizes some responses take from their request."""
    known = INTERFACES.get(interface) if interface is not None else None
    if known is None or opnum is None:
        return Decoded(None, None, "unknown interface")
    op = known.opnums.get(opnum)
    if op is None:
        return Decoded(None, None, f"opnum {opnum} not in {known.name}")
    cls = op.response if response else op.request
    endian = "little" if little_endian else "big"
    head = None
    try:
        body = stub
        if known.orpc:
            head = (ORPCTHAT if response else ORPCTHIS)(stub, ndr64=False, ndrendian=endian)
            body = head.load if head.payload else b""
            head.remove_payload()
        extra = {"request_packet": request} if (response and request is not None) else {}
        pkt = cls(body, ndr64=False, ndrendian=endian, **extra)
        if conf.padding_layer in pkt:
            return Decoded(pkt, cls.__name__, "trailing bytes after the NDR", head)
        if len(bytes(pkt)) > len(body):
            return Decoded(pkt, cls.__name__, "stub shorter than the NDR it announces", head)
        return Decoded(pkt, cls.__name__, None, head)
    except Exception as exc:  # scapy's NDR engine raises many kinds on garbage
        return Decoded(None, cls.__name__, f"{type(exc).__name__}: {exc}", head)
