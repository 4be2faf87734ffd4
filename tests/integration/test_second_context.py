"""The second-context downgrade (cases/security.toml, WCCE-T-08) against reference CAs
that refuse in each documented form; against one that does not acknowledge the security
context multiplexing its profile claims (INCONCLUSIVE: [MS-RPCE] 3.3.1.5.4 forbids the
client to multiplex then); without the claim (N/A); and against the mutant that judges a
call by the connection's first context (FAIL)."""

from __future__ import annotations

import dataclasses

import pytest

from conformance.judge.tables import load_cases

from conformance.model.cases import case_files
from conformance.model.catalogue import load_catalogue
from conformance.targets.embedded import embedded_target
from conformance.judge.engine import Engine
from conformance.mutation.server import MUTANTS
from conformance.refca.config import RequestDenial
from conformance.model.verdicts import Verdict
from conformance.wire.rpc import BindTimeFeature

CATALOGUE = load_catalogue()
CASES = [c for c in load_cases(case_files(), CATALOGUE)
         if c.id.startswith("wcce/2.1/auth-level/privacy-enforced/second-context/")]


def test_one_case_per_provider():
    assert sorted(c.client["provider"] for c in CASES) == ["kerberos", "ntlm", "spnego-kerberos", "spnego-ntlm"]


@pytest.fixture(scope="module")
def embedded():
    with embedded_target() as (target, ca):
        yield target, ca


def _run(target, ca, provider: str):
    case = next(c for c in CASES if c.client["provider"] == provider)
    if case.client["provider"].endswith("kerberos") and target.kerberos is None:
        pytest.skip("no MIT KDC here")
    return Engine(target, CATALOGUE, service_keys=ca.service_keys).run(case)


@pytest.mark.parametrize("denial, actual", [
    (RequestDenial.FAULT_ACCESS_DENIED, "fault 0x00000005"),
    (RequestDenial.HRESULT_E_ACCESSDENIED, "hresult 0x80070005"),
    (RequestDenial.HRESULT_LEGACY, "hresult 0x80000009"),
    (RequestDenial.DISPOSITION, "disposition 0x80070005"),
])
@pytest.mark.parametrize("provider", ["spnego-ntlm", "ntlm", "spnego-kerberos"])
def test_each_refusal_form_passes(embedded, denial, actual, provider):
    target, ca = embedded
    config = ca.service.config
    ca.service.config = dataclasses.replace(config, policy=dataclasses.replace(config.policy, request_denial=denial))
    try:
        result = _run(target, ca, provider)
    finally:
        ca.service.config = config
    assert (result.verdict, result.actual) == (Verdict.PASS, actual), result.reason
    # the call really travelled on the second context, at PKT_INTEGRITY
    requests = [p for p in result.ladder if p["ptype"] == "request" and p["conn"] == result.ladder[-1]["conn"]]
    assert requests[-1]["auth"]["context_id"] == 1 and requests[-1]["auth"]["level"] == 5


def test_inconclusive_when_the_claimed_multiplexing_is_not_acknowledged(embedded):
    target, ca = embedded
    policy = ca.association_policy
    ca.association_policy = dataclasses.replace(
        policy, bind_time_features=int(BindTimeFeature.KEEP_CONNECTION_ON_ORPHAN))
    try:
        result = _run(target, ca, "spnego-ntlm")
    finally:
        ca.association_policy = policy
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "security_context_multiplexing" in result.reason and "0x2" in result.reason


def test_not_applicable_without_the_claim(embedded):
    target, ca = embedded
    unknown = dataclasses.replace(target, claims=dataclasses.replace(target.claims,
                                                                     security_context_multiplexing=None))
    result = _run(unknown, ca, "spnego-ntlm")
    assert result.verdict is Verdict.NA and "security_context_multiplexing" in result.reason


@pytest.mark.parametrize("provider", ["spnego-ntlm", "ntlm"])
def test_fails_against_the_mutant_that_judges_by_the_first_context(provider):
    mutant = MUTANTS["privacy-by-first-context"]
    with embedded_target(behaviour=mutant.behaviour(), label=mutant.name) as (target, ca):
        result = _run(target, ca, provider)
    assert result.verdict is Verdict.FAIL
    assert result.outcome_matched is False
