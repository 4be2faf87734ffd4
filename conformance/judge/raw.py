"""Samba-style DCE/RPC negatives on the object exporter, by name.

Each action takes the case's endpoint (:mod:`conformance.judge.endpoints`: a CA's object
exporter, or a plain DCE/RPC interface), sends PDUs that differ from a valid call in one
named way, and returns the observed outcome and whether the connection dropped.  The
expected outcome lives in the case table.  The ``responses-*`` actions are positive: several
valid calls on one security context, or alternating between two, each response verified.
"""

from __future__ import annotations

import dataclasses

from scapy.layers.dcerpc import RPC_C_AUTHN, RPC_C_AUTHN_LEVEL, DceRpc5, DceRpc5Bind
from scapy.layers.msrpce.raw import ms_dcom
from scapy.layers.msrpce.raw.ms_dcom import GUID

from conformance.client.dcom import orpc_request_stub
from conformance.client.rpc import RpcConnection
from conformance.client.session import WcceSession
from conformance.judge.endpoints import DcomEndpoint
from conformance.judge.errors import Inconclusive
from conformance.judge.flows import answer, dropped
from conformance.judge.outcome import of_call, of_reply
from conformance.model import cases, outcomes
from conformance.wire import pdu as build
from conformance.wire import wcce
from conformance.wire.dcom import IID_IREMUNKNOWN2, IREMUNKNOWN2_OPNUMS
from conformance.wire.protection import SecTrailer
from conformance.wire.rpc import NDR20, NDR64, BindTimeFeature, PfcFlag, PType

__all__ = ["RAW_ACTIONS"]

FIRST, LAST = PfcFlag.FIRST_FRAG, PfcFlag.LAST_FRAG


def _send(conn, *pdus: bytes) -> None:
    for pdu in pdus:
        conn.send(pdu)


# each with the case's close window (Engine.drop_wait_for: the target's drop_wait)
def _answer(engine, case, conn) -> tuple[str, bool]:
    return answer(conn, engine.drop_wait_for(case))


def _closed(engine, case, conn) -> bool:
    return not conn.is_connected(engine.drop_wait_for(case))


def _dropped(engine, case, conn) -> bool | None:
    return dropped(case, conn, engine.drop_wait_for(case))


def pfc_flags(extra: int):
    """A complete request with flags the server does not act on (MAYBE, CONC_MPX, reserved)."""
    def action(engine, case, settings, endpoint, tap):
        conn, ipid, cont = endpoint.bound()
        _send(conn, conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=ipid,
                                     pfc_flags=FIRST | LAST | extra))
        return _answer(engine, case, conn)
    return action


def fragments(shape: str):
    def action(engine, case, settings, endpoint, tap):
        conn, ipid, cont = endpoint.bound()
        stub = endpoint.stub()
        half = len(stub) // 2 // 4 * 4
        call = conn.next_call_id()

        def frag(piece, flags, call_id=call):
            return conn.request_pdu(endpoint.opnum, piece, cont_id=cont, object_uuid=ipid, call_id=call_id,
                                    pfc_flags=flags, alloc_hint=len(stub))
        if shape == "in-order":
            _send(conn, frag(stub[:half], FIRST), frag(stub[half:], LAST))
        elif shape == "middle-without-first":
            _send(conn, frag(stub[half:], 0))
        elif shape == "last-without-first":
            _send(conn, frag(stub[half:], LAST))
        elif shape == "new-call-inside":
            _send(conn, frag(stub[:half], FIRST), frag(stub, FIRST | LAST, conn.next_call_id()))
        return _answer(engine, case, conn)
    return action


def trailer(**fields: int):
    """A protected Ping whose sec_trailer, after signing, says something else (named fields)."""
    def action(engine, case, settings, endpoint, tap):
        conn, ipid, cont = endpoint.bound()
        pdu = conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=ipid)
        _send(conn, SecTrailer.patched(pdu, **fields))
        return _answer(engine, case, conn)
    return action


def signed_trailer(**fields: int):
    """A protected Ping whose sec_trailer says something else (named fields) and whose
    verifier is computed over what it says, as Samba's raw tests sign theirs: only the
    server's comparison with its security context can refuse it."""
    def action(engine, case, settings, endpoint, tap):
        conn, ipid, cont = endpoint.bound()
        _send(conn, conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=ipid,
                                     trailer=fields))
        return _answer(engine, case, conn)
    return action


def tamper_signature(engine, case, settings, endpoint, tap):
    """One bit of the auth token flipped: it lies in NTLM's signature and in the Kerberos
    token's checksum, so the verifier no longer matches the PDU."""
    conn, ipid, cont = endpoint.bound()
    pdu = conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=ipid)
    _send(conn, pdu[:-3] + bytes([pdu[-3] ^ 0x40]) + pdu[-2:])
    return _answer(engine, case, conn)


