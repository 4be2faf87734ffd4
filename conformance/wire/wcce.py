"""[MS-WCCE] ICertRequestD / ICertRequestD2: NDR definitions and protocol numbers.

IDL: [MS-WCCE] 3.2.1.4.2 and 3.2.1.4.3 (go-msrpc ``idl/dcom/wcce.idl`` matches).
Shaped like a scapy ``msrpce/raw`` interface module: ``<Method>_Request`` /
``<Method>_Response`` NDR packets (without ORPCTHIS/ORPCTHAT, which scapy's
session layer handles for COM interfaces), an opnum table, one registration at
the bottom.  Import this module only through ``conformance.wire``.

Everything numeric the suite, the client and the reference CA need about WCCE
lives here as an enum, so logic never carries a bare ``0x80094800``.
"""

from __future__ import annotations

import enum
import uuid

from scapy.fields import (
    ByteField,
    LEIntField,
    LEShortField,
    LESignedIntField,
)
from scapy.layers.dcerpc import (
    DceRpcOp,
    NDRConfStrLenField,
    NDRConfVarStrNullFieldUtf16,
    NDRFullEmbPointerField,
    NDRFullPointerField,
    NDRIntField,
    NDRPacket,
    NDRPacketField,
    NDRSignedIntField,
    register_com_interface,
)
from scapy.packet import Packet

from conformance.wire.hresult import HResult
from conformance.wire.ndrcodec import NdrRecord, record

__all__ = [
    "IID_ICERTREQUESTD",
    "IID_ICERTREQUESTD2",
    "CLSID_CCERTREQUESTD",
    "Opnum",
    "Disposition",
    "HResult",
    "RequestType",
    "RequestFlag",
    "GetCACertSelector",
    "CAPropId",
    "PropType",
    "CAType",
    "InterfaceFlag",
    "CERTTRANSBLOB",
    "CAINFO",
    "CATRANSPROP",
    "Request_Request",
    "Request_Response",
    "GetCACert_Request",
    "GetCACert_Response",
    "Ping_Request",
    "Ping_Response",
    "Request2_Request",
    "Request2_Response",
    "GetCAProperty_Request",
    "GetCAProperty_Response",
    "GetCAPropertyInfo_Request",
    "GetCAPropertyInfo_Response",
    "Ping2_Request",
    "Ping2_Response",
    "ICERTREQUESTD_OPNUMS",
    "ICERTREQUESTD2_OPNUMS",
    "blob",
    "blob_record",
    "blob_bytes",
    "utf16z",
]

# [MS-WCCE] 1.9
IID_ICERTREQUESTD = uuid.UUID("d99e6e70-fc88-11d0-b498-00a0c90312f3")
IID_ICERTREQUESTD2 = uuid.UUID("5422fd3a-d4b8-4cef-a12e-e87d4ca22e90")
CLSID_CCERTREQUESTD = uuid.UUID("d99e6e74-fc88-11d0-b498-00a0c90312f3")


class Opnum(enum.IntEnum):
    """[MS-WCCE] 3.2.1.4.2 / 3.2.1.4.3 (0-2 are IUnknown's and never on the wire)."""

    REQUEST = 3
    GET_CA_CERT = 4
    PING = 5
    REQUEST2 = 6
    GET_CA_PROPERTY = 7
    GET_CA_PROPERTY_INFO = 8
    PING2 = 9


class Disposition(enum.IntEnum):
    """CR_DISP_* ([MS-WCCE] 3.2.1.4.2.1, certcli.h); other values are HRESULTs."""

    INCOMPLETE = 0
    ERROR = 1
    DENIED = 2
    ISSUED = 3
    ISSUED_OUT_OF_BAND = 4
    UNDER_SUBMISSION = 5
    REVOKED = 6


class RequestType(enum.IntEnum):
    """The RequestType byte of dwFlags (mask 0x0000FF00), [MS-WCCE] 3.2.1.4.3.1.1."""

    ANY = 0x000
    PKCS10 = 0x100
    KEYGEN = 0x200
    PKCS7 = 0x300
    CMC = 0x400
    CHALLENGE_RESPONSE = 0x500
    SCT_LIST = 0x600


class RequestFlag(enum.IntFlag):
    """Flags and masks of dwFlags ([MS-WCCE] 3.2.1.4.3.1.1, certcli.h)."""

    FORMAT_MASK = 0x0000FF00
    PADDING_MASK = 0x000000FF  # Padding2: MUST be 0 on the wire
    FULLRESPONSE = 0x00040000  # bit Y, Request2 only
    CRLS = 0x00080000  # bit X
    ROBO = 0x00200000  # bit Z


