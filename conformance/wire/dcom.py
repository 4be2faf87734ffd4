"""[MS-DCOM] identifiers, HRESULTs and the packet-form structures scapy gets wrong.

The NDR definitions of IObjectExporter, IRemoteSCMActivator and IRemUnknown(2)
come from ``scapy.layers.msrpce.raw.ms_dcom`` and the activation property
structures from ``scapy.layers.msrpce.msdcom``.  What lives here:

* the UUIDs the protocol fixes ([MS-DCOM] 1.9, [MS-WCCE] 1.9);
* DCOM HRESULTs ([MS-DCOM] 3.1.1.5.4, [MS-ERREF]);
* ``DualStringArray``: the *packet* encoding of DUALSTRINGARRAY ([MS-DCOM]
  2.2.19) used inside OBJREFs, and a builder for its *NDR* encoding.  scapy's
  ``DUALSTRINGARRAY`` is the NDR form; filled from bytes it computes
  ``wNumEntries`` in bytes instead of 16-bit units (product.md section 3), so
  every DUALSTRINGARRAY we emit is built here from typed bindings.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import struct
import uuid

from scapy.fields import ConditionalField, LEShortField, StrNullFieldUtf16, XLEShortField
from scapy.layers.msrpce.raw.ms_dcom import DUALSTRINGARRAY
from scapy.packet import Packet

from conformance.wire.hresult import HResult

__all__ = [
    "ObjectExporterOpnum", "RemoteActivatorOpnum",
    "IID_IUNKNOWN",
    "IID_IREMUNKNOWN",
    "IID_IREMUNKNOWN2",
    "IID_IOBJECT_EXPORTER",
    "IID_IREMOTE_SCM_ACTIVATOR",
    "IID_IACTIVATION",
    "IID_IACTIVATION_PROPERTIES_IN",
    "IID_IACTIVATION_PROPERTIES_OUT",
    "HResult",
    "TowerId",
    "StringBinding",
    "SecurityBinding",
    "DualStringArray",
    "parse_network_address",
    "objref_standard",
    "COM_VERSION",
]

IID_IUNKNOWN = uuid.UUID("00000000-0000-0000-c000-000000000046")
IID_IREMUNKNOWN = uuid.UUID("00000131-0000-0000-c000-000000000046")
IID_IREMUNKNOWN2 = uuid.UUID("00000143-0000-0000-c000-000000000046")
IID_IOBJECT_EXPORTER = uuid.UUID("99fcfec4-5260-101b-bbcb-00aa0021347a")
IID_IREMOTE_SCM_ACTIVATOR = uuid.UUID("000001a0-0000-0000-c000-000000000046")
IID_IACTIVATION = uuid.UUID("4d9f4ab8-7d1c-11cf-861e-0020af6e7c57")
IID_IACTIVATION_PROPERTIES_IN = uuid.UUID("000001a2-0000-0000-c000-000000000046")
IID_IACTIVATION_PROPERTIES_OUT = uuid.UUID("000001a3-0000-0000-c000-000000000046")

#: COMVERSION this implementation speaks ([MS-DCOM] 2.2.11: 5.7 is current).
COM_VERSION = (5, 7)


class ObjectExporterOpnum(enum.IntEnum):
    """IObjectExporter on the resolver port ([MS-DCOM] 3.1.2.5.1)."""

    RESOLVE_OXID = 0
    SIMPLE_PING = 1
    COMPLEX_PING = 2
    SERVER_ALIVE = 3
    RESOLVE_OXID2 = 4
    SERVER_ALIVE2 = 5


class RemoteActivatorOpnum(enum.IntEnum):
    """IRemoteSCMActivator ([MS-DCOM] 3.1.2.5.2; opnums 0-2 are local and never on the wire)."""

    REMOTE_GET_CLASS_OBJECT = 3
    REMOTE_CREATE_INSTANCE = 4


class TowerId(enum.IntEnum):
    """[MS-DCOM] 2.2.19.3 wTowerId values we use."""

    NCACN_IP_TCP = 0x0007


# -- packet-form DUALSTRINGARRAY ([MS-DCOM] 2.2.19.1, .3, .4) -------------------


class StringBindingPacket(Packet):
    name = "STRINGBINDING"
    fields_desc = [
        LEShortField("wTowerId", TowerId.NCACN_IP_TCP),
        StrNullFieldUtf16("aNetworkAddr", ""),
    ]

    def extract_padding(self, s):
        return b"", s


class SecurityBindingPacket(Packet):
    name = "SECURITYBINDING"
    fields_desc = [
        LEShortField("wAuthnSvc", 0),
        # "wAuthnSvc 0 ... Reserved and aPrincName MUST NOT be present" (2.2.19.4)
        ConditionalField(XLEShortField("Reserved", 0xFFFF), lambda pkt: pkt.wAuthnSvc),
        ConditionalField(StrNullFieldUtf16("aPrincName", ""), lambda pkt: pkt.wAuthnSvc),
    ]

    def extract_padding(self, s):
        return b"", s


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StringBinding:
    tower_id: int
    network_address: str

    def to_bytes(self) -> bytes:
        return bytes(StringBindingPacket(wTowerId=self.tower_id, aNetworkAddr=self.network_address))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SecurityBinding:
    authn_svc: int
    principal_name: str = ""

    def to_bytes(self) -> bytes:
        return bytes(SecurityBindingPacket(wAuthnSvc=self.authn_svc, aPrincName=self.principal_name))


_TERMINATOR = b"\x00\x00"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DualStringArray:
    """A DUALSTRINGARRAY as typed values; encodes to both of its wire forms."""

    string_bindings: tuple[StringBinding, ...]
    security_bindings: tuple[SecurityBinding, ...]

    def _array(self) -> tuple[bytes, int]:
        strings = b"".join(b.to_bytes() for b in self.string_bindings)
        # An empty list is a lone terminator pair: "wNumEntries 4 ... 4 x 0" is the
        # smallest valid array, so each half contributes at least two NULs.
        strings += _TERMINATOR if self.string_bindings else _TERMINATOR * 2
        secs = b"".join(b.to_bytes() for b in self.security_bindings)
        secs += _TERMINATOR if self.security_bindings else _TERMINATOR * 2
        return strings + secs, len(strings) // 2

    def to_packet_bytes(self) -> bytes:
        """Packet encoding (inside OBJREF_STANDARD.saResAddr)."""
        array, security_offset = self._array()
        return struct.pack("<HH", len(array) // 2, security_offset) + array

    def to_ndr(self) -> DUALSTRINGARRAY:
        """NDR encoding for ServerAlive2 / ResolveOxid2 / ScmReplyInfoData."""
        array, security_offset = self._array()
        ndr = DUALSTRINGARRAY(
            wNumEntries=len(array) // 2,
            wSecurityOffset=security_offset,
            aStringArray=array,
            ndr64=False,
        )
        # scapy derives the conformance count from the byte length; the array is
        # of 16-bit units, so the count must equal wNumEntries.
        ndr.max_count = len(array) // 2
        return ndr

    @classmethod
    def from_array(cls, array: bytes, security_offset: int) -> "DualStringArray":
        """Parse the aStringArray bytes of either encoding.

        The array is the server's: anything that is not two NUL-terminated lists
        (strings up to ``security_offset``, then security bindings) raises ValueError
        saying what, and parsing always ends (every entry consumes bytes).
        """
        array = bytes(array)
        end = security_offset * 2
        if len(array) % 2 or end > len(array):
            raise ValueError(f"aStringArray of {len(array)} bytes with wSecurityOffset {security_offset}")
        strings, offset = [], 0
        while offset < end and array[offset:offset + 2] != _TERMINATOR:
            tower = _u16(array, offset, end, "wTowerId")
            address, offset = _utf16z(array, offset + 2, end, "aNetworkAddr")
            strings.append(StringBinding(tower_id=tower, network_address=address))
        secs, offset = [], end
        while offset < len(array) and array[offset:offset + 2] != _TERMINATOR:
            authn_svc = _u16(array, offset, len(array), "wAuthnSvc")
            name, offset = "", offset + 2
            if authn_svc:  # Reserved, then aPrincName (2.2.19.4)
                _u16(array, offset, len(array), "Reserved")
                name, offset = _utf16z(array, offset + 2, len(array), "aPrincName")
            secs.append(SecurityBinding(authn_svc=authn_svc, principal_name=name))
        return cls(string_bindings=tuple(strings), security_bindings=tuple(secs))


def _u16(data: bytes, offset: int, end: int, name: str) -> int:
    if offset + 2 > end:
        raise ValueError(f"DUALSTRINGARRAY: {name} runs past its list")
    return struct.unpack_from("<H", data, offset)[0]


def _utf16z(data: bytes, offset: int, end: int, name: str) -> tuple[str, int]:
    """A NUL-terminated UTF-16LE string at ``offset`` and the offset after its NUL."""
    for at in range(offset, end - 1, 2):
        if data[at:at + 2] == _TERMINATOR:
            try:
                return data[offset:at].decode("utf-16-le"), at + 2
            except UnicodeDecodeError as exc:
                raise ValueError(f"DUALSTRINGARRAY: {name} is not UTF-16 ({exc.reason})") from None
    raise ValueError(f"DUALSTRINGARRAY: {name} has no terminating NUL within its list")


_ADDRESS_WITH_PORT = re.compile(r"^(?P<host>.*)\[(?P<port>[0-9]{1,10})\]$", re.DOTALL)


def parse_network_address(address: str) -> tuple[str, int | None]:
    """Split ``host[port]`` ([MS-DCOM] 2.2.19.3) into host and port (None: no endpoint).
    The port is returned as written: whether it is a TCP port is the caller's question."""
    m = _ADDRESS_WITH_PORT.match(address)
    if m:
        return m.group("host"), int(m.group("port"))
    return address, None


