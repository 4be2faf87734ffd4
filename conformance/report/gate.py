"""The release gate: a policy applied to results.json.  Its findings decide the exit code
of ``run``, ``gate`` and ``probe-client``: the codes and their precedence are
:mod:`conformance.model.exitcodes`.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

from conformance.model.exitcodes import PRECEDENCE, Exit
from conformance.model.tomlfile import read_toml
from conformance.model.verdicts import DEVIATION
from conformance.report.summary import counts, must_coverage, shown

__all__ = ["Policy", "PolicyError", "load_policy", "evaluate", "Finding"]


class PolicyError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """What a release may carry.  Defaults: the main job's (no MUST failure, SHOULD
    warnings allowed, no coverage minimum, every case must have reached the target)."""

    max_must_failures: int = 0
    max_should_warnings: int | None = None  # None: any number
    min_must_coverage: float = 0.0  # fraction of the applicable MUST requirements with a case that ran
    allow_inconclusive: bool = False
    allow_errors: bool = False
    deviations_count: bool = False  # True: a FAIL under a live deviation still counts as a failure


_KEYS = {f.name for f in dataclasses.fields(Policy)}


def load_policy(path: pathlib.Path) -> Policy:
    data = read_toml(path, "policy", PolicyError)
    unknown = set(data) - {"gate"}
    if unknown:
        raise PolicyError(f"policy {path}: unknown section(s) {', '.join(sorted(unknown))} (use [gate])")
    gate = data.get("gate", {})
    extra = set(gate) - _KEYS
    if extra:
        raise PolicyError(f"policy {path}: unknown key(s) in [gate]: {', '.join(sorted(extra))}")
    for key in ("max_must_failures", "max_should_warnings"):
        if key in gate and (not isinstance(gate[key], int) or isinstance(gate[key], bool) or gate[key] < 0):
            raise PolicyError(f"policy {path}: {key} must be a whole number >= 0")
    coverage = gate.get("min_must_coverage", 0.0)
    if not isinstance(coverage, (int, float)) or isinstance(coverage, bool) or not 0 <= coverage <= 1:
        raise PolicyError(f"policy {path}: min_must_coverage must be a fraction from 0 to 1")
    for key in ("allow_inconclusive", "allow_errors", "deviations_count"):
        if key in gate and not isinstance(gate[key], bool):
            raise PolicyError(f"policy {path}: {key} must be true or false")
    return Policy(**{**gate, "min_must_coverage": float(coverage)})


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    kind: Exit  # the exit code this finding calls for
    text: str


def evaluate(document: Mapping[str, Any], policy: Policy) -> tuple[int, list[Finding]]:
    tally = counts(document)
    def counted(c) -> bool:  # a FAIL under a live deviation counts only if the policy says so
        return policy.deviations_count or shown(c) != DEVIATION

    must_failures = sum(1 for c in document["cases"] if c["verdict"] == "FAIL" and c["level"] == "MUST"
                        and counted(c))
    should_failures = sum(1 for c in document["cases"] if c["verdict"] in ("WARN", "FAIL") and c["level"] != "MUST"
                          and counted(c))
    ran = sum(tally.get(v, 0) for v in ("PASS", "FAIL", "WARN", "INFO", DEVIATION))
    covered, applicable, uncovered = must_coverage(document)
    findings: list[Finding] = []
    if must_failures > policy.max_must_failures:
        findings.append(Finding(Exit.MUST, f"{must_failures} MUST case(s) FAIL (policy allows "
                                        f"{policy.max_must_failures})"))
    if policy.max_should_warnings is not None and should_failures > policy.max_should_warnings:
        findings.append(Finding(Exit.SHOULD, f"{should_failures} SHOULD case(s) WARN (policy allows "
                                          f"{policy.max_should_warnings})"))
    if tally.get("ERROR") and not policy.allow_errors:
        findings.append(Finding(Exit.SUITE, f"{tally['ERROR']} case(s) ERROR: the suite could not run them"))
    if tally.get("INCONCLUSIVE") and not policy.allow_inconclusive:
        findings.append(Finding(Exit.CONNECTION, f"{tally['INCONCLUSIVE']} case(s) INCONCLUSIVE: the target "
                                              f"could not be reached"))
    if not ran:
        findings.append(Finding(Exit.PARTIAL, "no case ran"))
    elif applicable and covered / applicable < policy.min_must_coverage:
        findings.append(Finding(Exit.PARTIAL, f"MUST coverage {covered}/{applicable} = {covered / applicable:.0%} "
                                           f"below {policy.min_must_coverage:.0%} (uncovered: "
                                           f"{', '.join(uncovered[:8])}{' …' if len(uncovered) > 8 else ''})"))
    # An expected MUST case is N/A only when the target never did what it must (probe-client's
    # "always" cases): the run has no verdict, whatever the coverage minimum.
    expected = set(document["run"].get("expected_must_cases", ()))
    unexercised = [c["id"] for c in document["cases"] if c["id"] in expected and c["verdict"] == "N/A"]
    if unexercised:
        findings.append(Finding(Exit.PARTIAL, f"{len(unexercised)} MUST case(s) never exercised: "
                                           f"{', '.join(unexercised[:8])}{' …' if len(unexercised) > 8 else ''}"))
    if not findings:
        return Exit.OK, []
    kinds = {f.kind for f in findings}
    return next(k for k in PRECEDENCE if k in kinds), findings
