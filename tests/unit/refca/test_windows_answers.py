"""The association answers as Windows does where the ledger is CONFIRMED, on bytes.

Binds at RPC_C_AUTHN_LEVEL_CALL, the level checked before the provider, requests without
verifier served unauthenticated, alter_context changing a context's transfer syntaxes,
and the other CONFIRMED refusals; each behaviour change also as its mutant (the old
behaviour) so that the switch is seen to do what it names.
"""

from __future__ import annotations

import uuid

import pytest

from conformance.model.ledger import reference_answer
from scapy.layers.dcerpc import DceRpc5, DceRpc5Request
from scapy.packet import Raw

from conformance.mutation.server import MUTANTS
from conformance.refca.rpc.association import DropConnection, VerifierlessRequest
from conformance.wire.framing import CommonHeader
from conformance.wire.pdu import auth_verifier
from conformance.wire.protection import SecTrailer
from conformance.wire.rpc import (
    NDR20, NDR64, BindNakReason, ContextResult, FaultStatus, ProviderReason, PType,
)
from tests.unit.refca.loopback import Observed, client, dropped, observe, security
from tests.unit.refca.scenarios import (
    FIRST, IFACE, LAST, EchoDispatcher, RPC_SCENARIOS, alter, association, authenticated, bind, ctx,
    protected_request, request, send,
)

NAK, FAULT = "bind_nak", "fault"


def mutant_policy(name: str) -> dict:
    """The association fields a server mutant changes, as AssociationPolicy keywords."""
    return {path.split(".", 1)[1]: value for path, value in MUTANTS[name].changes.items()}


def unprotected_request(conn, *, call_id=90, stub=b"wxyz", flags=FIRST | LAST) -> bytes:
    """A request on the connection's context with no sec_trailer."""
    return bytes(DceRpc5(call_id=call_id, pfc_flags=flags)
                 / DceRpc5Request(alloc_hint=len(stub), cont_id=conn.contexts[IFACE], opnum=1) / Raw(stub))


# -- RPC_C_AUTHN_LEVEL_CALL (rpc/bind/level-call) ----------------------------------------------

@pytest.mark.parametrize("auth_type", [9, 10, 16], ids=["spnego", "ntlm", "kerberos"])
def test_a_bind_at_call_level_is_refused_before_the_provider(auth_type):
    # Kerberos' acceptor raises if consulted: the level is refused first
    assert send(association(), bind(auth_type=auth_type, level=3)) == Observed(NAK, BindNakReason.INVALID_CHECKSUM,
                                                                              True)


@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego", "ntlm"])
def test_the_suites_client_at_call_level_gets_bind_nak_9(auth_type):
    conn = client(association(), security(auth_type, 3))
    outcome = conn.bind(IFACE)
    assert (outcome.ptype, DceRpc5(outcome.last).provider_reject_reason) == (PType.BIND_NAK, 9)
    assert dropped(conn)


@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego", "ntlm"])
@pytest.mark.parametrize("level", [2, 4, 5, 6])
def test_the_other_levels_bind_and_are_served(auth_type, level):
    conn = authenticated(auth_type, level)
    outcome, stub = conn.call(IFACE, 1, b"abcdefgh")
    assert stub == b"hgfedcba" and not dropped(conn)


def test_an_alter_context_opening_a_context_at_call_level_faults_and_drops():
    """An alter_context cannot get a bind_nak: it gets access_denied, as Windows answers an
    alter_context whose security context cannot be opened, and the connection drops."""
    assoc = association()
    send(assoc, bind())
    assert send(assoc, alter(auth_type=10, level=3, context_id=1)) == Observed(FAULT, FaultStatus.ACCESS_DENIED, True)


def test_mutant_bind_at_call_level_binds_and_serves_call_as_packet():
    conn = authenticated(10, 3, **mutant_policy("bind-at-call-level"))
    outcome, stub = conn.call(IFACE, 1, b"abcdefgh")
    assert stub == b"hgfedcba"
    trailer = SecTrailer.parse(outcome.last, CommonHeader.parse(outcome.last))
    assert trailer.auth_level == 3  # signed, answered at the client's level


