"""The reference CA's own dispatchers behind an association, driven on bytes.

A request without verifier reaches the exporter and the WCCE service as an
unauthenticated caller, which they refuse: nothing is issued and nothing is stored,
and the connection stays usable.  A bind at RPC_C_AUTHN_LEVEL_CALL is refused on both
ports, and the DCOM refusals take the ledger's statuses.
"""

from __future__ import annotations

import dataclasses

import pytest
from scapy.layers.dcerpc import DceRpc5, DceRpc5Request
from scapy.packet import Raw

from conformance.client.dcom import orpc_request_stub, split_orpc_response
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import Policy, load_config
from conformance.refca.rpc.association import Association
from conformance.wire import wcce
from conformance.wire.dcom import IID_IOBJECT_EXPORTER
from conformance.wire.rpc import FaultStatus, PType
from conformance.wire.wcce import Disposition, HResult, InterfaceFlag
from tests.support.ourclient import request
from tests.unit.refca.loopback import CONN, USERS, Observed, client, dropped, observe, security
from tests.unit.refca.scenarios import dcom_scenarios, opnum_out_of_range

ALICE = "lab.test\\alice"  # the NTLM user of tests.unit.refca.loopback.security
RELAXED = Policy(interface_flags=InterfaceFlag(0), activation_min_level=1, exporter_min_level=1)


def make_ca(state_dir, policy: Policy | None = None) -> ReferenceCA:
    config = load_config(None, host="127.0.0.1", port=0, state_dir=state_dir, users=dict(USERS),
                         ca_name="WCCE-LAB-CA")
    return ReferenceCA(config if policy is None else dataclasses.replace(config, policy=policy))


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    made = make_ca(tmp_path_factory.mktemp("ca"))
    yield made
    made.store.close()


@pytest.fixture(scope="module")
def relaxed_ca(tmp_path_factory):
    made = make_ca(tmp_path_factory.mktemp("relaxed"), RELAXED)
    yield made
    made.store.close()


def port(ca: ReferenceCA, dispatcher) -> Association:
    """A connection to ``dispatcher`` (the CA's exporter or activation dispatcher)."""
    return Association(dispatcher=dispatcher, acceptors=ca.acceptors(), connection=CONN, groups=ca.groups,
                       policy=ca.association_policy)


def exporter_session(ca: ReferenceCA, *, owner: str | None = ALICE, auth_type=10, level=6):
    """An object of the CA's and a sealed connection bound to its ICertRequestD."""
    _, made = ca.objects.create_object(wcce.CLSID_CCERTREQUESTD, [wcce.IID_ICERTREQUESTD], owner=owner)
    conn = client(port(ca, ca.exporter), security(auth_type, level))
    assert conn.bind(wcce.IID_ICERTREQUESTD).ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP)
    return conn, made[wcce.IID_ICERTREQUESTD].ipid


def request_without_verifier(conn, ipid, args, *, opnum=wcce.Opnum.REQUEST, call_id=70) -> bytes:
    stub = orpc_request_stub(args)
    return bytes(DceRpc5(call_id=call_id, pfc_flags=0x03 | 0x80) / DceRpc5Request(
        alloc_hint=len(stub), cont_id=conn.contexts[wcce.IID_ICERTREQUESTD], opnum=opnum, object=ipid)
        / Raw(stub))


def sealed_request(conn, ipid):
    outcome, stub = conn.call(wcce.IID_ICERTREQUESTD, wcce.Opnum.REQUEST, orpc_request_stub(request()),
                              object_uuid=ipid)
    assert stub is not None, outcome.fault_status
    return split_orpc_response(stub, wcce.Request_Response)[1]


# -- rpc/request/no-verifier: the interface refuses, nothing is served --------------------------

@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego", "ntlm"])
def test_a_request_without_verifier_is_refused_by_the_exporter_and_nothing_is_stored(ca, auth_type):
    conn, ipid = exporter_session(ca, auth_type=auth_type)
    before = ca.store.count()
    # below the exporter's minimum level: ERROR_ACCESS_DENIED ([MS-DCOM] 3.1.1.5.4 <40>), and the
    # connection stays, as the ledger's reference answer says
    assert observe(conn, request_without_verifier(conn, ipid, request())) == Observed(
        "fault", FaultStatus.ACCESS_DENIED, False)
    assert ca.store.count() == before
    # the sealed context is intact: the same connection then enrolls
    assert sealed_request(conn, ipid).pdwDisposition == Disposition.ISSUED
    assert ca.store.count() == before + 1