class GetCACertSelector(enum.IntEnum):
    """GetCACert fchain values ([MS-WCCE] 3.2.1.4.2.2); four-letter ASCII tags."""

    CASIGCERT = 0x00000000
    CAXCHGCERT = 0x00000001
    CURRENTCRL = 0x6363726C  # "ccrl"
    FILEVERSION = 0x66696C65  # "file"
    CAINFO = 0x696E666F  # "info"
    CANAME = 0x6E616D65  # "name"
    PARENTCONFIG = 0x70617265  # "pare"
    POLICYVERSION = 0x706F6C69  # "poli"
    PRODUCTVERSION = 0x70726F64  # "prod"
    SANITIZEDCANAME = 0x73616E69  # "sani"
    SHAREDFOLDER = 0x73686172  # "shar"
    CATYPE = 0x74797065  # "type"
    # Indexed selectors: high 16 bits are the tag, low 16 bits the index.
    CRLBYINDEX = 0x636C0000  # "cl"
    CACERTBYINDEX = 0x63740000  # "ct"
    EXITVERSIONBYINDEX = 0x65780000  # "ex"
    CRLSTATEBYINDEX = 0x736C0000  # "sl"
    CACERTSTATEBYINDEX = 0x73740000  # "st"


class CAPropId(enum.IntEnum):
    """CR_PROP_* ([MS-WCCE] 3.2.1.4.3.2)."""

    FILEVERSION = 0x01
    PRODUCTVERSION = 0x02
    EXITCOUNT = 0x03
    EXITDESCRIPTION = 0x04
    POLICYDESCRIPTION = 0x05
    CANAME = 0x06
    SANITIZEDCANAME = 0x07
    SHAREDFOLDER = 0x08
    PARENTCA = 0x09
    CATYPE = 0x0A
    CASIGCERTCOUNT = 0x0B
    CASIGCERT = 0x0C
    CASIGCERTCHAIN = 0x0D
    CAXCHGCERTCOUNT = 0x0E
    CAXCHGCERT = 0x0F
    CAXCHGCERTCHAIN = 0x10
    BASECRL = 0x11
    DELTACRL = 0x12
    CACERTSTATE = 0x13
    CRLSTATE = 0x14
    CAPROPIDMAX = 0x15
    DNSNAME = 0x16
    ROLESEPARATIONENABLED = 0x17
    KRACERTUSEDCOUNT = 0x18
    KRACERTCOUNT = 0x19
    KRACERT = 0x1A
    KRACERTSTATE = 0x1B
    ADVANCEDSERVER = 0x1C
    TEMPLATES = 0x1D
    BASECRLPUBLISHSTATUS = 0x1E
    DELTACRLPUBLISHSTATUS = 0x1F
    CASIGCERTCRLCHAIN = 0x20
    CAXCHGCERTCRLCHAIN = 0x21
    CACERTSTATUSCODE = 0x22
    CAFORWARDCROSSCERT = 0x23
    CABACKWARDCROSSCERT = 0x24
    CAFORWARDCROSSCERTSTATE = 0x25
    CABACKWARDCROSSCERTSTATE = 0x26
    CACERTVERSION = 0x27
    SANITIZEDCASHORTNAME = 0x28
    CERTCDPURLS = 0x29
    CERTAIAURLS = 0x2A
    CERTAIAOCSPURLS = 0x2B
    LOCALENAME = 0x2C
    SUBJECTTEMPLATE_OIDS = 0x2D


class PropType(enum.IntEnum):
    """PROPTYPE_* ([MS-WCCE] 3.2.1.4.3.2, 2.2.2.3)."""

    LONG = 1
    DATE = 2
    BINARY = 3
    STRING = 4


class CAType(enum.IntEnum):
    """CAINFO.CAType ([MS-WCCE] 2.2.2.4); 2 MUST NOT be used."""

    ENTERPRISE_ROOT = 0
    ENTERPRISE_SUB = 1
    STANDALONE_ROOT = 3
    STANDALONE_SUB = 4
    UNKNOWN = 5


