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


def _bind_activation_port(ca, level: int):
    """impacket, raw NTLM (auth_type 10), binds the CA's OXID resolver on its activation port."""
    from impacket.dcerpc.v5 import dcomrt, transport

    rpc = transport.DCERPCTransportFactory(f"ncacn_ip_tcp:{ca.config.listen.host}[{ca.activation_port}]")
    rpc.set_credentials("alice", USERS["alice"], "LAB")
    rpc.set_connect_timeout(10)
    dce = rpc.get_dce_rpc()
    dce.set_auth_type(10)
    dce.set_auth_level(level)
    dce.connect()
    try:
        return dce.bind(dcomrt.IID_IObjectExporter)
    finally:
        dce.disconnect()


@pytest.mark.parametrize("level", [2, 4, 5, 6])
def test_impacket_binds_the_activation_port_at_every_level_but_call(ca, level):
    from impacket.dcerpc.v5 import rpcrt

    assert _bind_activation_port(ca, level)["type"] == rpcrt.MSRPC_BINDACK


def test_impacket_bind_at_call_level_gets_invalid_checksum(ca):
    """As Windows (and Samba) answer: bind_nak invalid_checksum (9) at RPC_C_AUTHN_LEVEL_CALL."""
    from impacket.dcerpc.v5 import rpcrt

    with pytest.raises(rpcrt.DCERPCException, match="Bind context rejected: invalid_checksum"):
        _bind_activation_port(ca, rpcrt.RPC_C_AUTHN_LEVEL_CALL)
