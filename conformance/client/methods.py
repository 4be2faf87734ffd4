"""The WCCE methods as requests with their parameters, and fresh PKCS#10 requests.

A request is an :class:`~conformance.wire.ndrcodec.NdrRecord` of the method's scapy
declaration (``conformance.wire.wcce``), written by the codec compiled from it.

Keys are pooled per kind: an RSA-2048 key costs ~45 ms to make, so matrix cases
reuse one (each CSR is still new: new subject, new signature).
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from conformance.wire import wcce
from conformance.wire.ndrcodec import record
from conformance.wire.wcce import blob_record

__all__ = ["new_pkcs10", "request", "request2", "retrieve", "get_ca_cert", "ping", "ping2",
           "get_ca_property", "get_ca_property_info"]


@functools.lru_cache(maxsize=None)
def new_key(kind: str):
    if kind == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r}")


def new_pkcs10(common_name: str, *, key="ec-p256", dns_names: tuple[str, ...] = ()) -> bytes:
    """A DER PKCS#10 request for ``common_name`` (optionally with DNS SANs), signed by a
    new key of kind ``key`` or by the private key given."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    signer = new_key(key) if isinstance(key, str) else key
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _attributes(template: str | None, extra: str | None) -> str | None:
    parts = ([f"CertificateTemplate:{template}"] if template else []) + ([extra] if extra else [])
    return "\n".join(parts) if parts else None


def request(ca_name: str | None, csr: bytes | None, *, template: str | None = "User",
            attributes: str | None = None, flags: int = 0, request_id: int = 0):
    """ICertRequestD::Request ([MS-WCCE] 3.2.1.4.2.1)."""
    return record(wcce.Request_Request, dwFlags=flags, pwszAuthority=ca_name, pdwRequestId=request_id,
                  pwszAttributes=_attributes(template, attributes), pctbRequest=blob_record(csr))


def retrieve(ca_name: str, request_id: int):
    """Status inspection of a request: empty request blob, the ID ([MS-WCCE] 3.1.1.4.3.7)."""
    return record(wcce.Request_Request, dwFlags=0, pwszAuthority=ca_name, pdwRequestId=request_id,
                  pwszAttributes=None, pctbRequest=blob_record(b""))


def request2(ca_name: str | None, csr: bytes | None, *, template: str | None = "User",
             attributes: str | None = None, flags: int = 0, request_id: int = 0,
             serial: str | None = None):
    """ICertRequestD2::Request2 ([MS-WCCE] 3.2.1.4.3.1)."""
    return record(wcce.Request2_Request, pwszAuthority=ca_name, dwFlags=flags, pwszSerialNumber=serial,
                  pdwRequestId=request_id, pwszAttributes=_attributes(template, attributes),
                  pctbRequest=blob_record(csr))


def get_ca_cert(ca_name: str | None, fchain: int = wcce.GetCACertSelector.CASIGCERT):
    return record(wcce.GetCACert_Request, fchain=fchain, pwszAuthority=ca_name)


def ping(ca_name: str | None = None):
    return record(wcce.Ping_Request, pwszAuthority=ca_name)


def ping2(ca_name: str | None = None):
    return record(wcce.Ping2_Request, pwszAuthority=ca_name)


def get_ca_property(ca_name: str | None, prop_id: int, prop_type: int, index: int = 0):
    return record(wcce.GetCAProperty_Request, pwszAuthority=ca_name, PropID=prop_id, PropIndex=index,
                  PropType=prop_type)


def get_ca_property_info(ca_name: str | None):
    return record(wcce.GetCAPropertyInfo_Request, pwszAuthority=ca_name)
