"""The activation properties blob ([MS-DCOM] 2.2.22), built from serialized parts.

scapy's ``ActivationPropertiesBlob`` re-serializes every property each time its
length is asked for (NDR type serialization 1 is slow in scapy: ~50 ms per blob
here).  Each property is serialized once; sizes come from those bytes.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence

from scapy.layers.dcerpc import NDRPacket, ndr_serialize1
from scapy.layers.msrpce.msdcom import OBJREF, OBJREF_CUSTOM, CustomHeader
from scapy.layers.msrpce.raw.ms_dcom import GUID
from scapy.packet import Raw

__all__ = ["activation_objref", "requested_class"]


def activation_objref(*, iid: uuid.UUID, clsid: uuid.UUID, property_clsids: Sequence[uuid.UUID],
                      properties: Sequence[NDRPacket | bytes], dest_ctx: int = 2) -> bytes:
    """OBJREF_CUSTOM carrying an ActivationPropertiesIn/Out blob (a property given as bytes
    is already serialized: ``ndr_serialize1`` of it)."""
    bodies = [p if isinstance(p, bytes) else ndr_serialize1(p) for p in properties]  # each padded to 8
    header = CustomHeader(destCtx=dest_ctx, pclsid=[GUID(c.bytes_le) for c in property_clsids],
                          pSizes=[len(b) for b in bodies], pdwReserved=None, ndr64=False)
    size = len(ndr_serialize1(header))  # the header's size does not depend on its values
    header.headerSize = size
    header.totalSize = size + sum(len(b) for b in bodies)
    blob = ndr_serialize1(header) + b"".join(bodies)
    # dwSize: everything after dwSize and dwReserved ([MS-DCOM] 2.2.22)
    data = struct.pack("<II", len(blob), 0) + blob
    return bytes(OBJREF(iid=iid) / OBJREF_CUSTOM(clsid=clsid, pObjectData=Raw(data)))


def requested_class(request) -> tuple[uuid.UUID, tuple[uuid.UUID, ...]] | None:
    """(CLSID, IIDs) of a dissected RemoteCreateInstance/RemoteGetClassObject request,
    or None when its activation properties do not decode."""
    from scapy.layers.msrpce.msdcom import InstantiationInfoData

    try:
        blob = OBJREF(request.valueof("pActProperties").abData).pObjectData
        for prop in blob.Property:
            if InstantiationInfoData in prop:
                info = prop[InstantiationInfoData]
                return (uuid.UUID(bytes_le=bytes(info.classId)),
                        tuple(uuid.UUID(bytes_le=bytes(g)) for g in info.valueof("pIID")))
    except Exception:  # a malformed blob is the caller's finding
        return None
    return None