def replay(engine, case, settings, endpoint, tap):
    conn, ipid, cont = endpoint.bound()
    pdu = conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=ipid)
    _send(conn, pdu)
    first, _ = _answer(engine, case, conn)
    if first != "accept":
        return f"first call: {first}", _closed(engine, case, conn)
    _send(conn, pdu)
    return _answer(engine, case, conn)


def missing_verifier(engine, case, settings, endpoint, tap):
    conn, ipid, cont = endpoint.bound()
    protection, conn.protection = conn.protection, None  # build it as if unauthenticated
    pdu = conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=ipid)
    conn.protection = protection
    _send(conn, pdu)
    return _answer(engine, case, conn)


def downgrade_signed(engine, case, settings, endpoint, tap):
    """A level downgrade inside the association: a request on the PKT_PRIVACY context,
    correctly signed but not sealed, whose sec_trailer says PKT_INTEGRITY."""
    conn, ipid, cont = endpoint.bound()
    sealed = conn.security
    conn.security = dataclasses.replace(sealed, level=RPC_C_AUTHN_LEVEL.PKT_INTEGRITY)
    try:
        pdu = conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=ipid)
    finally:
        conn.security = sealed
    _send(conn, pdu)
    return _answer(engine, case, conn)


def second_context(engine, case, settings, endpoint, tap):
    """A level downgrade by a second security context: after the PKT_PRIVACY bind, an
    alter_context authenticates auth_context_id + 1 at PKT_INTEGRITY and presents
    ICertRequestD again, and a Request travels on that context (the CA must judge each
    call by the context protecting it)."""
    session = endpoint.session  # a CA's: this case's situation is WCCE's
    conn, _, _ = endpoint.bound()
    features = conn.bind_time_features or 0
    if not features & BindTimeFeature.SECURITY_CONTEXT_MULTIPLEXING:
        # [MS-RPCE] 3.3.1.5.4: "A client implementation MUST NOT do security context
        # multiplexing unless the Association's Bind Feature Bitmask has the
        # SecurityContextMultiplexingSupported bit set."
        raise Inconclusive(f"the profile claims security_context_multiplexing, but the target's "
                           f"bind_ack acknowledged bind-time features 0x{features:x}: correct the claim")
    sealed = conn.security
    conn.security = dataclasses.replace(sealed, level=RPC_C_AUTHN_LEVEL.PKT_INTEGRITY,
                                        context_id=sealed.context_id + 1)
    conn.protection = None  # the new context's own keys
    bound = conn.bind(wcce.IID_ICERTREQUESTD)
    if bound.ptype != PType.ALTER_CONTEXT_RESP or conn.protection is None:
        # nothing below PKT_PRIVACY reached the CA, so there is nothing to judge
        raise Inconclusive(f"the target acknowledged security context multiplexing but refused a "
                           f"second context at PKT_INTEGRITY ({of_reply(bound)})")
    # the call goes on the presentation context just bound, under the new auth context
    request, interface = engine.method_call(case, "Request")
    return of_call(session.call(request, interface=interface)), _dropped(engine, case, conn)


def foreign_ipid(engine, case, settings, endpoint, tap):
    """A second client (the profile's second account) activates its own object and
    calls Ping on the IPID the case's client was given, on its own connection."""
    endpoint.bound()  # the first client's object, activated as the target's account
    session = endpoint.session
    victim = session.activation.ipid(wcce.IID_ICERTREQUESTD)
    t = engine.target.second
    other = dataclasses.replace(settings, user=t.user, domain=t.domain, password=t.password)
    with WcceSession.from_settings(other, tap=tap) as intruder:
        outcome, activation = intruder.activate()
        if activation is None or activation.status != 0:
            return "second client could not activate", None
        conn, own, cont = DcomEndpoint(intruder, endpoint.stub()).bound()
        if own == victim:
            return "both clients were given the same IPID", None
        _send(conn, conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=cont, object_uuid=victim))
        return _answer(engine, case, conn)


def opnum(number: int):
    def action(engine, case, settings, endpoint, tap):
        conn, ipid, cont = endpoint.bound()
        _send(conn, conn.request_pdu(number, endpoint.stub(), cont_id=cont, object_uuid=ipid))
        return _answer(engine, case, conn)
    return action


def unknown_context(engine, case, settings, endpoint, tap):
    conn, ipid, _ = endpoint.bound()
    _send(conn, conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=0x77, object_uuid=ipid))
    return _answer(engine, case, conn)


