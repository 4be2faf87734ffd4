"""The request database: it survives restarts, and a client that goes away mid-call
loses nothing and duplicates nothing."""

from __future__ import annotations

import time

from cryptography import x509

from conformance.client.dcom import orpc_request_stub
from conformance.wire import wcce
from conformance.wire.wcce import Disposition
from tests.support.certs import make_csr
from tests.support.ourclient import open_session, request, security


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_requests_survive_a_restart(ca_factory, tmp_path):
    state = tmp_path / "state"
    first = ca_factory(state_dir=state)
    ca_cert = first.ca.certificate
    session = open_session(first, security(9, 6))
    issued = session.call(request()).response
    pending = session.call(request(template="UserApproval")).response
    session.close()
    first.stop()

    second = ca_factory(state_dir=state, host=first.config.listen.host)
    assert second.ca.certificate == ca_cert  # the CA key and certificate were kept
    session = open_session(second, security(9, 6))
    try:
        retrieve = wcce.Request_Request(dwFlags=0, pwszAuthority="WCCE-LAB-CA",
                                        pdwRequestId=issued.pdwRequestId, pwszAttributes=None,
                                        pctbRequest=wcce.blob(b""), ndr64=False)
        again = session.call(retrieve).response
        assert again.pdwDisposition == Disposition.ISSUED
        assert bytes(again.pctbEncodedCert.valueof("pb")) == bytes(issued.pctbEncodedCert.valueof("pb"))
        second.resolve_pending(pending.pdwRequestId, approve=True)
        retrieve.pdwRequestId = pending.pdwRequestId
        assert session.call(retrieve).response.pdwDisposition == Disposition.ISSUED
        new = session.call(request()).response
        assert new.pdwRequestId == pending.pdwRequestId + 1  # numbering continues
    finally:
        session.close()
    serials = [r.serial for r in second.store.issued()]
    assert len(serials) == len(set(serials)) == 3


def test_client_disconnecting_after_sending_a_request(ca):
    session = open_session(ca, security(10, 6))
    conn = session.exporter
    stub = orpc_request_stub(request(csr=make_csr("gone")))
    conn.send(conn.request_pdu(3, stub, cont_id=conn.contexts[wcce.IID_ICERTREQUESTD],
                               object_uuid=session.activation.ipid(wcce.IID_ICERTREQUESTD)))
    conn.close()  # without reading the response
    assert _wait_for(lambda: ca.store.count() == 1)
    time.sleep(0.3)
    [row] = ca.store.all()
    assert row.disposition == Disposition.ISSUED
    cert = x509.load_der_x509_certificate(row.certificate_der)
    assert int(row.serial, 16) == cert.serial_number


def test_client_disconnecting_mid_fragmented_request_stores_nothing(ca):
    session = open_session(ca, security(9, 6))
    conn = session.exporter
    stub = orpc_request_stub(request())
    conn.send(conn.request_pdu(3, stub[:64], cont_id=conn.contexts[wcce.IID_ICERTREQUESTD],
                               object_uuid=session.activation.ipid(wcce.IID_ICERTREQUESTD),
                               pfc_flags=0x01, alloc_hint=len(stub)))
    conn.close()
    time.sleep(0.5)
    assert ca.store.count() == 0
    # and the CA goes on serving
    again = open_session(ca, security(9, 6))
    try:
        assert again.call(request()).response.pdwDisposition == Disposition.ISSUED
    finally:
        again.close()
    assert ca.store.count() == 1
