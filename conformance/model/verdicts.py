"""The suite's shared vocabulary: verdicts, requirement levels, whose PDUs a check judges.

Everything here is plain data (no scapy, no I/O), so the catalogue, the case tables,
the results and the report can use it without loading the protocol stack.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["Verdict", "VERDICT_ORDER", "worst", "Level", "strongest", "Direction", "Side", "DEVIATION",
           "shown_verdict"]


class Verdict(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"  # a MUST broken by the target
    WARN = "WARN"  # a SHOULD broken by the target
    INFO = "INFO"  # observed, MAY
    NA = "N/A"  # the target does not claim it, or the subject never appeared
    INCONCLUSIVE = "INCONCLUSIVE"  # the target or environment did not let the suite judge
    ERROR = "ERROR"  # the suite itself failed


#: Worst first: the verdict of several results is the first of these present.
VERDICT_ORDER = (Verdict.ERROR, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.WARN, Verdict.PASS,
                 Verdict.INFO, Verdict.NA)


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of ``verdicts`` (PASS when there are none)."""
    present = set(verdicts)
    return next((v for v in VERDICT_ORDER if v in present), Verdict.PASS)


class Level(enum.Enum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"

    @property
    def violation(self) -> Verdict:
        """What breaking a requirement of this level is: FAIL, WARN or INFO."""
        return {Level.MUST: Verdict.FAIL, Level.SHOULD: Verdict.WARN}.get(self, Verdict.INFO)


def strongest(levels: Iterable[Level]) -> Level:
    """MUST over SHOULD over MAY (a case is as strong as the strongest requirement it cites)."""
    present = set(levels)
    return next((level for level in (Level.MUST, Level.SHOULD) if level in present), Level.MAY)


class Direction(enum.Enum):
    """Which way a PDU travelled."""

    TO_SERVER = "c2s"
    TO_CLIENT = "s2c"


class Side(enum.Enum):
    """Whose PDUs a check judges: the client's, the server's, or both."""

    CLIENT = "client"
    SERVER = "server"
    BOTH = "both"

    def covers(self, direction: Direction) -> bool:
        return (self is Side.BOTH or (self is Side.CLIENT and direction is Direction.TO_SERVER)
                or (self is Side.SERVER and direction is Direction.TO_CLIENT))


#: How a FAIL covered by a live deviation is shown (summary, HTML, JUnit, gate).
DEVIATION = "DEVIATION"


def shown_verdict(verdict: str, deviation: dict | None) -> str:
    """A results.json verdict as the report shows it: a FAIL under an applied deviation is
    DEVIATION; every other verdict is itself."""
    if verdict == Verdict.FAIL.value and deviation and deviation.get("applied"):
        return DEVIATION
    return verdict
