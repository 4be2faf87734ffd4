"""The kill matrix's bookkeeping (no CA): which requirement a failure is attributed to,
the attribution figure of a row, and how the matrix shows it."""

from __future__ import annotations

import dataclasses

import pytest

from conformance.judge.decide import decide
from conformance.model.cases import parse_cases
from conformance.model.catalogue import load_catalogue
from conformance.model.results import CaseResult, CheckResult
from conformance.model.verdicts import Level, Verdict
from conformance.mutation import killmatrix
from conformance.mutation.killmatrix import Row, attributed, blamed, format_matrix

CATALOGUE = load_catalogue()

TABLE = """
[[case]]
id = "t/privacy"
requirements = ["WCCE-T-08", "RPCE-PROT-01"]
kind = "call"
method = "Ping"
expect = "accept"
checks = ["stub-confidentiality", "response-protection"]

[[case]]
id = "t/pfc"
requirements = ["RPCE-PFC-01"]
kind = "raw"
action = "pfc-maybe"
expect = "accept"
connection_drops = false
checks = ["response-protection"]
"""


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    path = tmp_path_factory.mktemp("cases") / "km.toml"
    path.write_text(TABLE, "utf-8")
    return {c.id: c for c in parse_cases([path], CATALOGUE)}


def check(name: str, verdict: Verdict) -> CheckResult:
    requirement = next(r.id for r in CATALOGUE.values() if name in r.checks)
    return CheckResult(check=name, requirement=requirement, verdict=verdict, expected=("x",), actual="seen")


def judged(case, observed: str, dropped: bool | None, checks: list[CheckResult]) -> CaseResult:
    """A case result as the engine makes it (verdict and matches from decide)."""
    decision = decide(case, Level.MUST, observed, dropped, checks)
    return CaseResult(case_id=case.id, title=case.id, requirements=case.requirements, verdict=decision.verdict,
                      expected=case.expect, actual=observed, outcome_matched=decision.outcome_matched,
                      connection_matched=decision.connection_matched, checks=tuple(checks),
                      reason=decision.reason)


def test_a_failure_is_blamed_on_what_the_case_cites_and_on_failing_checks(cases):
    result = judged(cases["t/privacy"], "fault 0x00000005", None,
                    [check("stub-confidentiality", Verdict.FAIL), check("response-protection", Verdict.PASS)])
    assert blamed(result, cases["t/privacy"]) == {"WCCE-T-08", "RPCE-PROT-01"}
    assert attributed(result, cases["t/privacy"], "WCCE-T-08")
    assert not attributed(result, cases["t/privacy"], "RPCE-PROT-02")


@pytest.mark.parametrize(("case_id", "observed", "dropped"), [
    ("t/privacy", "unverifiable response", None),  # the client verified: the outcome says so
    ("t/pfc", "accept", True),  # a raw read does not verify; the connection rule is not judged either
])
def test_unverifiable_responses_are_blamed_on_rpce_prot_02_alone(cases, case_id, observed, dropped):
    case = cases[case_id]
    result = judged(case, observed, dropped, [check("response-protection", Verdict.FAIL)])
    assert result.verdict is Verdict.FAIL
    assert blamed(result, case) == {"RPCE-PROT-02"}


def row(**fields) -> Row:
    base = dict(mutant="m", requirement="RPCE-PROT-02", kind="server", killed=True, killers=("a",),
                collateral=(), seconds=1.0)
    return Row(**{**base, **fields})


def test_attribution_counts_the_failures_that_name_the_requirement_and_those_that_name_it_alone():
    fields = killmatrix._attribution([{"RPCE-PROT-02"}, {"RPCE-PROT-02", "WCCE-T-14"}, {"WCCE-T-08"},
                                      {"RPCE-PROT-02"}], "RPCE-PROT-02")
    assert fields == dict(failing=4, attributed=3, alone=2, attribution=0.75)
    assert killmatrix._attribution([], "RPCE-PROT-02") == dict(failing=0, attributed=0, alone=0,
                                                              attribution=None)


