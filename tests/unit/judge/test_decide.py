"""A server case's verdict (conformance.judge.decide): the observed outcome against the
case's alternatives, "the connection must drop (or stay)", and the wire checks; MUST
breaks FAIL, SHOULD breaks WARN, and the reasons say exactly what broke."""

from __future__ import annotations

import pytest

from conformance.judge.checks import run_check
from conformance.judge.decide import decide
from conformance.model.cases import parse_cases
from conformance.model.catalogue import load_catalogue
from conformance.model.results import CheckResult
from conformance.model.verdicts import Level, Verdict, strongest
from tests.support.recorded import load, read

CATALOGUE = load_catalogue()

TABLE = """
[[case]]
id = "t/must"
requirements = ["WCCE-T-20"]
kind = "call"
method = "Request"
expect = { any = ["accept", "Disposition 0x80094800"] }

[[case]]
id = "t/should"
requirements = ["DCOM-IPID-01"]
kind = "call"
method = "Request"
expect = { deny = ["hresult 0x80070005", "fault 0x00000005"] }

[[case]]
id = "t/must-drop"
requirements = ["RPCE-FRAG-01"]
kind = "raw"
action = "fragments-middle-without-first"
expect = { any = ["fault 0x1c01000b", "drop"] }
connection_drops = true

[[case]]
id = "t/must-stay"
requirements = ["RPCE-PFC-01"]
kind = "raw"
action = "pfc-maybe"
expect = "accept"
connection_drops = false
"""


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    path = tmp_path_factory.mktemp("cases") / "decide.toml"
    path.write_text(TABLE, "utf-8")
    return {c.id: c for c in parse_cases([path], CATALOGUE)}


def level_of(case) -> Level:
    """As the engine computes it: the strongest level of the cited requirements."""
    return strongest(CATALOGUE[r].level for r in case.requirements)


def check(verdict: Verdict, name: str = "auth-level", actual: str = "what the wire showed") -> CheckResult:
    requirement = next(r.id for r in CATALOGUE.values() if name in r.checks)
    return CheckResult(check=name, requirement=requirement, verdict=verdict, expected=("x",), actual=actual)


def test_the_table_reads_as_intended(cases):
    assert cases["t/must"].expect == ("accept", "disposition 0x80094800")
    assert [level_of(cases[c]) for c in ("t/must", "t/should", "t/must-drop", "t/must-stay")] == [
        Level.MUST, Level.SHOULD, Level.MUST, Level.MUST]
    assert [cases[c].connection_drops for c in ("t/must", "t/must-drop", "t/must-stay")] == [None, True, False]


# (case, observed, connection dropped, check verdicts) -> (verdict, outcome matched, connection matched, reason)
OUTCOMES = [
    pytest.param("t/must", "accept", None, [], Verdict.PASS, True, None, "", id="matched"),
    pytest.param("t/must", "disposition 0x80094800", False, [], Verdict.PASS, True, None, "",
                 id="second-alternative-matched-connection-not-asked"),
    pytest.param("t/must", "fault 0x00000005", None, [], Verdict.FAIL, False, None,
                 "observed 'fault 0x00000005', expected one of ['accept', 'disposition 0x80094800']",
                 id="must-not-matched"),
    pytest.param("t/should", "accept", None, [], Verdict.WARN, False, None,
                 "observed 'accept', expected one of ['hresult 0x80070005', 'fault 0x00000005']",
                 id="should-not-matched"),
    pytest.param("t/must-drop", "drop", True, [], Verdict.PASS, True, True, "", id="dropped-as-required"),
    pytest.param("t/must-drop", "fault 0x1c01000b", True, [], Verdict.PASS, True, True, "",
                 id="fault-then-drop"),
    pytest.param("t/must-drop", "fault 0x1c01000b", False, [], Verdict.FAIL, True, False,
                 "the connection stayed open", id="stayed-open"),
    pytest.param("t/must-drop", "fault 0x1c01000b", None, [], Verdict.PASS, True, None, "",
                 id="drop-not-observed"),
    pytest.param("t/must-drop", "fault 0x00000005", False, [], Verdict.FAIL, False, False,
                 "observed 'fault 0x00000005', expected one of ['fault 0x1c01000b', 'drop']; "
                 "the connection stayed open", id="wrong-outcome-and-stayed-open"),
    pytest.param("t/must-stay", "accept", True, [], Verdict.FAIL, True, False, "the connection was dropped",
                 id="dropped-when-it-must-stay"),
    pytest.param("t/must-stay", "accept", False, [], Verdict.PASS, True, True, "", id="stayed-as-required"),
]


@pytest.mark.parametrize(("case_id", "observed", "dropped", "verdicts", "verdict", "matched", "connection",
                          "reason"), OUTCOMES)
def test_outcome_and_connection(cases, case_id, observed, dropped, verdicts, verdict, matched, connection,
                                reason):
    case = cases[case_id]
    decision = decide(case, level_of(case), observed, dropped, [check(v) for v in verdicts])
    assert (decision.verdict, decision.outcome_matched, decision.connection_matched, decision.reason) == (
        verdict, matched, connection, reason)


