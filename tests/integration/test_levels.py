"""Every authentication level, both NTLM carriers, with the suite's own client.

The client signs at PKT/PKT_INTEGRITY and seals at PKT_PRIVACY; the CA must verify
and answer in kind.  A bind at CALL is refused, as Windows refuses it (ledger
rpc/bind/level-call).  Enforcement is off here so that every level reaches the method
(enforcement has its own tests).
"""

from __future__ import annotations

import pytest
from cryptography import x509

from conformance.client.session import WcceSession
from conformance.refca.config import Policy
from conformance.wire.framing import CommonHeader
from conformance.wire.protection import SecTrailer
from conformance.wire.rpc import FaultStatus, PType
from conformance.wire.wcce import Disposition, HResult, InterfaceFlag
from tests.support.certs import verify_issued
from tests.support.ourclient import open_session, request, security

RELAXED = Policy(interface_flags=InterfaceFlag(0), activation_min_level=1, exporter_min_level=1)


@pytest.fixture
def relaxed_ca(ca_factory):
    return ca_factory(policy=RELAXED)


@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego-ntlm", "ntlm"])
def test_bind_at_call_level_is_refused(relaxed_ca, auth_type):
    """The exporter's bind at CALL (3) gets bind_nak 9 and the connection drops (ledger
    rpc/bind/level-call; the activation port's in test_enforcement.py)."""
    session = WcceSession(relaxed_ca.config.listen.host, relaxed_ca.activation_port,
                          security=security(auth_type, 3))
    try:
        _, activation = session.activate()
        assert activation is not None and activation.status == 0
        outcome = session.connect_exporter()
        assert (outcome.ptype, outcome.packet().provider_reject_reason) == (PType.BIND_NAK, 9)
        assert not session.exporter.is_connected(timeout=5)
    finally:
        session.close()
    assert relaxed_ca.store.count() == 0


@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego-ntlm", "ntlm"])
@pytest.mark.parametrize("level", [2, 4, 5, 6])
def test_request_at_every_level(relaxed_ca, auth_type, level):
    session = open_session(relaxed_ca, security(auth_type, level))
    try:
        result = session.call(request())
        assert result.response is not None, f"fault {result.fault_status}"
        assert result.response.pdwDisposition == Disposition.ISSUED
        cert_der = bytes(result.response.pctbEncodedCert.valueof("pb"))
        verify_issued(x509.load_der_x509_certificate(cert_der), relaxed_ca.ca.certificate)
        # The certificate travels in the response: in clear below privacy, sealed at it.
        assert (cert_der in b"".join(result.outcome.pdus)) is (level < 6)
        for pdu in result.outcome.pdus:
            trailer = SecTrailer.parse(pdu, CommonHeader.parse(pdu))
            if level == 2:
                assert trailer is None  # CONNECT: responses carry no verifier
            else:
                assert (trailer.auth_type, trailer.auth_level) == (auth_type, level)
    finally:
        session.close()


def test_level_none_reaches_the_method_unauthenticated(relaxed_ca):
    session = open_session(relaxed_ca, security(0), activation_security=security(0))
    try:
        result = session.call(request())
        # anonymous callers cannot enroll: refused by the method, not by the runtime
        assert result.response is not None, f"fault {result.fault_status}"
        assert (result.response.status, result.response.pdwDisposition) == (0, HResult.E_ACCESSDENIED)
    finally:
        session.close()


def test_exporter_minimum_level_refuses_anonymous_orpc(ca):
    """Default policy: the exporter wants at least CONNECT; ERROR_ACCESS_DENIED for
    interfaces other than IRemUnknown ([MS-DCOM] 3.1.1.5.4 note <40>)."""
    session = WcceSession(ca.config.listen.host, ca.activation_port, security=security(0),
                          activation_security=security(9, 6))
    try:
        _, activation = session.activate()
        assert activation is not None and activation.status == 0
        session.connect_exporter()
        assert session.call(request()).fault_status == FaultStatus.ACCESS_DENIED
    finally:
        session.close()


@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego-ntlm", "ntlm"])
@pytest.mark.parametrize("level", [5, 6])
def test_fragmented_request_and_response(ca_factory, auth_type, level):
    """Each fragment carries its own verifier ([MS-RPCE] 3.3.1.5.2.2); the client
    offers max_recv_frag 1432, so the certificate chain comes back in pieces."""
    from conformance.client.dcom import orpc_request_stub, split_orpc_response
    from conformance.wire import wcce
    from tests.support.certs import make_csr

    ca = ca_factory(policy=RELAXED)
    session = WcceSession(ca.config.listen.host, ca.activation_port,
                          security=security(auth_type, level))
    session.activate()
    host, port = session.exporter_address()
    from conformance.client.rpc import RpcConnection

    conn = RpcConnection(host, port, security=security(auth_type, level), max_frag=1432)
    try:
        conn.bind(wcce.IID_ICERTREQUESTD)
        stub = orpc_request_stub(request(csr=make_csr(kind="rsa")))
        ipid = session.activation.ipid(wcce.IID_ICERTREQUESTD)
        cont = conn.contexts[wcce.IID_ICERTREQUESTD]
        call_id = conn.next_call_id()
        pieces = [stub[i:i + 400] for i in range(0, len(stub), 400)]
        assert len(pieces) >= 2
        for index, piece in enumerate(pieces):
            flags = (0x01 if index == 0 else 0) | (0x02 if index == len(pieces) - 1 else 0)
            conn.send(conn.request_pdu(3, piece, cont_id=cont, object_uuid=ipid, call_id=call_id,
                                       pfc_flags=flags, alloc_hint=len(stub) - 400 * index))
        replies = []
        while True:
            pdu = conn.recv_pdu(timeout=5)
            assert pdu is not None
            replies.append(pdu)
            if CommonHeader.parse(pdu).pfc_flags & 0x02:
                break
        assert len(replies) >= 2
        assert all(CommonHeader.parse(p).frag_len <= 1432 for p in replies)
        reply = b"".join(conn.response_stub(p) for p in replies)
        _, response = split_orpc_response(reply, wcce.Request_Response)
        assert response.pdwDisposition == Disposition.ISSUED
    finally:
        conn.close()
