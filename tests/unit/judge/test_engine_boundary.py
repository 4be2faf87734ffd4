"""Engine.run is the one boundary where what went wrong becomes a verdict: what the target
sent is FAIL (judged as the observed outcome), string bindings that name nothing usable
FAIL WCCE-T-01 with the case's own requirements not reached, an unreachable target is
INCONCLUSIVE, and only a defect of the suite is ERROR.  No target: the flow is replaced
by one that raises what a flow would."""

from __future__ import annotations

import socket

import pytest

from conformance.client.errors import BindingProblem, MalformedReply, NoUsableBinding, TargetFault
from conformance.client.rpc import RpcError
from conformance.judge.engine import ACTIVATION_SITUATION, BINDINGS_REQUIREMENT, Engine
from conformance.judge.errors import Inconclusive
from conformance.judge.tables import load_cases
from conformance.model.cases import case_files
from conformance.model.catalogue import load_catalogue
from conformance.model.ledger import shipped_ledger
from conformance.model.profile import Claims, Target
from conformance.model.verdicts import Verdict
from conformance.mutation.killmatrix import attributed

CATALOGUE = load_catalogue()
TARGET = Target(host="127.0.0.1", activation_port=9, ca_name="CA", user="u", domain="", password="p",
                claims=Claims(enforce_privacy=True, hardened_activation=True, dcom=True))
CASES = {c.id: c for c in load_cases(case_files(), CATALOGUE)}
CALL = next(c for c in CASES.values() if c.kind == "call" and "refusal-effect" not in c.checks
            and all(TARGET.claims.holds(x) for x in c.claims) and BINDINGS_REQUIREMENT not in c.requirements)
NAME_ONLY = NoUsableBinding(("ncacn_ip_tcp:CA01[49667]",), (
    BindingProblem(binding="ncacn_ip_tcp:CA01[49667]", why="'CA01' does not resolve", conclusive=True),))
UNREACHED = NoUsableBinding(("ncacn_ip_tcp:127.0.0.1[1]",), (
    BindingProblem(binding="ncacn_ip_tcp:127.0.0.1[1]", why="127.0.0.1[1] did not connect", conclusive=False),))


def run(case, raised: BaseException):
    engine = Engine(TARGET, CATALOGUE)

    def drive(*_):
        raise raised

    engine._drive = drive
    return engine.run(case)


def test_a_malformed_reply_is_the_observed_outcome_and_fails_the_case():
    result = run(CALL, MalformedReply("Request response", "error: unpack_from requires a buffer of at least 4 bytes"))
    assert result.verdict is Verdict.FAIL and result.outcome_matched is False
    assert result.actual == "malformed Request response: error: unpack_from requires a buffer of at least 4 bytes"
    assert "Traceback" not in result.reason and "observed 'malformed Request response" in result.reason
    assert attributed(result, CALL, CALL.requirements[0])


def test_any_target_fault_is_judged_not_raised():
    result = run(CALL, TargetFault("ptype 12 in reply to a request"))
    assert (result.verdict, result.actual) == (Verdict.FAIL, "ptype 12 in reply to a request")


def test_bindings_that_name_nothing_usable_fail_wcce_t_01_and_nothing_else():
    result = run(CALL, NAME_ONLY)
    assert result.verdict is Verdict.FAIL
    assert result.actual == "activation no usable string binding"
    assert result.outcome_matched is None  # the case's own step was not reached
    t01, *others = result.checks
    assert (t01.requirement, t01.verdict) == (BINDINGS_REQUIREMENT, Verdict.FAIL)
    assert "ncacn_ip_tcp:CA01[49667]" in t01.actual and "does not resolve" in t01.actual
    assert {c.requirement for c in others} == set(CALL.requirements)
    assert all(c.verdict is Verdict.INCONCLUSIVE and c.actual.startswith("not reached") for c in others)
    assert ACTIVATION_SITUATION in result.reason and "MS-DCOM 3.2.4.1.1.2" in result.reason
    # the kill matrix blames the bindings' requirement, and not the case's own
    assert attributed(result, CALL, BINDINGS_REQUIREMENT)
    assert not any(attributed(result, CALL, r) for r in CALL.requirements)


def test_bindings_that_were_only_not_reached_are_inconclusive():
    result = run(CALL, UNREACHED)
    assert (result.verdict, result.actual) == (Verdict.INCONCLUSIVE, "exporter unreachable")
    assert "127.0.0.1[1] did not connect" in result.reason


@pytest.mark.parametrize("raised", [
    ConnectionRefusedError(111, "Connection refused"), ConnectionResetError(104, "Connection reset by peer"),
    socket.timeout("timed out"), socket.gaierror(-2, "Name or service not known"), BrokenPipeError(32, "pipe"),
])
def test_a_target_that_cannot_be_reached_is_inconclusive(raised):
    result = run(CALL, raised)
    assert (result.verdict, result.actual) == (Verdict.INCONCLUSIVE, "target unreachable")
    assert result.reason


@pytest.mark.parametrize("raised", [Inconclusive("the target did not bind"),
                                    RpcError("no SPNEGO leg carried a mechListMIC to tamper with")])
def test_what_the_case_needs_and_did_not_get_is_inconclusive(raised):
    result = run(CALL, raised)
    assert (result.verdict, result.actual, result.reason) == (Verdict.INCONCLUSIVE, "not judged", str(raised))


@pytest.mark.parametrize("raised", [KeyError("cont_id"), AttributeError("'NoneType' has no attribute 'x'"),
                                    AssertionError("invariant")])
def test_only_a_defect_of_the_suite_is_error(raised):
    result = run(CALL, raised)
    assert result.verdict is Verdict.ERROR
    assert "Traceback" in result.reason


def test_the_activation_step_is_judged_by_the_ledger_s_accepted_activation():
    situation = shipped_ledger()[ACTIVATION_SITUATION]
    assert situation.windows == ("accept",)
    assert CATALOGUE[BINDINGS_REQUIREMENT].level.violation is Verdict.FAIL


@pytest.mark.parametrize("target_wait, drops, wait", [
    (0.05, True, 0.2),    # a drop the case expects is looked for at least the default window
    (0.05, False, 0.05),  # a connection the case expects kept: the target's window
    (0.05, None, 0.05),   # not judged: the target's window, for the evidence
    (1.0, True, 1.0), (1.0, False, 1.0),  # a longer window of the profile's stands
])
def test_the_close_is_looked_for_the_targets_drop_wait_and_an_expected_one_at_least_the_default(
        target_wait, drops, wait):
    import dataclasses

    engine = Engine(dataclasses.replace(TARGET, drop_wait=target_wait), CATALOGUE)
    case = next(c for c in CASES.values() if c.connection_drops is drops)
    assert engine.drop_wait_for(case) == wait
