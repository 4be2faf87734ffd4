"""X.509 issuance for the reference CA, with ``cryptography``.

On first start the CA makes its key and a self-signed CA certificate in the
state directory (key file mode 0600); later starts load them.  Issued
certificates carry the template's EKU and key usage, the Microsoft template
extension, SKI/AKI, and verify against the CA certificate.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from pyasn1.codec.der.encoder import encode as der_encode
from pyasn1.type import char, namedtype, univ

from conformance.refca.templates import Template

__all__ = ["CertificateAuthority", "IssuanceError", "Requester"]

# Microsoft template extensions ([MS-WCCE] 2.2.2.7.7.1 / 2.2.2.7.7.2).
OID_ENROLL_CERTTYPE = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2")  # v1: BMPString name
OID_CERTIFICATE_TEMPLATE = x509.ObjectIdentifier("1.3.6.1.4.1.311.21.7")  # v2: OID + versions
OID_UPN = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")


class IssuanceError(ValueError):
    """The request cannot be turned into a certificate; carries the HRESULT to report."""

    def __init__(self, hresult: int, message: str) -> None:
        super().__init__(message)
        self.hresult = hresult


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Requester:
    """Who asked: the authenticated caller, split for subject and SAN building."""

    user: str  # sAMAccountName-like, without domain
    domain: str  # NetBIOS domain
    dns_domain: str


class _CertificateTemplateOID(univ.Sequence):
    """CertificateTemplate ::= SEQUENCE { templateID OID, templateMajorVersion INTEGER,
    templateMinorVersion INTEGER OPTIONAL } ([MS-WCCE] 2.2.2.7.7.2)."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("templateID", univ.ObjectIdentifier()),
        namedtype.NamedType("templateMajorVersion", univ.Integer()),
        namedtype.OptionalNamedType("templateMinorVersion", univ.Integer()),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class CertificateAuthority:
    def __init__(self, *, state_dir: pathlib.Path, ca_name: str, key_algorithm: str = "rsa-2048") -> None:
        self.state_dir = state_dir
        self.ca_name = ca_name
        state_dir.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = state_dir / "ca-key.pem", state_dir / "ca-cert.pem"
        if key_path.exists() and cert_path.exists():
            self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            self.certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            cn = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            if cn != ca_name:
                from conformance.refca.config import ConfigError

                raise ConfigError(f"state directory {state_dir} holds CA {cn!r}, not {ca_name!r}")
        else:
            self.key = _new_key(key_algorithm)
            self.certificate = self._self_signed()
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
            cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._hash = hashes.SHA256()

    # -- the CA itself ----------------------------------------------------------------

    def _self_signed(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.ca_name)])
        public = self.key.public_key()
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            # szOID_CERTSRV_CA_VERSION: index 0 of the CA certificate, key 0.
            .add_extension(x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.311.21.1"), b"\x02\x01\x00"), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def chain_pkcs7(self, leaf: x509.Certificate | None = None) -> bytes:
        """A certs-only CMS SignedData ([MS-WCCE] 3.2.1.4.2.1.4.8.1): leaf then CA."""
        certs = ([leaf] if leaf is not None else []) + [self.certificate]
        return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)

    def crl_der(self, revoked: list[tuple[int, datetime.datetime]] = ()) -> bytes:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - datetime.timedelta(minutes=5))
            .next_update(now + datetime.timedelta(days=7))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        )
        for serial, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    # -- issuance -----------------------------------------------------------------------

    def issue(self, csr: x509.CertificateSigningRequest, template: Template,
              requester: Requester) -> x509.Certificate:
        subject = self._subject(csr, template, requester)
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=template.validity_days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if template.key_usage:
            usage = {u: u in template.key_usage for u in (
                "digital_signature", "content_commitment", "key_encipherment",
                "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")}
            builder = builder.add_extension(
                x509.KeyUsage(**usage, encipher_only=False, decipher_only=False), critical=True)
        if template.eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(
                [x509.ObjectIdentifier(o) for o in template.eku]), critical=False)
        builder = builder.add_extension(self._template_extension(template), critical=False)
        san = self._san(csr, template, requester)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(self.key, self._hash)

    @staticmethod
    def _template_extension(template: Template) -> x509.UnrecognizedExtension:
        if template.schema == 1 or not template.oid:
            # szOID_ENROLL_CERTTYPE_EXTENSION: the template name as a BMPString.
            return x509.UnrecognizedExtension(OID_ENROLL_CERTTYPE,
                                              der_encode(char.BMPString(template.name)))
        value = _CertificateTemplateOID()
        value["templateID"] = univ.ObjectIdentifier(template.oid)
        value["templateMajorVersion"] = 100
        value["templateMinorVersion"] = 0
        return x509.UnrecognizedExtension(OID_CERTIFICATE_TEMPLATE, der_encode(value))

    def _subject(self, csr, template: Template, requester: Requester) -> x509.Name:
        if template.subject == "request":
            if not csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
                from conformance.wire.wcce import HResult

                raise IssuanceError(HResult.CERTSRV_E_BAD_REQUESTSUBJECT,
                                    "the template takes the subject from the request, which has no CN")
            return csr.subject
        parts = [x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc)
                 for dc in reversed(requester.dns_domain.split("."))]
        parts.append(x509.NameAttribute(NameOID.COMMON_NAME, requester.user.rstrip("$") or "anonymous"))
        return x509.Name(parts)

    @staticmethod
    def _san(csr, template: Template, requester: Requester) -> list[x509.GeneralName]:
        names: list[x509.GeneralName] = []
        for kind in template.san:
            if kind == "upn":
                upn = f"{requester.user}@{requester.dns_domain}"
                names.append(x509.OtherName(OID_UPN, der_encode(char.UTF8String(upn))))
            elif kind == "dns":
                names.append(x509.DNSName(f"{requester.user.rstrip('$').lower()}.{requester.dns_domain}"))
            elif kind == "request":
                try:
                    ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                    names.extend(ext.value)
                except x509.ExtensionNotFound:
                    pass
        return names


def _new_key(algorithm: str):
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    bits = 3072 if algorithm == "rsa-3072" else 2048
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
