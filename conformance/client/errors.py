"""What the target did that the driven client cannot go on from: one family of errors.

The client reads bytes the target chose.  Wherever they are parsed (a PDU that does not
dissect as its type, an activation reply or a response stub whose NDR does not decode, a
security token that does not parse, string bindings that name nothing the client can
use), the problem is raised as a :class:`TargetFault` carrying what was wrong, never as
whatever exception the parser happened to hit.  The judge converts it at one boundary
(``conformance.judge.engine.Engine.run``, style rule 11): a target fault is an observed
outcome, judged FAIL against the case's expectation (or, for the exporter's bindings,
against WCCE-T-01), never an ERROR, which is kept for defects of the suite's own code.

Sans-IO: values and exception types only.
"""

from __future__ import annotations

import dataclasses
import struct

from scapy.error import Scapy_Exception

__all__ = ["TargetFault", "MalformedReply", "NoUsableBinding", "BindingProblem", "PARSE_ERRORS",
           "malformed"]

#: What a parser (scapy's dissectors, ours in ``wire``) raises on bytes it cannot read.
#: Only these become a :class:`MalformedReply`; anything else a parser raises stays a
#: defect of the suite.
PARSE_ERRORS = (ValueError, TypeError, AttributeError, LookupError, struct.error, OverflowError, Scapy_Exception,
                RecursionError, MemoryError)

#: The longest parser message quoted in an outcome (the bytes themselves are evidence).
_DETAIL = 160


class TargetFault(Exception):
    """The target sent or did something the exchange cannot continue from.

    ``observed`` is what the target did, written as an outcome ("malformed bind_ack");
    ``detail`` what was wrong with it.  ``str()`` is both.
    """

    def __init__(self, observed: str, detail: str = "", *, limit: int | None = _DETAIL) -> None:
        self.observed = observed
        self.detail = detail[:limit]
        super().__init__(f"{observed}: {self.detail}" if self.detail else observed)


class MalformedReply(TargetFault):
    """Bytes of the target's that do not parse as what they claim to be."""

    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(f"malformed {what}", detail)


def malformed(what: str, exc: BaseException) -> MalformedReply:
    """A parser's exception on the target's bytes, as the reply ``what`` being malformed."""
    return MalformedReply(what, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BindingProblem:
    """Why one string binding of the exporter could not be used.

    ``conclusive``: the binding itself says nothing usable (not ncacn_ip_tcp, no endpoint,
    a name that does not resolve, an unspecified address); otherwise the client chose not
    to, or could not, reach what it names (outside the addresses the suite may contact, a
    refused or timed-out connection), which says nothing certain about the target.
    """

    binding: str
    why: str
    conclusive: bool

    def __str__(self) -> str:
        return f"{self.binding!r}: {self.why}"


class NoUsableBinding(TargetFault):
    """None of the exporter's string bindings could be used ([MS-DCOM] 2.2.19.3, 3.2.4.1.1.2:
    a client tries the ncacn_ip_tcp bindings in order).  ``bindings`` quotes every string
    binding as the target sent it; ``problems`` says why each was passed over."""

    OBSERVED = "no usable string binding"

    def __init__(self, bindings: tuple[str, ...], problems: tuple[BindingProblem, ...]) -> None:
        self.bindings = tuple(bindings)
        self.problems = tuple(problems)
        quoted = "; ".join(str(p) for p in problems) or "the DUALSTRINGARRAY holds no string binding"
        super().__init__(self.OBSERVED, quoted, limit=None)  # every binding, unabridged: the evidence

    @property
    def conclusive(self) -> bool:
        """The bindings themselves are unusable (FAIL), not merely unreached (INCONCLUSIVE)."""
        return all(p.conclusive for p in self.problems)
