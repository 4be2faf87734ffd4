"""CA properties served by GetCAProperty, GetCAPropertyInfo and GetCACert.

[MS-WCCE] 3.2.1.4.3.2 (table of PropID / PropType / PropIndex) and 3.2.1.4.2.2
(the GetCACert ``fchain`` selectors, each equivalent to a property).  The table
below is the single description of what this CA answers; the service maps wire
requests onto it.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

from conformance.wire.wcce import (
    CAINFO, CATRANSPROP, CAPropId, GetCACertSelector, HResult, PropType, utf16z,
)

__all__ = ["PropertyError", "CAFacts", "PROPERTIES", "property_value", "property_info",
           "ca_cert_value", "sanitize_ca_name"]

#: CA_DISP_VALID (certsrv.h): state byte of a valid CA certificate or CRL.
CA_DISP_VALID = 3
FILE_VERSION = "10.0:26100.1"
PRODUCT_VERSION = "10.0:26100.1"
POLICY_DESCRIPTION = "wcce-conformance reference CA policy module"
#: CATRANSPROP.propFlags bit of a property that takes PropIndex (PROPFLAGS_INDEXED, [MS-WCCE] 2.2.2.3).
PROPFLAGS_INDEXED = 0x0001
#: An indexed GetCACert selector: the tag in the high 16 bits, the index in the low 16.
_SELECTOR_TAG_MASK = 0xFFFF0000
_SELECTOR_INDEX_MASK = 0x0000FFFF


class PropertyError(ValueError):
    def __init__(self, hresult: int, message: str) -> None:
        super().__init__(message)
        self.hresult = hresult


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CAFacts:
    """What the properties are computed from (kept free of I/O)."""

    ca_name: str
    dns_name: str
    ca_type: int
    ca_cert_der: bytes
    ca_chain_pkcs7: bytes
    crl_der: Callable[[], bytes]
    templates: str
    cainfo: CAINFO


def sanitize_ca_name(name: str) -> str:
    """Sanitized CA name ([MS-WCCE] 3.1.1.4.1.1): characters unsafe in file and
    directory names become ``!xxxx`` (their UTF-16 code, four hex digits)."""
    unsafe = set('<>"/\\:|?*#,+;!')
    return "".join(f"!{ord(ch):04x}" if ch in unsafe or not 0x20 <= ord(ch) <= 0x7E else ch
                   for ch in name)


def _long(value: int) -> bytes:
    return struct.pack("<i", value)


def _cainfo(facts: CAFacts, _index: int) -> bytes:
    return bytes(facts.cainfo)


# PropID -> (type, number of valid indexes (None: latest only, -1 allowed), value)
_Value = Callable[[CAFacts, int], bytes]
_LATEST = -1


@dataclasses.dataclass(frozen=True, slots=True)
class _Prop:
    prop_type: PropType
    indexed: bool  # index 0..count-1 (and -1 = latest) instead of only 0
    value: _Value
    display: str


PROPERTIES: dict[int, _Prop] = {
    CAPropId.FILEVERSION: _Prop(PropType.STRING, False, lambda f, i: utf16z(FILE_VERSION), "File Version"),
    CAPropId.PRODUCTVERSION: _Prop(PropType.STRING, False, lambda f, i: utf16z(PRODUCT_VERSION), "Product Version"),
    CAPropId.EXITCOUNT: _Prop(PropType.LONG, False, _cainfo, "Exit Count"),
    CAPropId.POLICYDESCRIPTION: _Prop(PropType.STRING, False, lambda f, i: utf16z(POLICY_DESCRIPTION), "Policy Description"),
    CAPropId.CANAME: _Prop(PropType.STRING, False, lambda f, i: utf16z(f.ca_name), "CA Name"),
    CAPropId.SANITIZEDCANAME: _Prop(PropType.STRING, False, lambda f, i: utf16z(sanitize_ca_name(f.ca_name)), "Sanitized CA Name"),
    CAPropId.CATYPE: _Prop(PropType.LONG, False, _cainfo, "CA Type"),
    CAPropId.CASIGCERTCOUNT: _Prop(PropType.LONG, False, _cainfo, "CA Signature Certificate Count"),
    CAPropId.CASIGCERT: _Prop(PropType.BINARY, True, lambda f, i: f.ca_cert_der, "CA Signature Certificate"),
    CAPropId.CASIGCERTCHAIN: _Prop(PropType.BINARY, True, lambda f, i: f.ca_chain_pkcs7, "CA Signature Certificate Chain"),
    CAPropId.CAXCHGCERTCOUNT: _Prop(PropType.LONG, False, lambda f, i: _long(1), "CA Exchange Certificate Count"),
    CAPropId.CAXCHGCERT: _Prop(PropType.BINARY, True, lambda f, i: f.ca_cert_der, "CA Exchange Certificate"),
    CAPropId.CAXCHGCERTCHAIN: _Prop(PropType.BINARY, True, lambda f, i: f.ca_chain_pkcs7, "CA Exchange Certificate Chain"),
    CAPropId.BASECRL: _Prop(PropType.BINARY, True, lambda f, i: f.crl_der(), "Base CRL"),
    CAPropId.CACERTSTATE: _Prop(PropType.LONG, False, lambda f, i: bytes([CA_DISP_VALID]), "CA Certificate State"),
    CAPropId.CRLSTATE: _Prop(PropType.LONG, False, lambda f, i: bytes([CA_DISP_VALID]), "CRL State"),
    CAPropId.CAPROPIDMAX: _Prop(PropType.LONG, False, lambda f, i: _long(CAPropId.SUBJECTTEMPLATE_OIDS), "Maximum Property ID"),
    CAPropId.DNSNAME: _Prop(PropType.STRING, False, lambda f, i: utf16z(f.dns_name), "DNS Name"),
    CAPropId.ROLESEPARATIONENABLED: _Prop(PropType.LONG, False, lambda f, i: _long(0), "Role Separation Enabled"),
    CAPropId.KRACERTUSEDCOUNT: _Prop(PropType.LONG, False, lambda f, i: _long(0), "KRA Certificates Used Count"),
    CAPropId.KRACERTCOUNT: _Prop(PropType.LONG, False, _cainfo, "KRA Certificate Count"),
    CAPropId.ADVANCEDSERVER: _Prop(PropType.LONG, False, _cainfo, "Advanced Server"),
    CAPropId.TEMPLATES: _Prop(PropType.STRING, False, lambda f, i: utf16z(f.templates), "Templates"),
    CAPropId.CACERTSTATUSCODE: _Prop(PropType.LONG, True, lambda f, i: _long(0), "CA Certificate Status Code"),
    CAPropId.CACERTVERSION: _Prop(PropType.LONG, True, lambda f, i: _long(0), "CA Certificate Version"),
    CAPropId.SANITIZEDCASHORTNAME: _Prop(PropType.STRING, False, lambda f, i: utf16z(sanitize_ca_name(f.ca_name)), "Sanitized CA Short Name"),
    CAPropId.CERTCDPURLS: _Prop(PropType.STRING, True, lambda f, i: utf16z(""), "Certificate CDP URLs"),
    CAPropId.CERTAIAURLS: _Prop(PropType.STRING, True, lambda f, i: utf16z(""), "Certificate AIA URLs"),
    CAPropId.CERTAIAOCSPURLS: _Prop(PropType.STRING, True, lambda f, i: utf16z(""), "Certificate AIA OCSP URLs"),
    CAPropId.LOCALENAME: _Prop(PropType.STRING, False, lambda f, i: utf16z("en-US"), "Locale Name"),
    CAPropId.SUBJECTTEMPLATE_OIDS: _Prop(PropType.STRING, False, lambda f, i: utf16z("2.5.4.3\n"), "Subject Template OIDs"),
}

#: The CA has one signing certificate and one CRL: index 0, or -1 for "latest".
_VALID_INDEXES = {0, _LATEST}


def property_value(facts: CAFacts, prop_id: int, index: int, prop_type: int) -> bytes:
    """"The CA MUST fail if PropID is unknown, PropType does not match, or PropIndex
    is out of range" ([MS-WCCE] 3.2.1.4.3.2)."""
    prop = PROPERTIES.get(prop_id)
    if prop is None:
        raise PropertyError(HResult.E_INVALIDARG, f"unknown PropID {prop_id}")
    if prop_type != prop.prop_type:
        raise PropertyError(HResult.E_INVALIDARG,
                            f"PropID {prop_id} is of type {prop.prop_type.name}, not {prop_type}")
    if index not in (_VALID_INDEXES if prop.indexed else {0}):
        raise PropertyError(HResult.E_INVALIDARG, f"PropIndex {index} out of range for {prop_id}")
    return prop.value(facts, index)


