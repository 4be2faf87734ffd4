"""MS-WCCE NDR definitions: round trips, and agreement with impacket's encoder."""

from __future__ import annotations

import pytest

from conformance.wire import wcce

CASES = [
    wcce.Request_Request(dwFlags=0x100, pwszAuthority="LAB-CA", pdwRequestId=0,
                         pwszAttributes="CertificateTemplate:User", pctbRequest=wcce.blob(b"\x30\x82abc")),
    wcce.Request_Request(dwFlags=0, pwszAuthority="LAB-CA", pdwRequestId=7, pwszAttributes=None,
                         pctbRequest=wcce.blob(None)),
    wcce.Request2_Request(pwszAuthority="LAB-CA", dwFlags=0, pwszSerialNumber="1a2b",
                          pdwRequestId=0, pwszAttributes=None, pctbRequest=wcce.blob(b"")),
    wcce.GetCACert_Request(fchain=wcce.GetCACertSelector.CAINFO, pwszAuthority="LAB-CA"),
    wcce.GetCAProperty_Request(pwszAuthority="LAB-CA", PropID=0x1D, PropIndex=-1, PropType=4),
    wcce.Ping_Request(pwszAuthority=None),
]


@pytest.mark.parametrize("pkt", CASES, ids=lambda p: type(p).__name__)
def test_round_trip(pkt):
    pkt.ndr64 = False
    data = bytes(pkt)
    again = type(pkt)(data, ndr64=False)
    assert bytes(again) == data


def test_empty_blob_is_null_pointer():
    data = bytes(wcce.blob(None))
    assert data == b"\0" * 8  # cb 0, pb NULL ([MS-WCCE] 2.2.2.2)


def test_request_matches_impacket_encoding():
    """Decode impacket's encoding of the same call with our definitions."""
    ndr = pytest.importorskip("impacket.dcerpc.v5.ndr")
    from impacket.dcerpc.v5.dtypes import DWORD, LPWSTR, PBYTE, ULONG

    class Blob(ndr.NDRSTRUCT):
        structure = (("cb", ULONG), ("pb", PBYTE))

    class Request(ndr.NDRCALL):
        opnum = 3
        structure = (("dwFlags", DWORD), ("pwszAuthority", LPWSTR), ("pdwRequestId", DWORD),
                     ("pwszAttributes", LPWSTR), ("pctbRequest", Blob))

    req = Request()
    req["dwFlags"] = 0x100
    req["pwszAuthority"] = "LAB-CA\x00"
    req["pdwRequestId"] = 3
    req["pwszAttributes"] = "CertificateTemplate:User\x00"
    blob = Blob()
    blob["cb"] = 5
    blob["pb"] = b"\x30\x03\x02\x01\x00"
    req["pctbRequest"] = blob
    ours = wcce.Request_Request(req.getData(), ndr64=False)
    assert (ours.dwFlags, ours.pdwRequestId) == (0x100, 3)
    assert ours.valueof("pwszAuthority") == b"LAB-CA"
    assert ours.valueof("pwszAttributes") == b"CertificateTemplate:User"
    assert wcce.blob_bytes(ours.pctbRequest) == b"\x30\x03\x02\x01\x00"
