"""Request blobs (PKCS#10, CMS-wrapped, CMC) and request attributes."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from pyasn1.codec.der.decoder import decode as der_decode
from pyasn1.codec.der.encoder import encode as der_encode
from pyasn1_modules import rfc2986, rfc5652, rfc6402

from conformance.refca.requests import RequestRejected, parse_attributes, parse_request
from conformance.wire.wcce import HResult, RequestType
from tests.support.certs import make_csr

KEY = ec.generate_private_key(ec.SECP256R1())


def _self_signed():
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(KEY.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(KEY, hashes.SHA256()))


def cms_wrapped(csr: bytes) -> bytes:
    return (pkcs7.PKCS7SignatureBuilder().set_data(csr)
            .add_signer(_self_signed(), KEY, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))


def cmc(csr: bytes) -> bytes:
    """A CMC PKIData with one TaggedCertificationRequest, inside a SignedData."""
    data = rfc6402.PKIData()
    tagged = rfc6402.TaggedRequest()
    tcr = tagged.setComponentByName("tcr").getComponentByName("tcr")
    tcr["bodyPartID"] = 1
    tcr["certificationRequest"], _ = der_decode(csr, asn1Spec=rfc2986.CertificationRequest())
    data["reqSequence"].append(tagged)
    signed = rfc5652.SignedData()
    signed["version"] = 3
    signed["encapContentInfo"]["eContentType"] = rfc6402.id_cct_PKIData
    encap = signed["encapContentInfo"]
    encap["eContent"] = encap["eContent"].clone(der_encode(data))
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc5652.id_signedData
    info["content"] = signed
    return der_encode(info)


CSR = make_csr("alice")


@pytest.mark.parametrize("blob, request_type, found", [
    (CSR, RequestType.PKCS10, RequestType.PKCS10),
    (CSR, RequestType.ANY, RequestType.PKCS10),
    (cms_wrapped(CSR), RequestType.PKCS7, RequestType.PKCS7),
    (cms_wrapped(CSR), RequestType.ANY, RequestType.PKCS7),
    (cmc(CSR), RequestType.CMC, RequestType.CMC),
    (cmc(CSR), RequestType.ANY, RequestType.CMC),
])
def test_formats(blob, request_type, found):
    parsed = parse_request(blob, request_type)
    assert parsed.request_type == found
    assert parsed.csr.subject.rfc4514_string() == "CN=alice"


@pytest.mark.parametrize("blob, request_type, hresult", [
    (cmc(CSR), RequestType.PKCS10, HResult.CRYPT_E_INVALID_MSG_TYPE),
    (CSR, RequestType.CMC, HResult.CRYPT_E_INVALID_MSG_TYPE),
    (cms_wrapped(CSR), RequestType.CMC, HResult.CRYPT_E_INVALID_MSG_TYPE),
    (b"\x30\x03\x02\x01\x00", RequestType.PKCS10, HResult.CRYPT_E_ASN1_BADTAG),
    (b"garbage", RequestType.ANY, HResult.CRYPT_E_ASN1_BADTAG),
    (CSR[:-5] + bytes(b ^ 0xFF for b in CSR[-5:]), RequestType.PKCS10, HResult.NTE_BAD_SIGNATURE),
    (CSR, RequestType.KEYGEN, HResult.CRYPT_E_INVALID_MSG_TYPE),
])
def test_rejections(blob, request_type, hresult):
    with pytest.raises(RequestRejected) as info:
        parse_request(blob, request_type)
    assert info.value.hresult == hresult


def test_attribute_rules():
    # [MS-WCCE] 3.2.1.4.2.1.2: malformed lines ignored, blanks and '-' before ':'
    # removed, values trimmed; names case-insensitive.
    text = "Certificate-Template :  User  \nno colon here\n\nSAN:upn=a@b\r\nCertificateTemplate:Machine"
    assert parse_attributes(text) == {"certificatetemplate": "Machine", "san": "upn=a@b"}
    assert parse_attributes(None) == {}


def _oid_tag_in_high_tag_form(cms: bytes) -> bytes:
    """The ContentInfo with its contentType's tag written 1F 06 (the high-tag-number form DER
    forbids for tag 6), which pyasn1 still decodes."""
    at = 2 + (cms[1] & 0x7F if cms[1] & 0x80 else 0)
    body = b"\x1f" + cms[at:]
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


WRAPPED = [CSR, cms_wrapped(CSR), cmc(CSR), _oid_tag_in_high_tag_form(cms_wrapped(CSR))]


@settings(max_examples=300, deadline=None)
@given(blob=st.one_of(st.sampled_from(WRAPPED), st.binary(max_size=64),
                      st.tuples(st.sampled_from(WRAPPED), st.integers(0, 40), st.integers(0, 255)).map(
                          lambda t: t[0][:t[1]] + bytes([t[2]]) + t[0][t[1] + 1:])))
def test_a_blob_is_a_signed_data_exactly_when_pyasn1_says_so(blob):
    from unittest import mock

    from conformance.refca import requests

    with mock.patch.object(requests, "_not_content_info", lambda der: False):
        by_pyasn1 = requests._signed_data(blob)  # every blob decoded by pyasn1, as before
    assert requests._signed_data(blob) == by_pyasn1
