"""What judging produces: a check's result and a case's result (frozen values).

The judge builds them, results.json records them, the report renders them; none of
those needs the protocol stack to read them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from conformance.model.verdicts import Level, Verdict

__all__ = ["CheckResult", "CaseResult"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """One wire check over a transcript: the requirement it verifies, the verdict, every
    acceptable alternative, what the wire showed and the PDUs (transcript indexes) that show it."""

    check: str
    requirement: str
    verdict: Verdict
    expected: tuple[str, ...]
    actual: str
    evidence: tuple[int, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict in (Verdict.PASS, Verdict.INFO)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    case_id: str
    title: str
    requirements: tuple[str, ...]
    verdict: Verdict
    expected: tuple[str, ...]
    actual: str
    outcome_matched: bool | None = None  # None: the case did not run
    connection_matched: bool | None = None  # None: the case does not say whether the connection drops
    checks: tuple[CheckResult, ...] = ()
    reason: str = ""
    level: Level = Level.MUST  # the strongest level of the cited requirements
    ladder: tuple[Mapping[str, object], ...] = ()  # the PDU ladder (conformance.judge.evidence)
    connections: tuple[Mapping[str, object], ...] = ()
    pcap: str | None = None
    settings: Mapping[str, object] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