# -- the level before the provider (rpc/bind/auth-none/*) ------------------------------------

@pytest.mark.parametrize("auth_type, level, reason", [
    *[(0, level, BindNakReason.NOT_SPECIFIED) for level in (0, 1, 7, 255)],
    *[(0, level, BindNakReason.AUTHENTICATION_TYPE_NOT_RECOGNIZED) for level in (2, 3, 4, 5, 6)],
    *[(9, level, BindNakReason.NOT_SPECIFIED) for level in (0, 1, 7, 255)],  # SPNEGO, which the CA has
    (10, 7, BindNakReason.NOT_SPECIFIED),
    (0x44, 3, BindNakReason.AUTHENTICATION_TYPE_NOT_RECOGNIZED),  # an unknown provider before CALL's refusal
    (0x44, 0, BindNakReason.NOT_SPECIFIED),
])
def test_a_bind_level_is_validated_before_its_provider(auth_type, level, reason):
    assert send(association(), bind(auth_type=auth_type, level=level)) == Observed(NAK, reason, True)


def test_a_trailer_naming_auth_type_none_is_not_no_authentication():
    """auth_type 0 in a sec_trailer names a provider the CA does not have; only a bind
    without sec_trailer is unauthenticated."""
    assert send(association(), bind(auth_type=0, level=1)).kind == NAK
    assert send(association(), bind()) == Observed("accept", None, False)


def test_mutant_provider_before_level():
    policy = mutant_policy("provider-before-level")
    # auth_type NONE at an invalid level: the provider's refusal (8), not the level's (0)
    assert send(association(**policy), bind(auth_type=0, level=7)) == Observed(
        NAK, BindNakReason.AUTHENTICATION_TYPE_NOT_RECOGNIZED, True)
    # a provider the CA has still meets the level check
    assert send(association(**policy), bind(auth_type=9, level=7)) == Observed(NAK, BindNakReason.NOT_SPECIFIED, True)


# -- a request without verifier (rpc/request/no-verifier) ------------------------------------

@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego", "ntlm"])
@pytest.mark.parametrize("level", [4, 5, 6])
def test_a_request_without_verifier_is_served_unauthenticated(auth_type, level):
    conn = authenticated(auth_type, level)
    dispatcher: EchoDispatcher = conn.sock.association.dispatcher
    conn.send(unprotected_request(conn))
    answer = conn.recv_pdu(timeout=0)
    # dispatched with no identity: the interface decides; the answer is not protected
    call = dispatcher.calls[-1]
    assert (call.auth.auth_level, call.auth.user, call.auth.context_id, call.auth.authenticated) == (1, None, None,
                                                                                                   False)
    pkt = DceRpc5(answer)
    assert pkt.ptype == PType.RESPONSE and pkt.auth_len == 0 and bytes(pkt[Raw].load) == b"zyxw"
    assert not dropped(conn)
    # the security context is untouched: the next protected call verifies and is served
    _, stub = conn.call(IFACE, 1, b"abcdefgh")
    assert stub == b"hgfedcba" and dispatcher.calls[-1].auth.user == "lab.test\\alice"


def test_a_request_without_verifier_on_a_connect_context_uses_it():
    conn = authenticated(10, 2)
    conn.send(unprotected_request(conn))
    assert DceRpc5(conn.recv_pdu(timeout=0)).ptype == PType.RESPONSE
    assert conn.sock.association.dispatcher.calls[-1].auth.user == "lab.test\\alice"


def test_an_interface_fault_to_an_unauthenticated_call_keeps_the_connection():
    conn = authenticated(10, 6)
    conn.send(bytes(DceRpc5(call_id=91, pfc_flags=3) / DceRpc5Request(
        alloc_hint=4, cont_id=conn.contexts[IFACE], opnum=9) / Raw(b"wxyz")))
    assert observe(conn) == Observed(FAULT, 0x1234, False)


