"""Judging an enrollment client from what it sent (probe-client): every client case's
checks over one recorded transcript.  Sans-IO."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from conformance.judge import evidence
from conformance.judge.checks import CheckContext, run_check
from conformance.judge.decide import EXPLAINED
from conformance.model.cases import ClientCase
from conformance.model.catalogue import Requirement
from conformance.model.results import CaseResult
from conformance.model.verdicts import Side, Verdict, strongest, worst
from conformance.wire.transcript import Transcript

__all__ = ["judge_client"]


def judge_client(transcript: Transcript, cases: Sequence[ClientCase], catalogue: Mapping[str, Requirement], *,
                 ca_name: str, template: str, exporter_spn: str | None) -> list[tuple[ClientCase, CaseResult]]:
    """Every client case's result.  A case whose checks found nothing to judge is N/A,
    never PASS; one the client must exercise (``applies = "always"``) says so."""
    context = CheckContext(side=Side.CLIENT, exporter_spn=exporter_spn,  # IMPERSONATE, PKT_PRIVACY expected
                           plaintexts=(ca_name.encode("utf-16-le"),
                                       f"CertificateTemplate:{template}".encode("utf-16-le")))
    ladder, connections = tuple(evidence.ladder(transcript)), tuple(evidence.connections(transcript))
    judged = []
    for item in cases:
        case = item.case
        results = tuple(run_check(name, transcript, context) for name in case.checks)
        verdicts = [r.verdict for r in results]
        decisive = [v for v in verdicts if v not in (Verdict.NA, Verdict.INFO)]
        verdict = worst(decisive) if decisive else (Verdict.INFO if Verdict.INFO in verdicts else Verdict.NA)
        reasons = [f"{r.check} ({r.requirement}): {r.actual}" for r in results if r.verdict in EXPLAINED]
        if verdict is Verdict.NA and item.applies == "always":
            reasons.append("the client never did what this case is about: the run has no verdict")
        judged.append((item, CaseResult(
            case_id=case.id, title=case.title, requirements=case.requirements, verdict=verdict,
            expected=case.expect, actual="; ".join(r.actual for r in results), checks=results,
            reason="; ".join(reasons), level=strongest(catalogue[r].level for r in case.requirements),
            ladder=ladder, connections=connections)))
    return judged