class InterfaceFlag(enum.IntFlag):
    """Config_CA_Interface_Flags ([MS-WCCE] 3.2.1.1.4; values: [MS-CSRA] 3.1.4.2.14)."""

    LOCKICERTREQUEST = 0x00000001
    NOREMOTEICERTREQUEST = 0x00000002
    NOLOCALICERTREQUEST = 0x00000004
    NORPCICERTREQUEST = 0x00000008
    NOREMOTEICERTADMIN = 0x00000010
    NOLOCALICERTADMIN = 0x00000020
    NOREMOTEICERTADMINBACKUP = 0x00000040
    NOLOCALICERTADMINBACKUP = 0x00000080
    NOSNAPSHOTBACKUP = 0x00000100
    ENFORCEENCRYPTICERTREQUEST = 0x00000200
    ENFORCEENCRYPTICERTADMIN = 0x00000400
    ENABLEEXITKEYRETRIEVAL = 0x00000800
    ENABLEADMINASAUDITOR = 0x00001000


# -- NDR structures -------------------------------------------------------------


class CERTTRANSBLOB(NDRPacket):
    """[MS-WCCE] 2.2.2.2: ``{ULONG cb; [size_is(cb), unique] BYTE *pb;}``."""

    ALIGNMENT = (4, 8)
    fields_desc = [
        NDRIntField("cb", None, size_of="pb"),
        NDRFullEmbPointerField(NDRConfStrLenField("pb", b"", size_is=lambda pkt: pkt.cb)),
    ]


def _authority_field(name: str = "pwszAuthority"):
    # [in, string, unique, range(1, 1536)] wchar_t const *
    return NDRFullPointerField(NDRConfVarStrNullFieldUtf16(name, ""))


class Request_Request(NDRPacket):
    """ICertRequestD::Request (opnum 3), [MS-WCCE] 3.2.1.4.2.1."""

    fields_desc = [
        NDRIntField("dwFlags", 0),
        _authority_field(),
        NDRIntField("pdwRequestId", 0),
        NDRFullPointerField(NDRConfVarStrNullFieldUtf16("pwszAttributes", "")),
        NDRPacketField("pctbRequest", CERTTRANSBLOB(), CERTTRANSBLOB),
    ]