def test_connection_breaks_take_the_case_level(cases):
    """A dropped connection that must stay is as strong as the case: WARN under a SHOULD."""
    decision = decide(cases["t/must-stay"], Level.SHOULD, "accept", True, [])
    assert (decision.verdict, decision.reason) == (Verdict.WARN, "the connection was dropped")


CHECK_MIXES = [
    pytest.param([Verdict.PASS, Verdict.INFO, Verdict.NA], Verdict.PASS, [], id="pass-info-na"),
    pytest.param([Verdict.NA, Verdict.NA], Verdict.PASS, [], id="all-na"),
    pytest.param([Verdict.INFO], Verdict.PASS, [], id="info"),
    pytest.param([Verdict.PASS, Verdict.WARN], Verdict.WARN, [1], id="warn-in-a-must-case"),
    pytest.param([Verdict.WARN, Verdict.FAIL, Verdict.NA], Verdict.FAIL, [0, 1], id="warn-and-fail"),
    pytest.param([Verdict.FAIL, Verdict.ERROR], Verdict.ERROR, [0, 1], id="error-is-worst"),
    pytest.param([Verdict.INCONCLUSIVE, Verdict.WARN], Verdict.INCONCLUSIVE, [0, 1], id="inconclusive-over-warn"),
    pytest.param([Verdict.INCONCLUSIVE, Verdict.FAIL], Verdict.FAIL, [0, 1], id="fail-over-inconclusive"),
]


@pytest.mark.parametrize(("verdicts", "verdict", "cited"), CHECK_MIXES)
def test_check_verdicts_mix(cases, verdicts, verdict, cited):
    names = ["auth-level", "orpcthis", "request-returns-zero"]
    results = [check(v, names[i], actual=f"actual {i}") for i, v in enumerate(verdicts)]
    decision = decide(cases["t/must"], Level.MUST, "accept", None, results)
    assert decision.verdict is verdict
    assert decision.outcome_matched is True
    assert decision.reason == "; ".join(f"{results[i].check} ({results[i].requirement}): actual {i}"
                                        for i in cited)


def test_reasons_come_in_order_outcome_connection_checks(cases):
    results = [check(Verdict.WARN, "auth-level", "auth_level 5 seen"), check(Verdict.NA, "orpcthis"),
               check(Verdict.ERROR, "request-returns-zero", "check raised KeyError: 'x'")]
    decision = decide(cases["t/must-drop"], Level.MUST, "silent", False, results)
    assert decision.verdict is Verdict.ERROR
    assert decision.reason == (
        "observed 'silent', expected one of ['fault 0x1c01000b', 'drop']; the connection stayed open; "
        "auth-level (WCCE-T-07): auth_level 5 seen; request-returns-zero (WCCE-T-20): check raised KeyError: 'x'")


def test_on_recorded_checks(cases):
    """The level-5 recording judged as the case t/must would be: the Request's HRESULT is
    not an expected outcome, the SHOULD of the level warns, the MUST of returning zero fails."""
    rec = load("level-5")
    results = [run_check(name, read("level-5"), rec.context())
               for name in ("auth-level", "request-returns-zero", "privacy-requested")]
    assert [r.verdict for r in results] == [Verdict.WARN, Verdict.FAIL, Verdict.NA]
    decision = decide(cases["t/must"], Level.MUST, "hresult 0x80070005", None, results)
    assert (decision.verdict, decision.outcome_matched) == (Verdict.FAIL, False)
    assert decision.reason == (
        "observed 'hresult 0x80070005', expected one of ['accept', 'disposition 0x80094800']; "
        "auth-level (WCCE-T-07): auth_level 5 seen; request-returns-zero (WCCE-T-20): 0x80070005")
    conformant = [run_check(name, read("conformant"), load("conformant").context())
                  for name in ("auth-level", "request-returns-zero", "privacy-requested")]
    assert decide(cases["t/must"], Level.MUST, "accept", None, conformant).verdict is Verdict.PASS


def test_an_unexpected_outcome_under_may_is_info(cases):
    decision = decide(cases["t/must"], Level.MAY, "fault 0x00000005", None, [])
    assert decision.outcome_matched is False
    assert decision.verdict is Verdict.INFO


def test_an_inconclusive_check_says_why(cases):
    result = check(Verdict.INCONCLUSIVE, "orpcthis", "2 sealed PDUs could not be unsealed (no keys)")
    decision = decide(cases["t/must"], Level.MUST, "accept", None, [result])
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert decision.reason == "orpcthis (WCCE-T-16): 2 sealed PDUs could not be unsealed (no keys)"


# -- the root cause, once: responses that do not verify ------------------------------------------

UNVERIFIED = "1 of 2 responses to protected calls do not verify: #7 repeats sequence number 1"


def root(verdict: Verdict = Verdict.FAIL) -> CheckResult:
    return check(verdict, "response-protection", UNVERIFIED)


