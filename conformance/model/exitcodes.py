"""The exit codes of every command (``run``, ``gate``, ``probe-client``, ``enroll``,
``mutants``, ``ca``) and of ``pytest cases``: "the target failed" is kept apart from
"the configuration, the tool or the connection failed" (testssl.sh style).

pytest owns 0-5 for its own sessions; the plugin adds only :attr:`Exit.CONNECTION`.
"""

from __future__ import annotations

import enum

__all__ = ["Exit", "PRECEDENCE"]


class Exit(enum.IntEnum):
    OK = 0  # the policy holds (enroll: a certificate was issued)
    MUST = 1  # the target failed: more MUST failures than allowed (enroll: not issued)
    USAGE = 2  # a bad argument, profile, policy, deviations file or case table (one line)
    SUITE = 3  # a case ERRORed (a defect of the suite) or the tool failed
    SHOULD = 4  # the target failed: more SHOULD warnings than allowed
    PARTIAL = 5  # nothing ran, an expected MUST case was never exercised, coverage too low
    CONNECTION = 6  # a case could not reach the target (INCONCLUSIVE)

    @property
    def meaning(self) -> str:
        return self.name.lower()


#: When several hold, the first of these is the exit code: a target failure that was
#: established is reported even if other cases could not run.
PRECEDENCE = (Exit.MUST, Exit.SHOULD, Exit.SUITE, Exit.CONNECTION, Exit.PARTIAL)