def property_info() -> tuple[int, bytes]:
    """GetCAPropertyInfo: (count, CATRANSPROP array followed by the display names)."""
    entries = sorted(PROPERTIES.items())
    table_len = len(bytes(CATRANSPROP())) * len(entries)
    names, offsets = b"", []
    for _, prop in entries:
        offsets.append(table_len + len(names))
        encoded = utf16z(prop.display)
        names += encoded + b"\0" * (-len(encoded) % 4)  # names are DWORD-aligned
    table = b"".join(
        bytes(CATRANSPROP(lPropID=prop_id, propType=prop.prop_type, obwszDisplayName=offset,
                          propFlags=PROPFLAGS_INDEXED if prop.indexed else 0))
        for (prop_id, prop), offset in zip(entries, offsets)
    )
    return len(entries), table + names


# GetCACert fchain -> (property it equals, index); [MS-WCCE] 3.2.1.4.2.2
_SELECTORS: dict[int, tuple[int, PropType]] = {
    GetCACertSelector.CASIGCERT: (CAPropId.CASIGCERT, PropType.BINARY),
    GetCACertSelector.CAXCHGCERT: (CAPropId.CAXCHGCERT, PropType.BINARY),
    GetCACertSelector.CURRENTCRL: (CAPropId.BASECRL, PropType.BINARY),
    GetCACertSelector.FILEVERSION: (CAPropId.FILEVERSION, PropType.STRING),
    GetCACertSelector.CAINFO: (CAPropId.CATYPE, PropType.LONG),
    GetCACertSelector.CANAME: (CAPropId.CANAME, PropType.STRING),
    GetCACertSelector.POLICYVERSION: (CAPropId.POLICYDESCRIPTION, PropType.STRING),
    GetCACertSelector.PRODUCTVERSION: (CAPropId.PRODUCTVERSION, PropType.STRING),
    GetCACertSelector.SANITIZEDCANAME: (CAPropId.SANITIZEDCANAME, PropType.STRING),
}
_INDEXED_SELECTORS: dict[int, tuple[int, PropType]] = {
    GetCACertSelector.CRLBYINDEX: (CAPropId.BASECRL, PropType.BINARY),
    GetCACertSelector.CACERTBYINDEX: (CAPropId.CASIGCERT, PropType.BINARY),
    GetCACertSelector.CRLSTATEBYINDEX: (CAPropId.CRLSTATE, PropType.LONG),
    GetCACertSelector.CACERTSTATEBYINDEX: (CAPropId.CACERTSTATE, PropType.LONG),
}
#: Selectors exempt from the CA-name check ([MS-WCCE] 3.2.1.4.2.2).
NAME_CHECK_EXEMPT = {GetCACertSelector.CANAME, GetCACertSelector.SANITIZEDCANAME}


def ca_cert_value(facts: CAFacts, fchain: int) -> bytes:
    if fchain == GetCACertSelector.CATYPE:
        return struct.pack("<I", facts.ca_type)
    if fchain in _SELECTORS:
        prop_id, prop_type = _SELECTORS[fchain]
        return property_value(facts, prop_id, 0, prop_type)
    tag, index = fchain & _SELECTOR_TAG_MASK, fchain & _SELECTOR_INDEX_MASK
    if tag in _INDEXED_SELECTORS:
        prop_id, prop_type = _INDEXED_SELECTORS[tag]
        return property_value(facts, prop_id, index, prop_type)
    # PARENTCONFIG (a root CA has no parent), SHAREDFOLDER, EXITVERSIONBYINDEX (no exit
    # modules) and anything unknown: "SHOULD be E_INVALIDARG".
    raise PropertyError(HResult.E_INVALIDARG, f"GetCACert selector 0x{fchain:08x} not available")
