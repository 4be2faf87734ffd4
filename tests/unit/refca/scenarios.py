"""One scenario per ledger situation the reference CA answers from the ledger.

Each puts a fresh association (or the CA's DCOM dispatcher) in the situation, on bytes,
and returns what it answered as an :class:`~tests.unit.refca.loopback.Observed`:
test_ledger_answers.py holds the answers to the ledger's (the shipped one and an
edited one), test_windows_answers.py to Windows' values.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from scapy.layers.dcerpc import (
    DceRpc5, DceRpc5AbstractSyntax, DceRpc5AlterContext, DceRpc5Bind, DceRpc5Context, DceRpc5Request,
    DceRpc5TransferSyntax,
)
from scapy.packet import Raw

from conformance.client.dcom import orpc_request_stub
from conformance.refca.rpc.association import Association, AssociationPolicy, DropConnection
from conformance.refca.rpc.calls import AssocGroups, Call, CallAuth, Fault, Reply
from conformance.wire import pdu as build
from conformance.wire import wcce
from conformance.wire.dcom import IID_IOBJECT_EXPORTER
from conformance.wire.protection import SecTrailer
from conformance.wire.rpc import NDR20, NDR64, PType
from tests.unit.refca.loopback import CONN, Observed, client, ntlm_acceptors, observe, security

IFACE = uuid.UUID("12345678-1234-1234-1234-123456789abc")
FIRST, LAST = 0x01, 0x02


class EchoDispatcher:
    """Serves IFACE 0.0: opnum 9 faults 0x1234, every other opnum echoes its stub reversed."""

    def __init__(self):
        self.calls: list[Call] = []

    def supports_interface(self, if_uuid, if_version):
        return if_uuid == IFACE and if_version == 0

    def dispatch(self, call):
        self.calls.append(call)
        return Fault(0x1234) if call.opnum == 9 else Reply(call.stub[::-1])


def _never():
    raise AssertionError("the security provider was consulted")


def association(dispatcher=None, **policy) -> Association:
    """An association serving ``dispatcher`` (an EchoDispatcher); NTLM and SPNEGO accept,
    Kerberos (16) is known but must not be reached."""
    return Association(dispatcher=dispatcher or EchoDispatcher(), acceptors={**ntlm_acceptors(), 16: _never},
                       connection=CONN, groups=AssocGroups(), policy=AssociationPolicy(**policy))


def ctx(cont_id=0, *, iface=IFACE, version=0, syntaxes=(NDR20,)) -> DceRpc5Context:
    return DceRpc5Context(cont_id=cont_id,
                          abstract_syntax=DceRpc5AbstractSyntax(if_uuid=iface, if_version=version),
                          transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=s[0], if_version=s[1]) for s in syntaxes])


def _with_trailer(pkt: DceRpc5, auth_type: int | None, level: int, context_id: int, token: bytes) -> DceRpc5:
    if auth_type is not None:
        pkt.auth_verifier = build.auth_verifier(auth_type=auth_type, auth_level=level, context_id=context_id,
                                                token=token)
        pkt.auth_verifier.auth_pad_length = None
    return pkt


def bind(*elems, auth_type: int | None = None, level: int = 6, context_id: int = 0, token: bytes = b"\x01" * 16,
         call_id: int = 1, **fields) -> bytes:
    """A bind of ``elems`` (default: IFACE over NDR), with a sec_trailer when ``auth_type`` is given."""
    pkt = _with_trailer(DceRpc5(call_id=call_id), auth_type, level, context_id, token)
    return bytes(pkt / DceRpc5Bind(context_elem=list(elems or [ctx()]), **fields))


def alter(*elems, auth_type: int | None = None, level: int = 6, context_id: int = 0, token: bytes = b"\x01" * 16,
          call_id: int = 2) -> bytes:
    pkt = _with_trailer(DceRpc5(call_id=call_id), auth_type, level, context_id, token)
    return bytes(pkt / DceRpc5AlterContext(context_elem=list(elems or [ctx()])))


def request(opnum=1, stub=b"abcd", *, call_id=2, cont_id=0, flags=FIRST | LAST) -> bytes:
    return bytes(DceRpc5(call_id=call_id, pfc_flags=flags)
                 / DceRpc5Request(alloc_hint=len(stub), cont_id=cont_id, opnum=opnum) / Raw(stub))


def send(assoc: Association, *pdus: bytes) -> Observed:
    """Feed ``pdus``; the answer to the last one."""
    out: list[bytes] = []
    try:
        for pdu in pdus:
            out = assoc.receive(pdu)
    except DropConnection as drop:
        return _observed(drop.final, True)
    return _observed(out, False)


def _observed(pdus: list[bytes], drops: bool) -> Observed:
    if not pdus:
        return Observed("drop" if drops else "silent", None, drops)
    pkt = DceRpc5(pdus[-1])
    if pkt.ptype == PType.FAULT:
        return Observed("fault", int(pkt.status), drops)
    if pkt.ptype == PType.BIND_NAK:
        return Observed("bind_nak", int(pkt.provider_reject_reason), drops)
    return Observed("accept", None, drops)


def authenticated(auth_type: int = 10, level: int = 6, **policy):
    """The suite's client, bound to IFACE and authenticated at ``level`` on a fresh association."""
    conn = client(association(**policy), security(auth_type, level))
    outcome = conn.bind(IFACE)
    assert outcome.ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP), outcome.ptype
    return conn