def test_mutant_refuse_request_without_verifier():
    policy = mutant_policy("refuse-request-without-verifier")
    assert policy == {"requests_without_verifier": VerifierlessRequest.PROTOCOL_ERROR}
    conn = authenticated(10, 6, **policy)
    assert observe(conn, unprotected_request(conn)) == Observed(FAULT, FaultStatus.NCA_S_PROTO_ERROR, True)
    assert conn.sock.association.dispatcher.calls == []


def test_a_protected_call_takes_no_fragment_without_verifier():
    """Serving verifier-less requests must not let one into a protected call."""
    conn = authenticated(10, 6)
    conn.send(protected_request(conn, call_id=40, pfc_flags=FIRST))
    assert conn.recv_pdu(timeout=0) is None and not dropped(conn)
    assert observe(conn, unprotected_request(conn, call_id=40, flags=LAST)) == Observed(
        FAULT, FaultStatus.NCA_S_PROTO_ERROR, True)
    assert conn.sock.association.dispatcher.calls == []


def test_an_unauthenticated_call_takes_no_protected_fragment():
    conn = authenticated(10, 6)
    conn.send(unprotected_request(conn, call_id=41, flags=FIRST))
    assert conn.recv_pdu(timeout=0) is None and not dropped(conn)
    assert observe(conn, protected_request(conn, call_id=41, pfc_flags=LAST)) == Observed(
        FAULT, FaultStatus.NCA_S_PROTO_ERROR, True)


# -- alter_context and transfer syntaxes (rpc/alter/change-transfer-syntax) -------------------

@pytest.mark.parametrize("syntaxes", [(NDR20, NDR64), (NDR64,), (NDR64, NDR20)], ids=["ndr-ndr64", "ndr64",
                                                                                      "ndr64-ndr"])
def test_re_presenting_a_context_with_another_known_syntax_is_a_protocol_error(syntaxes):
    assoc = association()
    send(assoc, bind())
    assert send(assoc, alter(ctx(0, syntaxes=syntaxes))) == Observed(FAULT, FaultStatus.NCA_S_PROTO_ERROR, True)


def test_re_presenting_a_context_with_its_own_syntax_is_accepted():
    assoc = association()
    send(assoc, bind())
    [ack] = assoc.receive(alter(ctx(0)))
    assert DceRpc5(ack).results[0].result == ContextResult.ACCEPTANCE


def test_re_presenting_a_context_with_only_unknown_syntaxes_is_rejected_and_keeps_it():
    """Windows (Samba's test_no_auth_presentation_ctx_valid2): provider_rejection, and the
    context keeps working."""
    unknown = (uuid.UUID("11111111-2222-3333-4444-555555555555"), 1)
    assoc = association()
    send(assoc, bind())
    [ack] = assoc.receive(alter(ctx(0, syntaxes=(unknown,))))
    result = DceRpc5(ack).results[0]
    assert (result.result, result.reason) == (ContextResult.PROVIDER_REJECTION,
                                              ProviderReason.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED)
    assert send(assoc, request(call_id=5)) == Observed("accept", None, False)


def test_the_context_check_comes_before_the_security_legs_check():
    """Samba's test_spnego_change_transfer (Windows): the leg also changes the level, and
    the answer is the presentation context's protocol error."""
    conn = client(association(), security(9, 5))
    conn.next_leg = {"transfer_syntaxes": [NDR20, NDR64], "auth_level": 6}
    outcome = conn.bind(IFACE)
    assert (outcome.ptype, outcome.fault_status) == (PType.FAULT, FaultStatus.NCA_S_PROTO_ERROR)
    assert dropped(conn)


def test_mutant_accept_transfer_syntax_change():
    assoc = association(**mutant_policy("accept-transfer-syntax-change"))
    send(assoc, bind())
    [ack] = assoc.receive(alter(ctx(0, syntaxes=(NDR20, NDR64))))
    assert DceRpc5(ack).results[0].result == ContextResult.ACCEPTANCE