def unknown_assoc_group(engine, case, settings, endpoint, tap):
    host, port = endpoint.address()
    with RpcConnection(host, port, tap=tap) as conn:
        elems = conn.contexts_for(endpoint.interface, endpoint.if_version)
        conn.send(bytes(DceRpc5(call_id=conn.next_call_id())
                        / DceRpc5Bind(assoc_group_id=0x7EADBEEF, context_elem=elems)))
        return _answer(engine, case, conn)


def bind_auth_none(level: int):
    """A bind of ICertRequestD whose sec_trailer names auth_type NONE (0) at ``level``
    (Samba's test_auth_none_*_bind): a provider the server does not have."""
    def action(engine, case, settings, endpoint, tap):
        host, port = endpoint.address()
        with RpcConnection(host, port, tap=tap) as conn:
            pkt = DceRpc5(pfc_flags=int(FIRST | LAST), call_id=conn.next_call_id())
            pkt.auth_verifier = build.auth_verifier(auth_type=RPC_C_AUTHN.NONE, auth_level=level, context_id=0,
                                                    token=b"none")
            pkt.auth_verifier.auth_pad_length = None
            conn.send(bytes(pkt / DceRpc5Bind(max_xmit_frag=conn.max_frag, max_recv_frag=conn.max_frag,
                                              context_elem=conn.contexts_for(endpoint.interface, endpoint.if_version))))
            return _answer(engine, case, conn)
    return action


def alter_change(**changed):
    """A fresh authenticated bind of ICertRequestD whose alter_context, carrying the
    client's next security leg, says one thing differently from the bind (Samba's
    test_spnego_change_*): the auth level, the auth type, or the transfer syntaxes of
    the accepted presentation context."""
    def action(engine, case, settings, endpoint, tap):
        with endpoint.connection() as conn:
            conn.next_leg = dict(changed)
            outcome = conn.bind(endpoint.interface, endpoint.if_version)
            return of_reply(outcome), _closed(engine, case, conn)
    return action


#: Calls the response cases make on each security context: the first response shows the
#: context's keys work, the second that its sequence number moved on, the third that it
#: keeps moving ([MS-NLMP] 3.4.4, RFC 4121 4.2.6; Samba's multi-auth tests make as many).
CALLS_PER_CONTEXT = 3
_REM_ADD_REF = next(o for o, op in IREMUNKNOWN2_OPNUMS.items() if op.request is ms_dcom.RemAddRef_Request)


def _served_call(endpoint, conn, ipid):
    """A call the endpoint answers with a protected response at the connection's level:
    (interface, opnum, stub, object UUID).  A plain RPC endpoint: its own call, at every
    level.  A CA: Ping at PKT_PRIVACY; below it a CA with IF_ENFORCEENCRYPTICERTREQUEST
    refuses every ICertRequestD call with an unprotected fault (nothing to verify), so
    IRemUnknown2::RemAddRef of one reference to the ICertRequestD object, which the
    exporter serves at every level ([MS-DCOM] 3.1.1.5.6)."""
    if not isinstance(endpoint, DcomEndpoint) or conn.security.level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY:
        return endpoint.interface, endpoint.opnum, endpoint.stub(), ipid
    bound = conn.bind(IID_IREMUNKNOWN2, endpoint.if_version)  # alter_context: a presentation context
    if IID_IREMUNKNOWN2 not in conn.contexts:
        raise Inconclusive(f"the exporter did not bind IRemUnknown2 ({of_reply(bound)}): no call it "
                           f"answers below PKT_PRIVACY, so no protected response to verify")
    ref = ms_dcom.REMINTERFACEREF(ipid=GUID(ipid.bytes_le), cPublicRefs=1, cPrivateRefs=0)
    stub = orpc_request_stub(ms_dcom.RemAddRef_Request(InterfaceRefs=[ref]))
    return IID_IREMUNKNOWN2, _REM_ADD_REF, stub, endpoint.session.activation.ipid_remunknown


def _calls(engine, case, conn, call, contexts):
    """:data:`CALLS_PER_CONTEXT` rounds of ``call``, one on each of ``contexts`` (security,
    protection) per round, each response verified by the client.  The first answer that
    is not a verified response is the outcome; a refusal of a context's first call means
    the target does not serve the call there: nothing to judge."""
    interface, opnum, stub, object_uuid = call
    for round_ in range(CALLS_PER_CONTEXT):
        for security, protection in contexts:
            conn.security, conn.protection = security, protection
            outcome, _ = conn.call(interface, opnum, stub, object_uuid=object_uuid)
            observed = of_reply(outcome)
            if observed == outcomes.ACCEPT:
                continue
            if round_ == 0 and outcome.ptype != PType.RESPONSE:
                raise Inconclusive(f"the first call on security context {security.context_id} was answered "
                                   f"{observed}: the target does not serve it at level {security.level}, so "
                                   f"there is no protected response to verify")
            return observed, _dropped(engine, case, conn)
    return outcomes.ACCEPT, _dropped(engine, case, conn)