def protected_request(conn, stub: bytes = b"abcdefgh", **kwargs) -> bytes:
    return conn.request_pdu(1, stub, cont_id=conn.contexts[IFACE], **kwargs)


# -- one scenario per situation ----------------------------------------------------------

def _level_call() -> Observed:
    return send(association(), bind(auth_type=10, level=3))


def _auth_none_valid_level() -> Observed:
    return send(association(), bind(auth_type=0, level=5))


def _auth_none_invalid_level() -> Observed:
    return send(association(), bind(auth_type=0, level=7))


def _unknown_assoc_group() -> Observed:
    return send(association(), bind(assoc_group_id=0xBEEF))


def _before_bind() -> Observed:
    return send(association(), request())


def _unknown_context() -> Observed:
    return send(association(), bind(), request(cont_id=7))


def _without_first() -> Observed:
    return send(association(), bind(), request(flags=0))


def _new_call_inside() -> Observed:
    return send(association(), bind(), request(flags=FIRST), request(call_id=3))


def _bad_signature() -> Observed:
    conn = authenticated(10, 5)
    pdu = protected_request(conn)
    return observe(conn, pdu[:-6] + bytes([pdu[-6] ^ 0x40]) + pdu[-5:])  # a checksum byte


def _replay() -> Observed:
    conn = authenticated(10, 6)
    pdu = protected_request(conn)
    assert observe(conn, pdu).kind == "accept"
    return observe(conn, pdu)


def _pad_overflow() -> Observed:
    conn = authenticated(10, 5)
    return observe(conn, SecTrailer.patched(protected_request(conn), auth_pad_length=200))


def _trailer_level_changed() -> Observed:
    conn = authenticated(10, 6)
    return observe(conn, SecTrailer.patched(protected_request(conn), auth_level=5))


def _trailer_auth_type_changed() -> Observed:
    conn = authenticated(10, 6)
    return observe(conn, SecTrailer.patched(protected_request(conn), auth_type=9))


def _trailer_unknown_context() -> Observed:
    conn = authenticated(10, 6)
    return observe(conn, SecTrailer.patched(protected_request(conn), auth_context_id=77))


def _spnego_auth3() -> Observed:
    conn = client(association(), security(9, 5, spnego_auth3=True))
    assert conn.bind(IFACE).ptype == PType.BIND_ACK  # the auth3 gets no answer
    return observe(conn, protected_request(conn))


def _alter_change(**next_leg) -> Callable[[], Observed]:
    def scenario() -> Observed:
        conn = client(association(), security(9, 5))
        conn.next_leg = dict(next_leg)
        outcome = conn.bind(IFACE)
        return _observed(list(outcome.pdus), conn.sock.dropped is not None)
    return scenario


