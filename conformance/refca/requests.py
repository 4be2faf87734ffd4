"""Decoding of the ``pctbRequest`` blob and of ``pwszAttributes`` ([MS-WCCE] 3.2.1.4.2.1).

Sans-IO.  PKCS#10 is read with ``cryptography``; CMS and CMC wrappers with
``pyasn1-modules`` (RFC 5652 ContentInfo/SignedData, RFC 6402 PKIData).
"""

from __future__ import annotations

import dataclasses

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from pyasn1.codec.der.decoder import decode as der_decode
from pyasn1.codec.der.encoder import encode as der_encode
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc5652, rfc6402

from conformance.wire.wcce import HResult, RequestType

__all__ = ["RequestRejected", "ParsedRequest", "parse_request", "parse_attributes"]

ID_SIGNED_DATA = rfc5652.id_signedData
ID_DATA = rfc5652.id_data
ID_CCT_PKIDATA = rfc6402.id_cct_PKIData


class RequestRejected(ValueError):
    def __init__(self, hresult: int, message: str) -> None:
        super().__init__(message)
        self.hresult = hresult


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ParsedRequest:
    csr: x509.CertificateSigningRequest
    request_type: RequestType  # the format actually found


def _load_csr(der: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_der_x509_csr(der)
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:  # InvalidVersion: not a ValueError
        raise RequestRejected(HResult.CRYPT_E_ASN1_BADTAG, f"not a PKCS#10 request: {exc}") from exc
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        valid = False
    if not valid:
        raise RequestRejected(HResult.NTE_BAD_SIGNATURE, "the PKCS#10 signature does not verify")
    return csr


def _not_content_info(der: bytes) -> bool:
    """Whether ``der`` cannot be a ContentInfo, read from its first bytes: a SEQUENCE whose first
    component is itself a SEQUENCE (a PKCS#10's CertificationRequestInfo), where a
    ContentInfo's is an OBJECT IDENTIFIER (RFC 5652 3).  Saves pyasn1 failing to decode every
    PKCS#10 as one (~0.2 ms a Request); anything else, even an OID tag pyasn1 takes in a
    form DER does not allow, is left to pyasn1."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    length = der[1]
    at = 2 if length < 0x80 else 2 + (length & 0x7F) if length != 0x80 else None
    return at is not None and len(der) > at and der[at] == 0x30


def _signed_data(der: bytes) -> tuple[str, bytes] | None:
    """(eContentType, eContent) of a CMS SignedData, or None when ``der`` is not one."""
    if _not_content_info(der):
        return None
    try:
        info, rest = der_decode(der, asn1Spec=rfc5652.ContentInfo())
        if rest or info["contentType"] != ID_SIGNED_DATA:
            return None
        signed, _ = der_decode(info["content"], asn1Spec=rfc5652.SignedData())
        encap = signed["encapContentInfo"]
        if not encap["eContent"].isValue:
            return None
        return str(encap["eContentType"]), bytes(encap["eContent"])
    except PyAsn1Error:
        return None


def _csr_from_cmc(pki_data_der: bytes) -> x509.CertificateSigningRequest:
    try:
        data, _ = der_decode(pki_data_der, asn1Spec=rfc6402.PKIData())
    except PyAsn1Error as exc:
        raise RequestRejected(HResult.CRYPT_E_ASN1_BADTAG, f"PKIData does not decode: {exc}") from exc
    for tagged in data["reqSequence"]:
        if tagged.getName() == "tcr":
            return _load_csr(der_encode(tagged["tcr"]["certificationRequest"]))
    raise RequestRejected(HResult.CRYPT_E_INVALID_MSG_TYPE, "CMC PKIData carries no PKCS#10 request")


def parse_request(blob: bytes, request_type: int) -> ParsedRequest:
    """Decode ``blob`` as the RequestType byte says (0 = let the CA find out).

    "If the request format does not match the RequestType ... SHOULD return
    CRYPT_E_INVALID_MSG_TYPE" ([MS-WCCE] 3.2.1.4.2.1.4).
    """
    wrapped = _signed_data(blob)
    if request_type == RequestType.ANY:
        if wrapped is None:
            return ParsedRequest(csr=_load_csr(blob), request_type=RequestType.PKCS10)
        request_type = RequestType.CMC if wrapped[0] == str(ID_CCT_PKIDATA) else RequestType.PKCS7
    if request_type == RequestType.PKCS10:
        if wrapped is not None:
            raise RequestRejected(HResult.CRYPT_E_INVALID_MSG_TYPE, "CMS where PKCS#10 was announced")
        return ParsedRequest(csr=_load_csr(blob), request_type=RequestType.PKCS10)
    if request_type == RequestType.CMC:
        if wrapped is None or wrapped[0] != str(ID_CCT_PKIDATA):
            raise RequestRejected(HResult.CRYPT_E_INVALID_MSG_TYPE, "not a CMC (PKIData) request")
        return ParsedRequest(csr=_csr_from_cmc(wrapped[1]), request_type=RequestType.CMC)
    if request_type == RequestType.PKCS7:
        if wrapped is None or wrapped[0] != str(ID_DATA):
            raise RequestRejected(HResult.CRYPT_E_INVALID_MSG_TYPE, "not a CMS-wrapped PKCS#10")
        return ParsedRequest(csr=_load_csr(wrapped[1]), request_type=RequestType.PKCS7)
    raise RequestRejected(HResult.CRYPT_E_INVALID_MSG_TYPE,
                          f"request type 0x{request_type:x} is not supported by this CA")


def parse_attributes(text: str | None) -> dict[str, str]:
    """``Name:Value`` pairs separated by newlines ([MS-WCCE] 3.2.1.4.2.1.2).

    "malformed lines are ignored; blanks and '-' before the ':' are removed;
    leading and trailing blanks of the value are trimmed."  Names compare
    case-insensitively, so they are returned lower-case.
    """
    pairs: dict[str, str] = {}
    for line in (text or "").replace("\r", "\n").split("\n"):
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.replace(" ", "").replace("\t", "").replace("-", "")
        if not name:
            continue
        pairs[name.lower()] = value.strip()
    return pairs