def responses_one_context(engine, case, settings, endpoint, tap):
    """Several calls on the case's one security context: every response verifies, each
    with the next sequence number of the context."""
    conn, ipid, _ = endpoint.bound()
    call = _served_call(endpoint, conn, ipid)
    return _calls(engine, case, conn, call, [(conn.security, conn.protection)])


def responses_two_contexts(engine, case, settings, endpoint, tap):
    """Calls alternating between two security contexts of one association (the bind's,
    and a second one an alter_context authenticates as auth_context_id + 1 at the same
    level): every response verifies with its own context's keys and sequence (Samba's
    test_ntlmssp_multi_auth_*: a server that keeps one count per connection, or answers
    with the other context's keys, fails here)."""
    conn, ipid, _ = endpoint.bound()
    features = conn.bind_time_features or 0
    if not features & BindTimeFeature.SECURITY_CONTEXT_MULTIPLEXING:
        # [MS-RPCE] 3.3.1.5.4: no security context multiplexing unless the bind_ack acknowledged it
        raise Inconclusive(f"the target's bind_ack acknowledged bind-time features 0x{features:x}, not "
                           f"security context multiplexing: a second context may not be used")
    first = (conn.security, conn.protection)
    conn.security = dataclasses.replace(first[0], context_id=first[0].context_id + 1)
    conn.protection = None  # the second context's own keys
    bound = conn.bind(endpoint.interface, endpoint.if_version)
    if bound.ptype != PType.ALTER_CONTEXT_RESP or conn.protection is None:
        raise Inconclusive(f"the target acknowledged security context multiplexing but refused a second "
                           f"context ({of_reply(bound)}): nothing to alternate between")
    second = (conn.security, conn.protection)
    call = _served_call(endpoint, conn, ipid)
    return _calls(engine, case, conn, call, [first, second])


def request_before_bind(engine, case, settings, endpoint, tap):
    host, port = endpoint.address()
    with RpcConnection(host, port, tap=tap) as conn:
        conn.send(conn.request_pdu(endpoint.opnum, endpoint.stub(), cont_id=0, object_uuid=endpoint.object_uuid()))
        return _answer(engine, case, conn)


RAW_ACTIONS = {
    "pfc-maybe": pfc_flags(PfcFlag.MAYBE),
    "pfc-conc-mpx": pfc_flags(PfcFlag.CONC_MPX),
    "pfc-reserved": pfc_flags(PfcFlag.RESERVED_1),
    "fragments-in-order": fragments("in-order"),
    "fragments-middle-without-first": fragments("middle-without-first"),
    "fragments-last-without-first": fragments("last-without-first"),
    "fragments-new-call-inside": fragments("new-call-inside"),
    "auth-pad-overflow": trailer(auth_pad_length=0xF0),  # more padding than the stub holds
    "trailer-level-changed": trailer(auth_level=RPC_C_AUTHN_LEVEL.PKT_INTEGRITY),
    "trailer-auth-type-changed": trailer(auth_type=RPC_C_AUTHN.WINNT),
    "trailer-auth-type-changed-signed": signed_trailer(auth_type=RPC_C_AUTHN.WINNT),
    "trailer-unknown-context": trailer(auth_context_id=0x5555),
    "tamper-signature": tamper_signature,
    "replay": replay,
    "missing-verifier": missing_verifier,
    "downgrade-signed": downgrade_signed,
    "second-context": second_context,
    "foreign-ipid": foreign_ipid,
    "opnum-out-of-range": opnum(99),  # beyond ICertRequestD2's last opnum (9)
    "unknown-context": unknown_context,
    "unknown-assoc-group": unknown_assoc_group,
    "request-before-bind": request_before_bind,
    **{f"bind-auth-none-l{level}": bind_auth_none(level) for level in cases.AUTH_NONE_BIND_LEVELS},
    "alter-change-level": alter_change(auth_level=RPC_C_AUTHN_LEVEL.PKT_INTEGRITY),  # the bind asked PRIVACY
    "alter-change-auth-type": alter_change(auth_type=RPC_C_AUTHN.GSS_KERBEROS),  # SPNEGO's leg labelled 16
    "alter-change-transfer-syntax": alter_change(transfer_syntaxes=[NDR20, NDR64]),
    "responses-one-context": responses_one_context,
    "responses-two-contexts": responses_two_contexts,
}
assert RAW_ACTIONS.keys() == cases.RAW_ACTIONS, set(RAW_ACTIONS) ^ cases.RAW_ACTIONS  # the names tables may use
