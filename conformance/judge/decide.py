"""A server case's verdict from what was observed (sans-IO): the outcome against the
case's expected alternatives, "the connection must drop (or stay)", and the wire checks.

The verdict is the worst of them, N/A and INFO checks aside: a broken MUST is FAIL, a
broken SHOULD WARN, another outcome under a MAY INFO (the case's level is its strongest
requirement's); a check that could not decide makes the case INCONCLUSIVE, and says why.
An accepted outcome that is not Windows' answer in the case's ledger situation (one the
case accepts only because the ledger lists it as ``broader``) makes a passing case INFO.

The root cause, once: when a protected response of the case does not verify (the check
:data:`ROOT_CAUSE`, RPCE-PROT-02, FAILs), what the client made of the replies — the
observed outcome and whether the connection dropped — rests on PDUs that cannot be
trusted.  They are not judged: a mismatch is INCONCLUSIVE with that reason, and
``outcome_matched`` / ``connection_matched`` are None, so the case fails RPCE-PROT-02 and
no requirement it cites — unless a response came where the case expects only refusals a
header carries (a fault, a nak, a drop): that the server served the call is read from the
clear header and is judged.  The other checks stay judged: the transcript reads a protected
stub only once it verified, so what they find is on the clear wire (a header-signing
echo, plaintext in a sealed body) and may itself be why the responses do not verify.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from conformance.model import outcomes
from conformance.model.cases import Case
from conformance.model.results import CheckResult
from conformance.model.verdicts import Level, Verdict, worst

__all__ = ["Decision", "decide", "root_cause", "EXPLAINED", "ROOT_CAUSE"]

#: Check verdicts whose ``actual`` goes into the case's reason.
EXPLAINED = frozenset({Verdict.FAIL, Verdict.WARN, Verdict.ERROR, Verdict.INCONCLUSIVE})

#: The check whose FAIL makes the client's observation of the replies untrustworthy.
ROOT_CAUSE = "response-protection"

#: Outcomes a response PDU carries in its stub (untrustworthy when it does not verify); the
#: others (faults, naks, rejects, a drop) are read from clear headers.
_IN_THE_STUB = ("accept", "hresult ", "disposition ")


def _served_instead_of_refused(case: Case, observed: str) -> bool:
    """A response came (its protection broken) where the case expects only refusals a header
    carries: the server served the call, whatever its stub says, and that can be trusted."""
    served = observed.removeprefix("activation ") == outcomes.UNVERIFIABLE
    return served and not any(e.removeprefix("activation ").startswith(_IN_THE_STUB) for e in case.expect)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    verdict: Verdict
    reason: str
    outcome_matched: bool | None  # None: not judged (the responses it rests on do not verify)
    connection_matched: bool | None  # None: the case does not say, it was not observed, or not judged


def root_cause(checks: Sequence[CheckResult]) -> CheckResult | None:
    """The failing :data:`ROOT_CAUSE` check among ``checks``, if any."""
    return next((c for c in checks if c.check == ROOT_CAUSE and c.verdict is Verdict.FAIL), None)


def decide(case: Case, level: Level, observed: str, connection_dropped: bool | None,
           checks: Sequence[CheckResult]) -> Decision:
    root = root_cause(checks)
    if root is not None and _served_instead_of_refused(case, observed):
        root = None  # the outcome stands and is judged; the failing check is named with the others
    reasons, verdicts, untrusted = [], [], []
    matched = observed in case.expect
    connection_matched = None
    if case.connection_drops is not None and connection_dropped is not None:
        connection_matched = connection_dropped == case.connection_drops
    if root is not None:
        reasons.append(f"{root.check} ({root.requirement}): {root.actual}")
        if not matched:
            untrusted.append(f"the outcome {observed!r} (expected one of {list(case.expect)})")
        if connection_matched is False:
            untrusted.append("the connection " + ("staying open" if case.connection_drops else "dropping"))
        if untrusted:
            verdicts.append(Verdict.INCONCLUSIVE)
            reasons.append(f"not judged, the responses they rest on do not verify: {', '.join(untrusted)}")
    else:
        verdicts.append(Verdict.PASS if matched else level.violation)  # FAIL, WARN, or INFO under a MAY
        if not matched:
            reasons.append(f"observed {observed!r}, expected one of {list(case.expect)}")
        if connection_matched is False:
            verdicts.append(level.violation)
            reasons.append("the connection " + ("stayed open" if case.connection_drops else "was dropped"))
    for result in checks:
        if result.verdict not in (Verdict.NA, Verdict.INFO):  # recorded, not judged
            verdicts.append(result.verdict)
        if result.verdict in EXPLAINED and result is not root:
            reasons.append(f"{result.check} ({result.requirement}): {result.actual}")
    verdict = worst(verdicts)
    if root is None and verdict is Verdict.PASS and not matched:
        verdict = Verdict.INFO  # a MAY's other outcome is worth telling, not a pass
    situation = case.situation
    if root is None and matched and situation is not None and not situation.is_windows(observed):
        # accepted, but not what Windows answers here: the target is told so
        reasons.append(f"Windows answers {' or '.join(situation.windows)} here ({situation.id}, "
                       f"{situation.confidence.value}); {observed!r} is accepted: {situation.broader_why}")
        if verdict is Verdict.PASS:
            verdict = Verdict.INFO
    if root is not None:
        return Decision(verdict=verdict, reason="; ".join(reasons), outcome_matched=None,
                        connection_matched=None)
    return Decision(verdict=verdict, reason="; ".join(reasons), outcome_matched=matched,
                    connection_matched=connection_matched)