# DCOM: the reference CA's dispatchers, given a Call (an exporter/activation association
# sends the Fault they return and keeps the connection)

def orpc_call(*, opnum=wcce.Opnum.PING, stub: bytes | None = None, object_uuid=None, level=6,
              interface=wcce.IID_ICERTREQUESTD, user="LAB\\alice") -> Call:
    return Call(connection=CONN, interface=interface, if_version=0, opnum=opnum, object_uuid=object_uuid,
                stub=stub if stub is not None else orpc_request_stub(wcce.Ping_Request(pwszAuthority="WCCE-LAB-CA")),
                little_endian=True, auth=CallAuth(auth_type=10, auth_level=level, context_id=0, user=user),
                call_id=5)


def _dispatched(outcome) -> Observed:
    if isinstance(outcome, Fault):
        return Observed("fault", outcome.status, False)
    return Observed("accept", None, False)


def dcom_scenarios(ca) -> dict[str, Callable[[], Observed]]:
    """The DCOM situations, on ``ca`` (a ReferenceCA, not started)."""
    def ipid() -> uuid.UUID:
        _, made = ca.objects.create_object(wcce.CLSID_CCERTREQUESTD, [wcce.IID_ICERTREQUESTD], owner="LAB\\alice")
        return made[wcce.IID_ICERTREQUESTD].ipid

    ping = wcce.Ping_Request(pwszAuthority="WCCE-LAB-CA")
    return {
        "dcom/activation/below-integrity":
            lambda: _dispatched(ca.scm.remote_create_instance(orpc_call(level=4), None)),
        "dcom/orpc/unknown-ipid": lambda: _dispatched(ca.exporter.dispatch(orpc_call(object_uuid=uuid.uuid4()))),
        "dcom/orpc/orpcthis-flags": lambda: _dispatched(ca.exporter.dispatch(
            orpc_call(object_uuid=ipid(), stub=orpc_request_stub(ping, flags=1)))),
        "dcom/orpc/com-version-unsupported": lambda: _dispatched(ca.exporter.dispatch(
            orpc_call(object_uuid=ipid(), stub=orpc_request_stub(ping, version=(6, 0))))),
    }


def opnum_out_of_range(ca) -> Observed:
    """A plain RPC interface of the activation port: IObjectExporter has no opnum 99."""
    assoc = Association(dispatcher=ca.activation_dispatcher, acceptors={}, connection=CONN, groups=AssocGroups())
    return send(assoc, bind(ctx(iface=IID_IOBJECT_EXPORTER)), request(99))


#: situation -> scenario, for the situations an association answers on its own
RPC_SCENARIOS: dict[str, Callable[[], Observed]] = {
    "rpc/bind/level-call": _level_call,
    "rpc/bind/auth-none/valid-level": _auth_none_valid_level,
    "rpc/bind/auth-none/invalid-level": _auth_none_invalid_level,
    "rpc/bind/unknown-assoc-group": _unknown_assoc_group,
    "rpc/alter/change-level": _alter_change(auth_level=6),
    "rpc/alter/change-auth-type": _alter_change(auth_type=10),
    "rpc/alter/change-transfer-syntax": _alter_change(transfer_syntaxes=[NDR20, NDR64]),
    "rpc/request/before-bind": _before_bind,
    "rpc/request/bad-signature": _bad_signature,
    "rpc/request/replay": _replay,
    "rpc/request/pad-overflow": _pad_overflow,
    "rpc/request/trailer-level-changed": _trailer_level_changed,
    "rpc/request/trailer-auth-type-changed": _trailer_auth_type_changed,
    "rpc/request/trailer-unknown-context": _trailer_unknown_context,
    "rpc/request/unknown-context": _unknown_context,
    "rpc/fragments/without-first": _without_first,
    "rpc/fragments/new-call-inside": _new_call_inside,
    "rpc/auth3/spnego-leg": _spnego_auth3,
}
