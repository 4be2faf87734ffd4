"""A server case's verdict from what was observed (sans-IO): the outcome against the
case's expected alternatives, "the connection must drop (or stay)", and the wire checks.

The verdict is the worst of them, N/A and INFO checks aside: a broken MUST is FAIL, a
broken SHOULD WARN (the case's level is its strongest requirement's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from conformance.model.cases import Case
from conformance.model.results import CheckResult
from conformance.model.verdicts import Level, Verdict, worst

__all__ = ["Decision", "decide"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    verdict: Verdict
    reason: str
    outcome_matched: bool
    connection_matched: bool | None  # None: the case does not say, or it was not observed


def decide(case: Case, level: Level, observed: str, connection_dropped: bool | None,
           checks: Sequence[CheckResult]) -> Decision:
    reasons, verdicts = [], []
    matched = observed in case.expect
    if matched:
        verdicts.append(Verdict.PASS)
    else:
        verdicts.append(level.violation)
        reasons.append(f"observed {observed!r}, expected one of {list(case.expect)}")
    connection_matched = None
    if case.connection_drops is not None and connection_dropped is not None:
        connection_matched = connection_dropped == case.connection_drops
    if connection_matched is False:
        verdicts.append(level.violation)
        reasons.append("the connection " + ("stayed open" if case.connection_drops else "was dropped"))
    for result in checks:
        verdicts.append(result.verdict)
        if result.verdict in (Verdict.FAIL, Verdict.WARN, Verdict.ERROR):
            reasons.append(f"{result.check} ({result.requirement}): {result.actual}")
    return Decision(verdict=worst(v for v in verdicts if v not in (Verdict.NA, Verdict.INFO)),
                    reason="; ".join(reasons), outcome_matched=matched, connection_matched=connection_matched)