# -- the other CONFIRMED answers, as Windows gives them ----------------------------------------

@pytest.mark.parametrize("situation, answer", [
    ("rpc/bind/level-call", Observed(NAK, 9, True)),
    ("rpc/bind/auth-none/valid-level", Observed(NAK, 8, True)),
    ("rpc/bind/auth-none/invalid-level", Observed(NAK, 0, True)),
    ("rpc/bind/unknown-assoc-group", Observed(NAK, 0, True)),
    ("rpc/request/unknown-context", Observed(FAULT, 0x1C010003, False)),
    ("rpc/request/bad-signature", Observed(FAULT, 0x721, True)),
    ("rpc/request/trailer-level-changed", Observed(FAULT, 0x5, True)),
    ("rpc/request/trailer-unknown-context", Observed(FAULT, 0x5, True)),
    ("rpc/fragments/without-first", Observed(FAULT, 0x1C01000B, True)),
    ("rpc/fragments/new-call-inside", Observed(FAULT, 0x1C01000B, True)),
    ("rpc/auth3/spnego-leg", Observed(FAULT, 0x5, True)),
    ("rpc/alter/change-level", Observed(FAULT, 0x5, True)),
    ("rpc/alter/change-auth-type", Observed(FAULT, 0x721, True)),
    ("rpc/alter/change-transfer-syntax", Observed(FAULT, 0x1C01000B, True)),
])
def test_confirmed_windows_answers(situation, answer):
    assert RPC_SCENARIOS[situation]() == answer


def test_the_request_level_switch_leaves_the_alter_level_check():
    """accept-level-change serves requests whose sec_trailer changes the level
    (RPCE-AUTH-02); a security leg that changes its context's level is still refused."""
    conn = client(association(**mutant_policy("accept-level-change")), security(9, 5))
    conn.next_leg = {"auth_level": 6}
    outcome = conn.bind(IFACE)
    assert (outcome.fault_status, dropped(conn)) == (FaultStatus.ACCESS_DENIED, True)


def test_the_connection_stays_after_an_unknown_context():
    assoc = association()
    send(assoc, bind())
    assert send(assoc, request(cont_id=7)) == Observed(FAULT, FaultStatus.NCA_S_UNK_IF, False)
    assert send(assoc, request(call_id=3)) == Observed("accept", None, False)


def test_a_spnego_leg_in_auth3_refuses_the_next_request_at_connect():
    """Samba's test_spnego_auth3: a CONNECT context completed by rpc_auth3, then a request
    without verifier: 0x5 and the connection drops."""
    conn = client(association(), security(9, 2, spnego_auth3=True))
    assert conn.bind(IFACE).ptype == PType.BIND_ACK
    assert observe(conn, unprotected_request(conn)) == Observed(FAULT, FaultStatus.ACCESS_DENIED, True)


def test_a_pad_overflow_at_connect_is_refused():
    """At CONNECT nothing is verified, but a pad longer than the stub is still refused
    (before: the stub was cut short and served)."""
    conn = authenticated(10, 2)
    pdu = bytes(DceRpc5(call_id=50, pfc_flags=3, auth_verifier=auth_verifier(
        auth_type=10, auth_level=2, context_id=0, token=b"\0" * 16, pad_length=200))
        / DceRpc5Request(alloc_hint=4, cont_id=conn.contexts[IFACE], opnum=1) / Raw(b"wxyz"))
    answer = reference_answer("rpc/request/pad-overflow")  # the ledger's (nca_s_proto_error today)
    assert observe(conn, pdu) == Observed(FAULT, answer.code, True)
    assert conn.sock.association.dispatcher.calls == []


def test_a_second_bind_still_gets_bind_nak_0():
    assoc = association()
    send(assoc, bind())
    with pytest.raises(DropConnection) as info:
        assoc.receive(bind(call_id=4))
    assert DceRpc5(info.value.final[0]).provider_reject_reason == BindNakReason.NOT_SPECIFIED