def test_the_matrix_shows_attribution_per_mutant_and_in_total():
    rows = [row(mutant="stuck-response-sequence", failing=26, attributed=26, alone=26, attribution=1.0),
            row(mutant="plaintext-at-privacy", requirement="RPCE-PROT-01", failing=10, attributed=4, alone=1,
                attribution=0.4, collateral=("x", "y", "z", "w")),
            row(mutant="quiet", killed=False, killers=())]
    text = format_matrix(rows, [])
    lines = text.splitlines()
    assert "attribution" in lines[0]
    assert lines[1].split()[:5] == ["stuck-response-sequence", "server", "RPCE-PROT-02", "yes", "26/26"]
    assert "4/10 (1 alone)" in lines[2] and "COLLATERAL: x, y, z (+1)" in lines[2]
    assert lines[3].split()[3:5] == ["NO", "-"]
    assert lines[-1] == ("2/3 mutants killed; 1 with collateral failures; 0 ERROR verdicts; 30/36 failures (83%) "
                         "name the mutant's requirement; baseline failures: 0")


def test_a_mutant_that_must_survive_is_ok_only_when_nothing_fails():
    spared = row(mutant="windows-may-do-this", killed=False, killers=(), survives=True)
    assert spared.ok and not row(killed=False, killers=()).ok
    assert not row(survives=True).ok  # killed: the suite fails what Windows may do
    assert not row(killed=False, killers=(), survives=True, collateral=("x",)).ok
    text = format_matrix([row(), spared], [])
    assert "(must survive" in text.splitlines()[2] and text.splitlines()[2].split()[3] == "no"
    assert text.splitlines()[-1].startswith("1/1 mutants killed (1/1 that must survive did);")


def test_an_error_verdict_under_a_mutant_fails_its_row_even_when_killed():
    """ERROR means the suite broke: a mutant that makes it break is a defect of the suite."""
    erring = row(errors=3)
    assert erring.killed and not erring.ok and row().ok
    text = format_matrix([erring], [])
    assert "ERROR: 3 verdict(s)" in text.splitlines()[1] and "; 3 ERROR verdicts;" in text


def test_rows_serialise_with_their_attribution():
    fields = dataclasses.asdict(row(failing=2, attributed=1, alone=1, attribution=0.5))
    assert {k: fields[k] for k in ("failing", "attributed", "alone", "attribution")} == dict(
        failing=2, attributed=1, alone=1, attribution=0.5)


def _everything():
    from conformance.judge.tables import load_cases
    from conformance.model.cases import case_files

    return load_cases(case_files(), CATALOGUE)


def test_a_focused_mutant_runs_each_entrys_every_axis_value_and_a_fixed_sample():
    everything = _everything()
    chosen = killmatrix.focus(everything, CATALOGUE, "WCCE-T-08")
    citing = [c for c in everything if "WCCE-T-08" in c.requirements]
    taken = [c for c in citing if c.id in set(chosen)]
    assert 0 < len(taken) < len(citing) / 5  # a covering subset, not every citing case
    for axis in ("provider", "level", "impersonation"):  # each entry's every value of each axis ran
        assert {(c.source, c.line, c.variant[axis]) for c in taken} == \
            {(c.source, c.line, c.variant[axis]) for c in citing}
    assert {(c.source, c.line, c.method) for c in taken} == {(c.source, c.line, c.method) for c in citing}
    checks = set(CATALOGUE["WCCE-T-08"].checks)
    covering = killmatrix.cover(citing, per_entry=True) + killmatrix.cover(
        [c for c in everything if c not in citing and checks & set(c.checks)], per_entry=False)
    others = sorted(c.id for c in everything if c.id not in set(covering))
    assert chosen == covering + others[::killmatrix.SAMPLE_EVERY]  # the same sample every run
    assert chosen == killmatrix.focus(list(reversed(everything)), CATALOGUE, "WCCE-T-08")


def test_a_mutant_that_must_survive_runs_every_case_that_can_see_it():
    everything = _everything()
    checks = set(CATALOGUE["WCCE-T-08"].checks)
    seeing = {c.id for c in everything if "WCCE-T-08" in c.requirements or checks & set(c.checks)}
    chosen = killmatrix.focus(everything, CATALOGUE, "WCCE-T-08", every_seeing=True)
    assert seeing <= set(chosen) and len(chosen) < len(everything)


def test_the_cases_that_only_run_a_requirements_checks_cover_the_axes_across_entries():
    everything = _everything()
    checks = set(CATALOGUE["RPCE-PROT-02"].checks)
    checking = [c for c in everything if "RPCE-PROT-02" not in c.requirements and checks & set(c.checks)]
    taken = set(killmatrix.cover(checking, per_entry=False))
    assert len(taken) < 30 < len(checking)
    for axis in ("provider", "level", "impersonation"):
        assert {c.variant[axis] for c in checking if c.id in taken} == {c.variant[axis] for c in checking}
