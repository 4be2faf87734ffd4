"""What a target's reply amounts to, written in the outcome grammar
(:mod:`conformance.model.outcomes`): the one place replies become outcome strings.
Sans-IO: it reads what the client already received.

A reply whose fields cannot be read raises :class:`conformance.client.errors.MalformedReply`
(from :meth:`conformance.client.rpc.Outcome.packet`), which the engine judges as the
observed outcome; a byte stream that stopped being PDUs is the outcome ``malformed PDU …``.
Neither matches any expectation."""

from __future__ import annotations

from conformance.client.rpc import Outcome
from conformance.model import outcomes
from conformance.wire.rpc import ContextResult, PType
from conformance.wire.wcce import Disposition

__all__ = ["of_reply", "of_call", "of_activation", "MALFORMED_STREAM"]

#: The server's bytes stopped being PDUs (C706 12.6.2 framing), and the connection ended.
MALFORMED_STREAM = "malformed PDU"


def of_reply(outcome: Outcome) -> str:
    """A bind, alter_context or raw request's answer: its last PDU, or the connection's end."""
    if not outcome.pdus:
        if outcome.malformed:
            return f"{MALFORMED_STREAM}: {outcome.malformed}"
        return outcomes.DROP if outcome.closed else outcomes.SILENT
    if outcome.unverified:
        return outcomes.UNVERIFIABLE
    ptype = outcome.ptype
    pkt = outcome.packet()
    if ptype == PType.FAULT:
        return outcomes.fault(int(pkt.status))
    if ptype == PType.BIND_NAK:
        return outcomes.bind_nak(int(pkt.provider_reject_reason))
    if ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP):
        rejected = [r for r in pkt.results if int(r.result) == ContextResult.PROVIDER_REJECTION]
        accepted = [r for r in pkt.results if int(r.result) == ContextResult.ACCEPTANCE]
        if not accepted and rejected:
            return outcomes.reject(int(rejected[0].reason))
        return outcomes.ACCEPT
    if ptype == PType.RESPONSE:
        return outcomes.ACCEPT
    return outcomes.ptype(ptype)


def of_call(result) -> str:
    """A WCCE method call (:class:`conformance.client.session.CallResult`): its fault, its
    HRESULT, or for Request/Request2 its disposition (issued is ``accept``)."""
    if result.response is None:
        return of_reply(result.outcome)
    resp = result.response
    status = int(resp.status)
    if status:
        return outcomes.hresult(status)
    if hasattr(resp, "pdwDisposition"):
        disposition = int(resp.pdwDisposition)
        return outcomes.ACCEPT if disposition == Disposition.ISSUED else outcomes.disposition(disposition)
    return outcomes.ACCEPT


def of_activation(outcome: Outcome, activation) -> str:
    """RemoteCreateInstance's answer: its PDU outcome when nothing was decoded, the
    activation's HRESULT, the first interface's failing HRESULT, or ``accept``."""
    if activation is None:
        return of_reply(outcome)
    if activation.status != 0:
        return outcomes.hresult(activation.status)
    failed = [i.hresult for i in activation.interfaces if i.hresult != 0]
    return outcomes.hresult(failed[0]) if failed else outcomes.ACCEPT
