"""The reference CA's answers to the situations of the ledger (``conformance/model/ledger.toml``).

Where a layer of the CA refuses something the ledger has a situation for, it names the
situation and takes the answer from here: the fault status, bind_nak reason and whether
the connection drops are written once, in the ledger's ``reference`` and
``reference_connection``, never restated in code.  Anything the ledger does not cover
keeps its answer where it is decided.

Each layer can only send some kinds of answer (the RPC runtime a fault, a bind_nak or a
drop; an ORPC a fault): :func:`answer` refuses a ledger entry whose reference answer the
calling layer cannot send, so an edit of the ledger that the CA cannot follow fails
loudly (at construction, through :func:`check`) instead of being silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable

from conformance.model import ledger

__all__ = ["SITUATIONS", "KEEPS_CONNECTION", "LedgerAnswerError", "answer", "fault_status", "check"]


class LedgerAnswerError(LookupError):
    """The ledger's reference answer to a situation is one the refusing layer cannot send."""


#: Every situation the reference CA answers from the ledger -> the kinds of answer the
#: code that answers it can send.  tests/unit/refca/test_ledger_answers.py holds the code
#: to this table: each situation named in refca is listed here, and each listed one named.
SITUATIONS: dict[str, frozenset[str]] = {
    # binds and alter_context (association._on_bind / _bind_auth)
    "rpc/bind/level-call": frozenset({"bind_nak"}),
    "rpc/bind/auth-none/valid-level": frozenset({"bind_nak"}),
    "rpc/bind/auth-none/invalid-level": frozenset({"bind_nak"}),
    "rpc/bind/unknown-assoc-group": frozenset({"bind_nak"}),
    "rpc/alter/change-level": frozenset({"fault"}),
    "rpc/alter/change-auth-type": frozenset({"fault"}),
    "rpc/alter/change-transfer-syntax": frozenset({"fault"}),
    # requests (association._on_request / _call_auth / receive)
    "rpc/request/before-bind": frozenset({"fault", "bind_nak", "drop"}),
    "rpc/request/bad-signature": frozenset({"fault"}),
    "rpc/request/replay": frozenset({"fault"}),
    "rpc/request/pad-overflow": frozenset({"fault"}),
    "rpc/request/trailer-level-changed": frozenset({"fault"}),
    "rpc/request/trailer-auth-type-changed": frozenset({"fault"}),
    "rpc/request/trailer-unknown-context": frozenset({"fault"}),
    "rpc/request/unknown-context": frozenset({"fault"}),
    "rpc/request/opnum-out-of-range": frozenset({"fault"}),
    "rpc/fragments/without-first": frozenset({"fault"}),
    "rpc/fragments/new-call-inside": frozenset({"fault"}),
    "rpc/auth3/spnego-leg": frozenset({"fault"}),
    # DCOM (scm, exporter): a Fault from the dispatcher; the connection stays
    "dcom/activation/below-integrity": frozenset({"fault"}),
    "dcom/orpc/unknown-ipid": frozenset({"fault"}),
    "dcom/orpc/orpcthis-flags": frozenset({"fault"}),
    "dcom/orpc/com-version-unsupported": frozenset({"fault"}),
}

#: Situations answered by a dispatcher's Fault: the association sends it and keeps the
#: connection, so a ledger entry asking the CA to drop it cannot be followed.
KEEPS_CONNECTION = frozenset({"rpc/request/opnum-out-of-range", "dcom/activation/below-integrity",
                               "dcom/orpc/unknown-ipid", "dcom/orpc/orpcthis-flags",
                               "dcom/orpc/com-version-unsupported"})


def answer(situation: str) -> ledger.Answer:
    """The reference answer to ``situation``, checked against what its layer can send.

    Raises KeyError for a situation the CA does not list (or the ledger lacks) and
    :class:`LedgerAnswerError` for an answer the layer cannot give.
    """
    kinds = SITUATIONS[situation]
    found = ledger.reference_answer(situation)
    if found.kind not in kinds:
        raise LedgerAnswerError(f"ledger {situation}: the reference CA can answer it with "
                                f"{' or '.join(sorted(kinds))}, not {found.kind}")
    if found.kind in ("fault", "bind_nak") and found.code is None:
        raise LedgerAnswerError(f"ledger {situation}: {found.kind} without a code")
    if situation in KEEPS_CONNECTION and found.drops is True:
        raise LedgerAnswerError(f"ledger {situation}: answered by the interface, which keeps "
                                f"the connection; the ledger wants it dropped")
    return found


def fault_status(situation: str) -> int:
    """The fault status the ledger gives ``situation`` (a dispatcher's Fault)."""
    status = answer(situation).code
    assert status is not None  # answer() checked it
    return status


def check(situations: Iterable[str] = SITUATIONS) -> None:
    """Resolve every situation the CA answers from the ledger; raise on the first that
    the ledger lacks or answers in a way the CA cannot follow."""
    for situation in situations:
        answer(situation)
