"""scapy's DCOM client against the reference CA: every WCCE method, every auth level."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from conformance.refca.config import Policy
from conformance.wire import wcce
from conformance.wire.wcce import CAPropId, Disposition, HResult, InterfaceFlag, PropType
from tests.conftest import CA_NAME, USERS
from tests.support.certs import chain_certificates, make_csr, verify_issued
from tests.support.scapy_client import activate, ntlm


@pytest.fixture
def session(ca):
    s = activate(ca.config.listen.host, ca.activation_port, level=6,
                 ssp=ntlm("alice", USERS["alice"]))
    yield s
    s.close()


def _text(blob) -> str:
    return wcce.blob_bytes(blob).decode("utf-16-le").rstrip("\0")


def test_request_issues_certificate_that_verifies(ca, session):
    r = session.call(wcce.Request_Request(
        dwFlags=0, pwszAuthority=CA_NAME, pdwRequestId=0,
        pwszAttributes="CertificateTemplate:User", pctbRequest=wcce.blob(make_csr()), ndr64=False))
    assert r.status == 0
    assert r.pdwDisposition == Disposition.ISSUED
    assert r.pdwRequestId >= 1
    cert = x509.load_der_x509_certificate(wcce.blob_bytes(r.pctbEncodedCert))
    verify_issued(cert, ca.ca.certificate)
    chain = chain_certificates(wcce.blob_bytes(r.pctbCertChain))
    assert [c.serial_number for c in chain] == [cert.serial_number, ca.ca.certificate.serial_number]
    assert _text(r.pctbDispositionMessage) == "Issued"
    stored = ca.store.get(r.pdwRequestId)
    assert stored.certificate_der == cert.public_bytes(Encoding.DER)


def test_request2_pending_then_retrieve_after_approval(ca, session):
    r = session.call(wcce.Request2_Request(
        pwszAuthority=CA_NAME, dwFlags=0, pwszSerialNumber=None, pdwRequestId=0,
        pwszAttributes="CertificateTemplate:UserApproval", pctbRequest=wcce.blob(make_csr()),
        ndr64=False), d2=True)
    assert (r.status, r.pdwDisposition) == (0, Disposition.UNDER_SUBMISSION)
    request_id = r.pdwRequestId
    retrieve = wcce.Request_Request(dwFlags=0, pwszAuthority=CA_NAME, pdwRequestId=request_id,
                                    pwszAttributes=None, pctbRequest=wcce.blob(b""), ndr64=False)
    assert session.call(retrieve).pdwDisposition == Disposition.UNDER_SUBMISSION
    ca.resolve_pending(request_id, approve=True)
    r = session.call(retrieve)
    assert (r.status, r.pdwDisposition, r.pdwRequestId) == (0, Disposition.ISSUED, request_id)
    verify_issued(x509.load_der_x509_certificate(wcce.blob_bytes(r.pctbEncodedCert)), ca.ca.certificate)


@pytest.mark.parametrize("attributes, disposition", [
    ("CertificateTemplate:NoSuchTemplate", HResult.CERTSRV_E_UNSUPPORTED_CERT_TYPE),
    ("CertificateTemplate:Restricted", Disposition.DENIED),
    ("", HResult.CERTSRV_E_NO_CERT_TYPE),
])
def test_request_failures_go_in_the_disposition(session, attributes, disposition):
    r = session.call(wcce.Request_Request(
        dwFlags=0, pwszAuthority=CA_NAME, pdwRequestId=0, pwszAttributes=attributes,
        pctbRequest=wcce.blob(make_csr()), ndr64=False))
    # [MS-WCCE] 3.2.1.4.2.1: "MUST return zero ... errors through pdwDisposition"
    assert r.status == 0
    assert r.pdwDisposition == disposition
    assert r.pdwRequestId >= 1  # failed requests are stored and numbered too


def test_wrong_ca_name_is_e_invalidarg(session):
    r = session.call(wcce.Request_Request(
        dwFlags=0, pwszAuthority="SOME-OTHER-CA", pdwRequestId=0,
        pwszAttributes="CertificateTemplate:User", pctbRequest=wcce.blob(make_csr()), ndr64=False))
    assert (r.status, r.pdwDisposition) == (0, HResult.E_INVALIDARG)
    g = session.call(wcce.GetCACert_Request(fchain=0, pwszAuthority="SOME-OTHER-CA", ndr64=False))
    assert g.status == HResult.E_INVALIDARG
    # names compare case-insensitively
    assert session.call(wcce.Ping_Request(pwszAuthority=CA_NAME.lower(), ndr64=False)).status == 0


def test_get_ca_cert_and_properties(ca, session):
    r = session.call(wcce.GetCACert_Request(fchain=wcce.GetCACertSelector.CASIGCERT,
                                            pwszAuthority=CA_NAME, ndr64=False))
    assert r.status == 0 and wcce.blob_bytes(r.pctbOut) == ca.ca.certificate_der

    def prop(pid, ptype, index=0):
        resp = session.call(wcce.GetCAProperty_Request(pwszAuthority=CA_NAME, PropID=pid,
                                                       PropIndex=index, PropType=ptype,
                                                       ndr64=False), d2=True)
        return resp.status, wcce.blob_bytes(resp.pctbPropertyValue)

    status, templates = prop(CAPropId.TEMPLATES, PropType.STRING)
    assert status == 0
    names = templates.decode("utf-16-le").rstrip("\0").split("\n")[:-1][0::2]
    assert {"User", "Machine", "WebServer", "UserApproval"} <= set(names)
    status, cainfo = prop(CAPropId.CATYPE, PropType.LONG)
    assert status == 0 and wcce.CAINFO(cainfo).CAType == wcce.CAType.ENTERPRISE_ROOT
    assert prop(CAPropId.CASIGCERT, PropType.BINARY) == (0, ca.ca.certificate_der)
    status, chain = prop(CAPropId.CASIGCERTCHAIN, PropType.BINARY)
    assert pkcs7.load_der_pkcs7_certificates(chain) == [ca.ca.certificate]
    status, crl_der = prop(CAPropId.BASECRL, PropType.BINARY, index=0xFFFFFFFF - (1 << 32))
    crl = x509.load_der_x509_crl(crl_der)
    assert crl.is_signature_valid(ca.ca.certificate.public_key())
    assert prop(CAPropId.CASIGCERT, PropType.STRING)[0] == HResult.E_INVALIDARG  # type mismatch
    assert prop(CAPropId.CASIGCERT, PropType.BINARY, index=7)[0] == HResult.E_INVALIDARG

    info = session.call(wcce.GetCAPropertyInfo_Request(pwszAuthority=CA_NAME, ndr64=False), d2=True)
    assert info.status == 0
    blob = wcce.blob_bytes(info.pctbPropInfo)
    first = wcce.CATRANSPROP(blob[:12])
    name_at = first.obwszDisplayName
    assert blob[name_at:].decode("utf-16-le").split("\0")[0] == "File Version"
    assert info.pcProperty * 12 <= name_at


def test_pings(session):
    assert session.call(wcce.Ping_Request(pwszAuthority=None, ndr64=False)).status == 0
    assert session.call(wcce.Ping2_Request(pwszAuthority="", ndr64=False), d2=True).status == 0
    assert session.call(wcce.Ping2_Request(pwszAuthority="nope", ndr64=False),
                        d2=True).status == HResult.E_INVALIDARG


@pytest.mark.parametrize("spnego", [True, False], ids=["spnego-ntlm", "ntlm"])
@pytest.mark.parametrize("level", [2, 5, 6])
def test_levels_scapy_speaks_are_served(ca_factory, level, spnego):
    """CONNECT (no verifier), PKT_INTEGRITY (signed) and PKT_PRIVACY (sealed).

    Enforcement is off so that every level reaches the method.  A bind at CALL (3) is
    refused as Windows refuses it (bind_nak 9); scapy's client sends no verifier at PKT
    (4), which the CA serves unauthenticated, as Windows does (and refuses below
    PKT_PRIVACY when it enforces privacy).  tests/integration/test_levels.py covers PKT
    with a client that signs it.
    """
    policy = Policy(interface_flags=InterfaceFlag(0), activation_min_level=2)
    ca = ca_factory(policy=policy)
    s = activate(ca.config.listen.host, ca.activation_port, level=level,
                 ssp=ntlm("alice", USERS["alice"], spnego=spnego))
    try:
        r = s.call(wcce.Request_Request(
            dwFlags=0, pwszAuthority=CA_NAME, pdwRequestId=0,
            pwszAttributes="CertificateTemplate:User", pctbRequest=wcce.blob(make_csr()),
            ndr64=False))
        assert r.pdwDisposition == Disposition.ISSUED
    finally:
        s.close()


def test_bad_password_cannot_activate(ca):
    with pytest.raises(Exception):
        activate(ca.config.listen.host, ca.activation_port, level=6,
                 ssp=ntlm("alice", "wrong password"))
    assert ca.store.count() == 0