class Request_Response(NDRPacket):
    fields_desc = [
        NDRIntField("pdwRequestId", 0),
        NDRIntField("pdwDisposition", 0),
        NDRPacketField("pctbCertChain", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRPacketField("pctbEncodedCert", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRPacketField("pctbDispositionMessage", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRIntField("status", 0),
    ]


class GetCACert_Request(NDRPacket):
    """ICertRequestD::GetCACert (opnum 4), [MS-WCCE] 3.2.1.4.2.2."""

    fields_desc = [NDRIntField("fchain", 0), _authority_field()]


class GetCACert_Response(NDRPacket):
    fields_desc = [
        NDRPacketField("pctbOut", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRIntField("status", 0),
    ]


class Ping_Request(NDRPacket):
    """ICertRequestD::Ping (opnum 5), [MS-WCCE] 3.2.1.4.2.3."""

    fields_desc = [_authority_field()]


class Ping_Response(NDRPacket):
    fields_desc = [NDRIntField("status", 0)]


class Request2_Request(NDRPacket):
    """ICertRequestD2::Request2 (opnum 6), [MS-WCCE] 3.2.1.4.3.1.

    Note the order: pwszAuthority comes before dwFlags here, unlike Request.
    """

    fields_desc = [
        _authority_field(),
        NDRIntField("dwFlags", 0),
        NDRFullPointerField(NDRConfVarStrNullFieldUtf16("pwszSerialNumber", "")),
        NDRIntField("pdwRequestId", 0),
        NDRFullPointerField(NDRConfVarStrNullFieldUtf16("pwszAttributes", "")),
        NDRPacketField("pctbRequest", CERTTRANSBLOB(), CERTTRANSBLOB),
    ]


class Request2_Response(NDRPacket):
    fields_desc = [
        NDRIntField("pdwRequestId", 0),
        NDRIntField("pdwDisposition", 0),
        NDRPacketField("pctbFullResponse", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRPacketField("pctbEncodedCert", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRPacketField("pctbDispositionMessage", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRIntField("status", 0),
    ]


class GetCAProperty_Request(NDRPacket):
    """ICertRequestD2::GetCAProperty (opnum 7), [MS-WCCE] 3.2.1.4.3.2."""

    fields_desc = [
        _authority_field(),
        NDRSignedIntField("PropID", 0),
        NDRSignedIntField("PropIndex", 0),
        NDRSignedIntField("PropType", 0),
    ]


class GetCAProperty_Response(NDRPacket):
    fields_desc = [
        NDRPacketField("pctbPropertyValue", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRIntField("status", 0),
    ]


class GetCAPropertyInfo_Request(NDRPacket):
    """ICertRequestD2::GetCAPropertyInfo (opnum 8), [MS-WCCE] 3.2.1.4.3.3."""

    fields_desc = [_authority_field()]


class GetCAPropertyInfo_Response(NDRPacket):
    fields_desc = [
        NDRSignedIntField("pcProperty", 0),
        NDRPacketField("pctbPropInfo", CERTTRANSBLOB(), CERTTRANSBLOB),
        NDRIntField("status", 0),
    ]


class Ping2_Request(NDRPacket):
    """ICertRequestD2::Ping2 (opnum 9), [MS-WCCE] 3.2.1.4.3.4."""

    fields_desc = [_authority_field()]


class Ping2_Response(NDRPacket):
    fields_desc = [NDRIntField("status", 0)]


# -- structures carried inside CERTTRANSBLOB.pb (plain little-endian) ------------


class CAINFO(Packet):
    """[MS-WCCE] 2.2.2.4, 40 bytes."""

    name = "CAINFO"
    fields_desc = [
        LEIntField("cbSize", 40),
        LESignedIntField("CAType", CAType.STANDALONE_ROOT),
        LEIntField("cCASignatureCerts", 1),
        LEIntField("cCAExchangeCerts", 1),
        LEIntField("cExitAlgorithms", 0),
        LESignedIntField("lPropIDMax", CAPropId.SUBJECTTEMPLATE_OIDS),
        LESignedIntField("lRoleSeparationEnabled", 0),
        LEIntField("cKRACertUsedCount", 0),
        LEIntField("cKRACertCount", 0),
        LEIntField("fAdvancedServer", 0),
    ]


class CATRANSPROP(Packet):
    """[MS-WCCE] 2.2.2.3, 12 bytes each."""

    name = "CATRANSPROP"
    fields_desc = [
        LESignedIntField("lPropID", 0),
        ByteField("propType", PropType.LONG),
        ByteField("Reserved", 0),
        LEShortField("propFlags", 0),
        LEIntField("obwszDisplayName", 0),
    ]

    def extract_padding(self, s):
        return b"", s


# -- helpers ---------------------------------------------------------------------


def utf16z(text: str) -> bytes:
    """UTF-16LE with the NUL terminator, as WCCE strings in blobs are encoded."""
    return (text + "\0").encode("utf-16-le")


def blob(data: bytes | None) -> CERTTRANSBLOB:
    """A CERTTRANSBLOB; ``None`` or ``b""`` is the empty blob (cb 0, pb NULL)."""
    if not data:
        return CERTTRANSBLOB(cb=0, pb=None, ndr64=False)
    return CERTTRANSBLOB(cb=len(data), pb=data, ndr64=False)


def blob_record(data: bytes | None) -> NdrRecord:
    """``blob`` as a record for the compiled codec (``conformance.wire.ndrcodec``)."""
    return record(CERTTRANSBLOB, pb=data or None)


def blob_bytes(value: CERTTRANSBLOB) -> bytes:
    """The bytes of a dissected CERTTRANSBLOB (empty for a NULL ``pb``)."""
    data = value.valueof("pb")
    return bytes(data) if data else b""


ICERTREQUESTD_OPNUMS = {
    Opnum.REQUEST: DceRpcOp(Request_Request, Request_Response),
    Opnum.GET_CA_CERT: DceRpcOp(GetCACert_Request, GetCACert_Response),
    Opnum.PING: DceRpcOp(Ping_Request, Ping_Response),
}
ICERTREQUESTD2_OPNUMS = {
    **ICERTREQUESTD_OPNUMS,
    Opnum.REQUEST2: DceRpcOp(Request2_Request, Request2_Response),
    Opnum.GET_CA_PROPERTY: DceRpcOp(GetCAProperty_Request, GetCAProperty_Response),
    Opnum.GET_CA_PROPERTY_INFO: DceRpcOp(GetCAPropertyInfo_Request, GetCAPropertyInfo_Response),
    Opnum.PING2: DceRpcOp(Ping2_Request, Ping2_Response),
}

register_com_interface(name="ICertRequestD", uuid=IID_ICERTREQUESTD, opnums=ICERTREQUESTD_OPNUMS)
register_com_interface(name="ICertRequestD2", uuid=IID_ICERTREQUESTD2, opnums=ICERTREQUESTD2_OPNUMS)
