"""Certificate helpers for tests: fresh CSRs and chain verification."""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID


@functools.lru_cache(maxsize=None)
def _key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(cn: str = "alice", *, kind: str = "ec", san_dns: tuple[str, ...] = ()) -> bytes:
    """DER PKCS#10; keys are cached per kind (generating RSA keys costs ~45 ms)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if san_dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in san_dns]), critical=False)
    return builder.sign(_key(kind), hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def verify_issued(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    """Raise unless ``cert`` is signed by ``ca_cert`` and names it as issuer."""
    assert cert.issuer == ca_cert.subject, (cert.issuer, ca_cert.subject)
    public = ca_cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                      cert.signature_hash_algorithm)
    else:
        public.verify(cert.signature, cert.tbs_certificate_bytes,
                      ec.ECDSA(cert.signature_hash_algorithm))


def chain_certificates(pkcs7_der: bytes) -> list[x509.Certificate]:
    return pkcs7.load_der_pkcs7_certificates(pkcs7_der)