def test_without_enforcement_the_service_refuses_the_unauthenticated_caller(relaxed_ca):
    """Enforcement off and no exporter minimum: the call reaches ICertRequestD, which
    refuses a caller without identity; no request is stored, no certificate issued."""
    conn, ipid = exporter_session(relaxed_ca, owner=None)
    before = relaxed_ca.store.count()
    conn.send(request_without_verifier(conn, ipid, request()))
    answer = conn.recv_pdu(timeout=0)
    pkt = DceRpc5(answer)
    assert pkt.ptype == PType.RESPONSE and pkt.auth_len == 0
    _, response = split_orpc_response(bytes(pkt[Raw].load), wcce.Request_Response)
    assert (response.status, response.pdwDisposition, response.pdwRequestId) == (0, HResult.E_ACCESSDENIED, 0)
    assert bytes(response.pctbEncodedCert.valueof("pb") or b"") == b""
    assert relaxed_ca.store.count() == before and not dropped(conn)
    assert sealed_request(conn, ipid).pdwDisposition == Disposition.ISSUED
    assert relaxed_ca.store.count() == before + 1


def test_without_enforcement_an_object_refuses_a_caller_who_is_not_its_owner(relaxed_ca):
    conn, ipid = exporter_session(relaxed_ca, owner=ALICE)
    before = relaxed_ca.store.count()
    assert observe(conn, request_without_verifier(conn, ipid, request())) == Observed(
        "fault", HResult.E_ACCESSDENIED, False)
    assert relaxed_ca.store.count() == before


@pytest.mark.parametrize("args, opnum", [
    (wcce.GetCACert_Request(fchain=0, pwszAuthority="WCCE-LAB-CA"), wcce.Opnum.GET_CA_CERT),
    (wcce.Ping_Request(pwszAuthority="WCCE-LAB-CA"), wcce.Opnum.PING),
], ids=["GetCACert", "Ping"])
def test_without_enforcement_no_method_serves_the_unauthenticated_caller(relaxed_ca, args, opnum):
    conn, ipid = exporter_session(relaxed_ca, owner=None)
    conn.send(request_without_verifier(conn, ipid, args, opnum=opnum))
    stub = bytes(DceRpc5(conn.recv_pdu(timeout=0))[Raw].load)
    response_cls = {wcce.Opnum.GET_CA_CERT: wcce.GetCACert_Response, wcce.Opnum.PING: wcce.Ping_Response}[opnum]
    _, response = split_orpc_response(stub, response_cls)
    assert response.status == HResult.E_ACCESSDENIED


# -- rpc/bind/level-call on both ports ------------------------------------------------------------

@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego", "ntlm"])
@pytest.mark.parametrize("which", ["activation", "exporter"])
def test_a_bind_at_call_level_is_refused_on_both_ports(ca, which, auth_type):
    dispatcher, interface = {"activation": (ca.activation_dispatcher, IID_IOBJECT_EXPORTER),
                             "exporter": (ca.exporter, wcce.IID_ICERTREQUESTD)}[which]
    conn = client(port(ca, dispatcher), security(auth_type, 3))
    outcome = conn.bind(interface)
    assert (outcome.ptype, DceRpc5(outcome.last).provider_reject_reason) == (PType.BIND_NAK, 9)
    assert dropped(conn)


# -- DCOM and plain-RPC refusals ------------------------------------------------------------------

@pytest.mark.parametrize("situation, answer", [
    ("dcom/activation/below-integrity", Observed("fault", 0x5, False)),
    ("dcom/orpc/unknown-ipid", Observed("fault", 0x80010108, False)),
    ("dcom/orpc/orpcthis-flags", Observed("fault", 0x80010111, False)),
    ("dcom/orpc/com-version-unsupported", Observed("fault", 0x80010110, False)),
])
def test_dcom_refusals(ca, situation, answer):
    assert dcom_scenarios(ca)[situation]() == answer


def test_an_opnum_out_of_range_keeps_the_connection(ca):
    assert opnum_out_of_range(ca) == Observed("fault", FaultStatus.NCA_S_OP_RNG_ERROR, False)


def test_the_exporters_opnum_fault_is_the_ledgers(ca):
    conn, ipid = exporter_session(ca)
    outcome, _ = conn.call(wcce.IID_ICERTREQUESTD, 42, orpc_request_stub(wcce.Ping_Request(pwszAuthority="x")),
                           object_uuid=ipid)
    assert (outcome.fault_status, dropped(conn)) == (FaultStatus.NCA_S_OP_RNG_ERROR, False)
