"""Samba-style DCE/RPC negatives on the object exporter, by name.

Each action opens the case's authenticated exporter connection, sends PDUs that
differ from a valid call in one named way, and returns the observed outcome and
whether the connection dropped.  The expected outcome lives in the case table.
"""

from __future__ import annotations

import dataclasses
import uuid

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL, DceRpc5, DceRpc5Bind

from conformance.client import methods
from conformance.client.dcom import orpc_request_stub
from conformance.client.rpc import Outcome, RpcConnection
from conformance.wire import wcce
from conformance.wire.framing import CommonHeader
from conformance.wire.protection import SecTrailer
from conformance.wire.rpc import BindTimeFeature, PfcFlag, PType

__all__ = ["RAW_ACTIONS", "Inconclusive"]

FIRST, LAST = PfcFlag.FIRST_FRAG, PfcFlag.LAST_FRAG


class Inconclusive(Exception):
    """The target did not do what the case needs (and its profile claims): the case
    cannot be judged and is INCONCLUSIVE, with this reason."""


def _answer(conn: RpcConnection) -> tuple[str, bool]:
    """The server's answer and whether it then closed the connection."""
    from conformance.engine import _outcome_text

    pdu = conn.recv_pdu()
    outcome = Outcome(pdus=(pdu,) if pdu else (), closed=conn.closed_by_peer)
    text = _outcome_text(outcome)
    if text == "accept":
        # a whole response: drain its fragments
        while pdu is not None and not CommonHeader.parse(pdu).pfc_flags & LAST:
            pdu = conn.recv_pdu()
    return text, not conn.is_connected()


def _exporter(session) -> tuple[RpcConnection, uuid.UUID, int]:
    session.connect_exporter()
    conn = session.exporter
    return conn, session.activation.ipid(wcce.IID_ICERTREQUESTD), conn.contexts[wcce.IID_ICERTREQUESTD]


def _ping_stub(engine, case) -> bytes:
    return orpc_request_stub(methods.ping(engine.ca_name(case)))


def _send(conn, *pdus: bytes) -> None:
    for pdu in pdus:
        conn.send(pdu)


def pfc_flags(extra: int):
    """A complete request with flags the server does not act on (MAYBE, CONC_MPX, reserved)."""
    def action(engine, case, settings, session, tap):
        conn, ipid, cont = _exporter(session)
        _send(conn, conn.request_pdu(5, _ping_stub(engine, case), cont_id=cont, object_uuid=ipid,
                                     pfc_flags=FIRST | LAST | extra))
        return _answer(conn)
    return action


def fragments(shape: str):
    def action(engine, case, settings, session, tap):
        conn, ipid, cont = _exporter(session)
        stub = _ping_stub(engine, case)
        half = len(stub) // 2 // 4 * 4
        call = conn.next_call_id()

        def frag(piece, flags, call_id=call):
            return conn.request_pdu(5, piece, cont_id=cont, object_uuid=ipid, call_id=call_id,
                                    pfc_flags=flags, alloc_hint=len(stub))
        if shape == "in-order":
            _send(conn, frag(stub[:half], FIRST), frag(stub[half:], LAST))
        elif shape == "middle-without-first":
            _send(conn, frag(stub[half:], 0))
        elif shape == "last-without-first":
            _send(conn, frag(stub[half:], LAST))
        elif shape == "new-call-inside":
            _send(conn, frag(stub[:half], FIRST), frag(stub, FIRST | LAST, conn.next_call_id()))
        return _answer(conn)
    return action


def _trailer_patch(offset_in_trailer: int, value: bytes):
    def action(engine, case, settings, session, tap):
        conn, ipid, cont = _exporter(session)
        pdu = conn.request_pdu(5, _ping_stub(engine, case), cont_id=cont, object_uuid=ipid)
        at = SecTrailer.parse(pdu, CommonHeader.parse(pdu)).offset + offset_in_trailer
        _send(conn, pdu[:at] + value + pdu[at + len(value):])
        return _answer(conn)
    return action


def tamper_signature(engine, case, settings, session, tap):
    conn, ipid, cont = _exporter(session)
    pdu = conn.request_pdu(5, _ping_stub(engine, case), cont_id=cont, object_uuid=ipid)
    _send(conn, pdu[:-3] + bytes([pdu[-3] ^ 0x40]) + pdu[-2:])
    return _answer(conn)


def replay(engine, case, settings, session, tap):
    conn, ipid, cont = _exporter(session)
    pdu = conn.request_pdu(5, _ping_stub(engine, case), cont_id=cont, object_uuid=ipid)
    _send(conn, pdu)
    first, _ = _answer(conn)
    if first != "accept":
        return f"first call: {first}", not conn.is_connected()
    _send(conn, pdu)
    return _answer(conn)


def missing_verifier(engine, case, settings, session, tap):
    conn, ipid, cont = _exporter(session)
    protection, conn.protection = conn.protection, None  # build it as if unauthenticated
    pdu = conn.request_pdu(5, _ping_stub(engine, case), cont_id=cont, object_uuid=ipid)
    conn.protection = protection
    _send(conn, pdu)
    return _answer(conn)