def objref_standard(*, iid: uuid.UUID, oxid: int, oid: int, ipid: uuid.UUID, public_refs: int,
                    bindings: DualStringArray, flags: int = 0) -> bytes:
    """OBJREF with OBJREF_STANDARD ([MS-DCOM] 2.2.18.1, 2.2.18.2, 2.2.18.4)."""
    from scapy.layers.msrpce.msdcom import OBJREF, STDOBJREF

    head = bytes(OBJREF(flags=0x1, iid=iid))
    std = bytes(STDOBJREF(flags=flags, cPublicRefs=public_refs, oxid=oxid, oid=oid, ipid=ipid))
    return head + std + bindings.to_packet_bytes()


# -- IRemUnknown(2) with a corrected RemQueryInterface response ---------------------------
#
# [MS-DCOM] 3.1.1.5.6.1.1: ``[out, size_is(,cIids)] PREMQIRESULT *ppQIResults``.  The
# outer pointer is a top-level [ref] (nothing on the wire), the inner one unique: a
# referent id, then a conformant array of cIids REMQIRESULTs (max_count, elements),
# as Wireshark's dissector reads it.  scapy 2.8 encodes an array of pointers instead
# (and impacket reads a single element without max_count), so this one response is
# defined here and every user of IRemUnknown in this project takes these tables.

