"""impacket's DCOMConnection (raw NTLM, auth_type 10, 4-byte padding) enrolls."""

from __future__ import annotations

import pytest
from cryptography import x509

from conformance.wire.wcce import Disposition
from tests.conftest import CA_NAME, USERS
from tests.support.certs import chain_certificates, make_csr, verify_issued

impacket_client = pytest.importorskip("tests.support.impacket_client")
pytestmark = pytest.mark.interop


def test_impacket_dcom_enrolls(ca):
    if ca.activation_port != 135:
        pytest.skip("impacket's DCOMConnection only talks to port 135 (needs root)")
    resp = impacket_client.enroll(ca.config.listen.host, user="alice", password=USERS["alice"],
                                  domain="LAB", ca_name=CA_NAME, template="User",
                                  csr=make_csr(kind="rsa"))
    assert resp["ErrorCode"] == 0
    assert resp["pdwDisposition"] == Disposition.ISSUED
    cert = x509.load_der_x509_certificate(impacket_client.blob_bytes(resp["pctbEncodedCert"]))
    verify_issued(cert, ca.ca.certificate)
    assert len(chain_certificates(impacket_client.blob_bytes(resp["pctbCertChain"]))) == 2
    row = ca.store.get(resp["pdwRequestId"])
    assert row.requester.lower() == "lab\\alice"
