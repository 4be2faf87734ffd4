"""How the association refuses a request, a bind or an alter_context, as values.

A refusal the ledger has a situation for is built with ``.of(situation, why)``: its
status or reason and whether the connection drops are the ledger's reference answer
(:mod:`conformance.refca.answers`).  A refusal the ledger does not cover is built with
its status in the code that decides it.
"""

from __future__ import annotations

import dataclasses

from conformance.refca import answers
from conformance.wire.rpc import BindNakReason, FaultStatus

__all__ = ["CallRefused", "BindRefusal", "ALTER_FAULT"]


class CallRefused(Exception):
    """A request refused before dispatch; ``drop`` closes the connection after the fault
    (Samba's ``dcesrv_fault_disconnect``, which its tests hold Windows to)."""

    def __init__(self, status: int, why: str, *, drop: bool = False,
                 situation: str | None = None) -> None:
        super().__init__(why)
        self.status = status
        self.why = why
        self.drop = drop
        self.situation = situation

    @classmethod
    def of(cls, situation: str, why: str) -> "CallRefused":
        """The ledger's answer to ``situation``: its fault status, and the connection
        closed unless the ledger keeps it (an "unknown" connection rule drops it)."""
        answer = answers.answer(situation)
        return cls(answer.code, why, drop=answer.drops is not False, situation=situation)


#: An alter_context cannot be answered with bind_nak: where the ledger's answer to a bind
#: situation is a bind_nak, the alter_context gets this fault (and is dropped).  Windows
#: answers a security context an alter_context cannot open with access_denied where a
#: bind gets a bind_nak (Samba's raw-protocol tests: an NTLM token over 2888 bytes is
#: bind_nak 9 on a bind, 0x5 on an alter_context; auth_type NONE on an alter_context, 0x5).
ALTER_FAULT = FaultStatus.ACCESS_DENIED


@dataclasses.dataclass(frozen=True, slots=True)
class BindRefusal:
    """How a bind (bind_nak ``nak_reason``) or an alter_context (fault ``fault_status``)
    is refused, and whether the connection is then closed."""

    nak_reason: int
    fault_status: int
    why: str
    drop: bool = True
    situation: str | None = None

    @classmethod
    def of(cls, situation: str, why: str) -> "BindRefusal":
        """The ledger's answer to ``situation``: a bind situation's bind_nak (an
        alter_context gets :data:`ALTER_FAULT`), an alter_context situation's fault."""
        answer = answers.answer(situation)
        if answer.kind == "bind_nak":
            nak, fault = answer.code, ALTER_FAULT
        else:  # a fault: the situation is an alter_context's, which a bind never meets
            nak, fault = BindNakReason.NOT_SPECIFIED, answer.code
        return cls(nak, fault, why, drop=answer.drops is not False, situation=situation)