def test_responses_that_do_not_verify_fail_rpce_prot_02_and_the_outcome_is_not_judged(cases):
    decision = decide(cases["t/must"], Level.MUST, "unverifiable response", None, [root()])
    assert (decision.verdict, decision.outcome_matched, decision.connection_matched) == (Verdict.FAIL, None, None)
    assert decision.reason == (
        f"response-protection (RPCE-PROT-02): {UNVERIFIED}; not judged, the responses they rest on do not "
        "verify: the outcome 'unverifiable response' (expected one of ['accept', 'disposition 0x80094800'])")


def test_a_matching_outcome_is_not_judged_either_and_the_root_cause_is_named_once(cases):
    """A raw case reads its answer without verifying it: 'accept' matched, yet the response
    did not verify; the case fails RPCE-PROT-02 alone."""
    decision = decide(cases["t/must-stay"], Level.MUST, "accept", False, [root()])
    assert (decision.verdict, decision.outcome_matched, decision.connection_matched) == (Verdict.FAIL, None, None)
    assert decision.reason == f"response-protection (RPCE-PROT-02): {UNVERIFIED}"
    assert decision.reason.count("RPCE-PROT-02") == 1


def test_the_connection_rule_is_not_judged_while_the_responses_do_not_verify(cases):
    decision = decide(cases["t/must-stay"], Level.MUST, "unverifiable response", True, [root()])
    assert (decision.verdict, decision.outcome_matched, decision.connection_matched) == (Verdict.FAIL, None, None)
    assert decision.reason.endswith(
        "not judged, the responses they rest on do not verify: the outcome 'unverifiable response' "
        "(expected one of ['accept']), the connection dropping")


def test_a_response_where_a_fault_or_drop_is_due_is_judged_though_it_does_not_verify(cases):
    """A response PDU's type is in its clear header: a server that answers a request it had
    to refuse served it, whatever the stub says."""
    decision = decide(cases["t/must-drop"], Level.MUST, "unverifiable response", False, [root()])
    assert (decision.verdict, decision.outcome_matched, decision.connection_matched) == (Verdict.FAIL, False, False)
    assert "observed 'unverifiable response', expected one of ['fault 0x1c01000b', 'drop']" in decision.reason
    assert "the connection stayed open" in decision.reason and UNVERIFIED in decision.reason


def test_other_checks_stay_judged_beside_the_root_cause(cases):
    """What the other checks find is on the clear wire (a header-signing echo, plaintext in a
    sealed body) or in stubs that verified: it may be why the responses do not verify."""
    echo = check(Verdict.FAIL, "header-signing", "not requested/granted")
    decision = decide(cases["t/must"], Level.MUST, "unverifiable response", None, [echo, root()])
    assert (decision.verdict, decision.outcome_matched) == (Verdict.FAIL, None)
    assert decision.reason.split("; ")[0] == f"response-protection (RPCE-PROT-02): {UNVERIFIED}"
    assert "header-signing (WCCE-T-14): not requested/granted" in decision.reason


@pytest.mark.parametrize("verdict", [Verdict.PASS, Verdict.NA, Verdict.INCONCLUSIVE])
def test_only_a_failing_response_protection_is_a_root_cause(cases, verdict):
    decision = decide(cases["t/must"], Level.MUST, "fault 0x00000005", None, [root(verdict)])
    assert decision.outcome_matched is False
    assert decision.verdict is Verdict.FAIL
    assert decision.reason.startswith("observed 'fault 0x00000005'")


def test_a_root_cause_in_a_may_case_still_fails_its_must(cases):
    """The check's requirement (a MUST) fails, whatever the level of what the case cites."""
    decision = decide(cases["t/must"], Level.MAY, "unverifiable response", None, [root()])
    assert decision.verdict is Verdict.FAIL and decision.outcome_matched is None


def test_a_response_where_only_header_refusals_are_expected_is_judged_despite_the_root_cause(tmp_path):
    """The server served a call it had to refuse: the response's ptype is in the clear, so
    the mismatch stands even though the response does not verify."""
    from conformance.model.cases import parse_cases
    from conformance.model.catalogue import load_catalogue

    path = tmp_path / "served.toml"
    path.write_text('[[case]]\nid = "t/served"\nrequirements = ["WCCE-T-13"]\nkind = "call"\nmethod = "Ping"\n'
                    'expect = { any = ["fault 0x00000005"] }\n'
                    '[[case]]\nid = "t/hresult"\nrequirements = ["WCCE-T-08"]\nkind = "call"\nmethod = "Ping"\n'
                    'expect = { any = ["fault 0x00000005", "hresult 0x80070005"] }\n', "utf-8")
    catalogue = load_catalogue()
    served, hresult = parse_cases([path], catalogue)
    root = CheckResult(check="response-protection", requirement="RPCE-PROT-02", verdict=Verdict.FAIL,
                       expected=("x",), actual="#9 does not verify")
    judged = decide(served, Level.MUST, "unverifiable response", None, [root])
    assert judged.verdict is Verdict.FAIL and judged.outcome_matched is False
    assert "observed 'unverifiable response'" in judged.reason and "#9 does not verify" in judged.reason
    # a refusal may travel in the stub (hresult): the unverifiable response is not judged
    untrusted = decide(hresult, Level.MUST, "unverifiable response", None, [root])
    assert untrusted.outcome_matched is None
