"""CA properties: the table, the index/type rules, GetCACert selectors, the name rules."""

from __future__ import annotations

import struct

import pytest

from conformance.refca.properties import (
    CAFacts, PropertyError, ca_cert_value, property_info, property_value, sanitize_ca_name,
)
from conformance.wire.wcce import CAINFO, CATRANSPROP, CAPropId, GetCACertSelector, HResult, PropType

FACTS = CAFacts(ca_name="LAB CA", dns_name="ca.lab.test", ca_type=0, ca_cert_der=b"CERT",
                ca_chain_pkcs7=b"P7", crl_der=lambda: b"CRL", templates="User\n\nWeb\n1.2.3\n",
                cainfo=CAINFO(CAType=0))


def _utf16(data: bytes) -> str:
    assert data.endswith(b"\0\0")
    return data.decode("utf-16-le")[:-1]


def test_values_by_type():
    assert _utf16(property_value(FACTS, CAPropId.CANAME, 0, PropType.STRING)) == "LAB CA"
    assert _utf16(property_value(FACTS, CAPropId.TEMPLATES, 0, PropType.STRING)) == "User\n\nWeb\n1.2.3\n"
    assert property_value(FACTS, CAPropId.CASIGCERT, -1, PropType.BINARY) == b"CERT"
    # "Long" properties answered from CAINFO come back as a whole CAINFO ([MS-WCCE] 3.2.1.4.3.2.10)
    assert len(property_value(FACTS, CAPropId.CATYPE, 0, PropType.LONG)) == 40
    assert struct.unpack("<i", property_value(FACTS, CAPropId.CAPROPIDMAX, 0, PropType.LONG))[0] == 0x2D


@pytest.mark.parametrize("prop_id, index, prop_type", [
    (0x7F, 0, PropType.LONG),  # unknown
    (CAPropId.CANAME, 0, PropType.BINARY),  # wrong type
    (CAPropId.CANAME, 1, PropType.STRING),  # index out of range
    (CAPropId.CASIGCERT, 1, PropType.BINARY),
])
def test_failures_are_e_invalidarg(prop_id, index, prop_type):
    with pytest.raises(PropertyError) as info:
        property_value(FACTS, prop_id, index, prop_type)
    assert info.value.hresult == HResult.E_INVALIDARG


def test_property_info_layout():
    count, blob = property_info()
    entries = [CATRANSPROP(blob[i * 12:(i + 1) * 12]) for i in range(count)]
    assert [e.lPropID for e in entries] == sorted(e.lPropID for e in entries)
    for entry in entries:
        assert entry.obwszDisplayName % 4 == 0 and entry.obwszDisplayName >= 12 * count
        name = blob[entry.obwszDisplayName:].decode("utf-16-le").split("\0")[0]
        assert name


@pytest.mark.parametrize("selector, expected", [
    (GetCACertSelector.CASIGCERT, b"CERT"),
    (GetCACertSelector.CURRENTCRL, b"CRL"),
    (GetCACertSelector.CACERTBYINDEX | 0, b"CERT"),
    (GetCACertSelector.CATYPE, struct.pack("<I", 0)),
])
def test_get_ca_cert_selectors(selector, expected):
    assert ca_cert_value(FACTS, selector) == expected


@pytest.mark.parametrize("selector", [GetCACertSelector.PARENTCONFIG, 0x12345678,
                                      GetCACertSelector.CACERTBYINDEX | 3])
def test_unavailable_selectors(selector):
    with pytest.raises(PropertyError):
        ca_cert_value(FACTS, selector)


def test_sanitized_name():
    assert sanitize_ca_name("LAB CA") == "LAB CA"
    assert sanitize_ca_name("A:B*C") == "A!003aB!002aC"
