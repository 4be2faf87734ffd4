"""The RPC association, sans-IO: PDUs in, PDUs out, no sockets."""

from __future__ import annotations


import uuid

import pytest
from scapy.layers.dcerpc import (
    DceRpc5, DceRpc5AbstractSyntax, DceRpc5Bind, DceRpc5Context, DceRpc5Request,
    DceRpc5TransferSyntax,
)
from scapy.packet import Raw

from conformance.refca.rpc.association import (
    Action, AssocState, Association, AssociationPolicy, DropConnection, TRANSITIONS,
)
from conformance.refca.rpc.calls import AssocGroups, Call, ConnectionInfo, Fault, Reply
from conformance.wire.rpc import NDR20, NDR64, BindNakReason, ContextResult, FaultStatus, PType, ProviderReason

IFACE = uuid.UUID("12345678-1234-1234-1234-123456789abc")
CONN = ConnectionInfo(local_host="127.0.0.1", local_port=135, peer_host="127.0.0.1", peer_port=5000)


class EchoDispatcher:
    def __init__(self):
        self.calls: list[Call] = []

    def supports_interface(self, if_uuid, if_version):
        return if_uuid == IFACE and if_version == 0

    def dispatch(self, call):
        self.calls.append(call)
        return Fault(0x1234) if call.opnum == 9 else Reply(call.stub[::-1])


def association(**policy) -> tuple[Association, EchoDispatcher]:
    dispatcher = EchoDispatcher()
    return Association(dispatcher=dispatcher, acceptors={}, connection=CONN, groups=AssocGroups(),
                       policy=AssociationPolicy(**policy)), dispatcher


def ctx(cont_id=0, *, iface=IFACE, version=0, syntax=NDR20):
    return DceRpc5Context(cont_id=cont_id,
                          abstract_syntax=DceRpc5AbstractSyntax(if_uuid=iface, if_version=version),
                          transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=syntax[0], if_version=syntax[1])])


def bind(*elems, **fields) -> bytes:
    return bytes(DceRpc5(call_id=1) / DceRpc5Bind(context_elem=list(elems), **fields))


def request(opnum=1, stub=b"abcd", call_id=2, cont_id=0, flags=3) -> bytes:
    return bytes(DceRpc5(call_id=call_id, pfc_flags=flags)
                 / DceRpc5Request(alloc_hint=len(stub), cont_id=cont_id, opnum=opnum) / Raw(stub))


def test_bind_then_request():
    assoc, dispatcher = association()
    [ack] = assoc.receive(bind(ctx()))
    reply = DceRpc5(ack)
    assert reply.ptype == PType.BIND_ACK and reply.results[0].result == ContextResult.ACCEPTANCE
    assert reply.sec_addr.port_spec == b"135\0"
    [resp] = assoc.receive(request())
    assert DceRpc5(resp)[Raw].load == b"dcba"
    assert dispatcher.calls[0].auth.auth_level == 1 and dispatcher.calls[0].object_uuid is None


def test_context_negotiation_results():
    assoc, _ = association()
    btfn = (uuid.UUID("6cb71c2c-9812-4540-0300-000000000000"), 1)
    [ack] = assoc.receive(bind(ctx(0, syntax=NDR64), ctx(1), ctx(2, version=1),
                               ctx(3, iface=uuid.uuid4()), ctx(4, syntax=btfn)))
    results = [(r.result, r.reason) for r in DceRpc5(ack).results]
    assert results == [
        (ContextResult.PROVIDER_REJECTION, ProviderReason.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED),
        (ContextResult.ACCEPTANCE, 0),
        (ContextResult.PROVIDER_REJECTION, ProviderReason.ABSTRACT_SYNTAX_NOT_SUPPORTED),
        (ContextResult.PROVIDER_REJECTION, ProviderReason.ABSTRACT_SYNTAX_NOT_SUPPORTED),
        (ContextResult.NEGOTIATE_ACK, 0x3),
    ]
    assert set(assoc.contexts) == {1}


def test_request_before_bind_faults_and_drops():
    assoc, _ = association()
    with pytest.raises(DropConnection) as info:
        assoc.receive(request())
    assert DceRpc5(info.value.final[0]).status == FaultStatus.NCA_S_PROTO_ERROR


def test_dispatcher_fault_is_sent():
    assoc, _ = association()
    assoc.receive(bind(ctx()))
    [fault] = assoc.receive(request(opnum=9))
    assert DceRpc5(fault).status == 0x1234


def test_large_response_is_fragmented_within_max_xmit():
    assoc, _ = association()
    assoc.receive(bind(ctx(), max_xmit_frag=5840, max_recv_frag=1432))
    pdus = assoc.receive(request(stub=b"x" * 5000))
    assert len(pdus) > 3 and all(len(p) <= 1432 for p in pdus)
    flags = [DceRpc5(p).pfc_flags for p in pdus]
    assert flags[0] & 1 and flags[-1] & 2 and not any(f & 2 for f in flags[:-1])
    assert b"".join(DceRpc5(p)[Raw].load for p in pdus) == b"x" * 5000


def test_call_size_limit():
    assoc, _ = association(max_call_size=100)
    assoc.receive(bind(ctx()))
    assoc.receive(request(stub=b"a" * 80, flags=1))
    with pytest.raises(DropConnection):
        assoc.receive(request(stub=b"a" * 80, flags=2))


def test_unknown_association_group_is_refused():
    assoc, _ = association()
    with pytest.raises(DropConnection) as info:
        assoc.receive(bind(ctx(), assoc_group_id=0xBEEF))
    assert DceRpc5(info.value.final[0]).provider_reject_reason == BindNakReason.NOT_SPECIFIED


def test_second_connection_joins_a_group():
    groups = AssocGroups()
    first = Association(dispatcher=EchoDispatcher(), acceptors={}, connection=CONN, groups=groups)
    group = DceRpc5(first.receive(bind(ctx()))[0]).assoc_group_id
    second = Association(dispatcher=EchoDispatcher(), acceptors={}, connection=CONN, groups=groups)
    assert DceRpc5(second.receive(bind(ctx(), assoc_group_id=group))[0]).assoc_group_id == group


def test_a_transition_is_data():
    """A mutant changes one table entry; here: accept requests before any bind."""
    table = dict(TRANSITIONS)
    table[(AssocState.AWAITING_BIND, PType.REQUEST)] = Action.REQUEST
    assoc, _ = association(transitions=table)
    [fault] = assoc.receive(request())  # answered (unknown context), not dropped
    assert DceRpc5(fault).status == FaultStatus.NCA_S_UNK_IF



def test_fragment_larger_than_negotiated_drops():
    assoc, _ = association()
    assoc.receive(bind(ctx(), max_xmit_frag=1432, max_recv_frag=1432))
    with pytest.raises(DropConnection, match="max_recv_frag"):
        assoc.receive(request(stub=b"x" * 2000))
