"""A server case's verdict from what was observed (sans-IO): the outcome against the
case's expected alternatives, "the connection must drop (or stay)", and the wire checks.

The verdict is the worst of them, N/A and INFO checks aside: a broken MUST is FAIL, a
broken SHOULD WARN, another outcome under a MAY INFO (the case's level is its strongest
requirement's); a check that could not decide makes the case INCONCLUSIVE, and says why.
An accepted outcome that is not Windows' answer in the case's ledger situation (one the
case accepts only because the ledger lists it as ``broader``) makes a passing case INFO.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from conformance.model.cases import Case
from conformance.model.results import CheckResult
from conformance.model.verdicts import Level, Verdict, worst

__all__ = ["Decision", "decide", "EXPLAINED"]

#: Check verdicts whose ``actual`` goes into the case's reason.
EXPLAINED = frozenset({Verdict.FAIL, Verdict.WARN, Verdict.ERROR, Verdict.INCONCLUSIVE})


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
    outcome = Verdict.PASS if matched else level.violation  # FAIL, WARN, or INFO under a MAY
    verdicts.append(outcome)
    if not matched:
        reasons.append(f"observed {observed!r}, expected one of {list(case.expect)}")
    connection_matched = None
    if case.connection_drops is not None and connection_dropped is not None:
        connection_matched = connection_dropped == case.connection_drops
    if connection_matched is False:
        verdicts.append(level.violation)
        reasons.append("the connection " + ("stayed open" if case.connection_drops else "was dropped"))
    for result in checks:
        if result.verdict not in (Verdict.NA, Verdict.INFO):  # recorded, not judged
            verdicts.append(result.verdict)
        if result.verdict in EXPLAINED:
            reasons.append(f"{result.check} ({result.requirement}): {result.actual}")
    verdict = worst(verdicts)
    if verdict is Verdict.PASS and outcome is Verdict.INFO:
        verdict = Verdict.INFO  # a MAY's other outcome is worth telling, not a pass
    situation = case.situation
    if matched and situation is not None and not situation.is_windows(observed):
        # accepted, but not what Windows answers here: the target is told so
        reasons.append(f"Windows answers {' or '.join(situation.windows)} here ({situation.id}, "
                       f"{situation.confidence.value}); {observed!r} is accepted: {situation.broader_why}")
        if verdict is Verdict.PASS:
            verdict = Verdict.INFO
    return Decision(verdict=verdict, reason="; ".join(reasons), outcome_matched=matched,
                    connection_matched=connection_matched)