from scapy.layers.dcerpc import (  # noqa: E402
    DceRpcOp, NDRConfPacketListField, NDRFullPointerField, NDRIntField, NDRPacket,
)
from scapy.layers.msrpce.raw import ms_dcom as _ms_dcom  # noqa: E402


class RemQueryInterface_Response(NDRPacket):
    fields_desc = [
        NDRFullPointerField(
            NDRConfPacketListField("ppQIResults", [], _ms_dcom.REMQIRESULT,
                                   size_is=lambda pkt: pkt.cIids)),
        NDRIntField("status", 0),
    ]


IREMUNKNOWN_OPNUMS = {
    3: DceRpcOp(_ms_dcom.RemQueryInterface_Request, RemQueryInterface_Response),
    4: DceRpcOp(_ms_dcom.RemAddRef_Request, _ms_dcom.RemAddRef_Response),
    5: DceRpcOp(_ms_dcom.RemRelease_Request, _ms_dcom.RemRelease_Response),
}
IREMUNKNOWN2_OPNUMS = {
    **IREMUNKNOWN_OPNUMS,
    6: DceRpcOp(_ms_dcom.RemQueryInterface2_Request, _ms_dcom.RemQueryInterface2_Response),
}
__all__ += ["RemQueryInterface_Response", "IREMUNKNOWN_OPNUMS", "IREMUNKNOWN2_OPNUMS"]