def downgrade_signed(engine, case, settings, session, tap):
    """A level downgrade inside the association: a request on the PKT_PRIVACY context,
    correctly signed but not sealed, whose sec_trailer says PKT_INTEGRITY."""
    conn, ipid, cont = _exporter(session)
    sealed = conn.security
    conn.security = dataclasses.replace(sealed, level=5)
    try:
        pdu = conn.request_pdu(5, _ping_stub(engine, case), cont_id=cont, object_uuid=ipid)
    finally:
        conn.security = sealed
    _send(conn, pdu)
    return _answer(conn)


def second_context(engine, case, settings, session, tap):
    """A level downgrade by a second security context: after the PKT_PRIVACY bind, an
    alter_context authenticates auth_context_id + 1 at PKT_INTEGRITY and presents
    ICertRequestD again, and a Request travels on that context (the CA must judge each
    call by the context protecting it)."""
    from conformance.engine import _dropped, _outcome_text, observe

    conn, _, _ = _exporter(session)
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
                           f"second context at PKT_INTEGRITY ({_outcome_text(bound)})")
    # the call goes on the presentation context just bound, under the new auth context
    request, interface = engine._method(case, "Request")
    return observe(session.call(request, interface=interface)), _dropped(case, conn)


def foreign_ipid(engine, case, settings, session, tap):
    """A second client (the profile's second account) activates its own object and
    calls Ping on the IPID the case's client was given, on its own connection."""
    from conformance.client.session import WcceSession

    _exporter(session)  # the first client's object, activated as the target's account
    victim = session.activation.ipid(wcce.IID_ICERTREQUESTD)
    t = engine.target.second
    other = dataclasses.replace(settings, user=t.user, domain=t.domain, password=t.password)
    with WcceSession.from_settings(other, tap=tap) as intruder:
        outcome, activation = intruder.activate()
        if activation is None or activation.status != 0:
            return "second client could not activate", None
        conn, own, cont = _exporter(intruder)
        if own == victim:
            return "both clients were given the same IPID", None
        _send(conn, conn.request_pdu(5, _ping_stub(engine, case), cont_id=cont, object_uuid=victim))
        return _answer(conn)


def opnum(number: int, interface: str = "ICertRequestD"):
    def action(engine, case, settings, session, tap):
        conn, ipid, cont = _exporter(session)
        _send(conn, conn.request_pdu(number, _ping_stub(engine, case), cont_id=cont, object_uuid=ipid))
        return _answer(conn)
    return action


def unknown_context(engine, case, settings, session, tap):
    conn, ipid, _ = _exporter(session)
    _send(conn, conn.request_pdu(5, _ping_stub(engine, case), cont_id=0x77, object_uuid=ipid))
    return _answer(conn)


def unknown_assoc_group(engine, case, settings, session, tap):
    host, port = session.exporter_address()
    with RpcConnection(host, port, tap=tap) as conn:
        elems = conn.contexts_for(wcce.IID_ICERTREQUESTD, 0)
        conn.send(bytes(DceRpc5(call_id=conn.next_call_id())
                        / DceRpc5Bind(assoc_group_id=0x7EADBEEF, context_elem=elems)))
        return _answer(conn)


def request_before_bind(engine, case, settings, session, tap):
    host, port = session.exporter_address()
    with RpcConnection(host, port, tap=tap) as conn:
        conn.send(conn.request_pdu(5, _ping_stub(engine, case), cont_id=0,
                                   object_uuid=session.activation.ipid(wcce.IID_ICERTREQUESTD)))
        return _answer(conn)


RAW_ACTIONS = {
    "pfc-maybe": pfc_flags(PfcFlag.MAYBE),
    "pfc-conc-mpx": pfc_flags(PfcFlag.CONC_MPX),
    "pfc-reserved": pfc_flags(PfcFlag.RESERVED_1),
    "fragments-in-order": fragments("in-order"),
    "fragments-middle-without-first": fragments("middle-without-first"),
    "fragments-last-without-first": fragments("last-without-first"),
    "fragments-new-call-inside": fragments("new-call-inside"),
    "auth-pad-overflow": _trailer_patch(2, b"\xf0"),
    "trailer-level-changed": _trailer_patch(1, b"\x05"),
    "trailer-auth-type-changed": _trailer_patch(0, b"\x0a"),
    "trailer-unknown-context": _trailer_patch(4, b"\x55\x55\x00\x00"),
    "tamper-signature": tamper_signature,
    "replay": replay,
    "missing-verifier": missing_verifier,
    "downgrade-signed": downgrade_signed,
    "second-context": second_context,
    "foreign-ipid": foreign_ipid,
    "opnum-out-of-range": opnum(99),
    "unknown-context": unknown_context,
    "unknown-assoc-group": unknown_assoc_group,
    "request-before-bind": request_before_bind,
}
