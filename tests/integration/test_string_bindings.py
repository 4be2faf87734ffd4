"""The exporter's string bindings against the mutant ``name-only-bindings``, whose activation
replies name only the computer (``CA01[port]``, no address), as a multi-homed Windows CA
can: where the name does not resolve, every case FAILs WCCE-T-01 with the bindings quoted
and none ERRORs; where it resolves (here through a table, to the CA's loopback address)
the client uses it, as Windows clients do, and the cases pass; where it resolves outside
loopback, the suite does not connect and says so (INCONCLUSIVE)."""

from __future__ import annotations

import socket

import pytest

from conformance.client.bindings import Resolver
from conformance.judge.engine import BINDINGS_REQUIREMENT, Engine
from conformance.judge.tables import load_cases
from conformance.model.cases import case_files
from conformance.model.catalogue import load_catalogue
from conformance.model.profile import Claims, Target
from conformance.model.verdicts import Verdict
from conformance.mutation.server import MUTANTS
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config
from conformance.wire.gss import nt_hash
from tests.support.hosts import fresh_loopback

USER, PASSWORD, CA_NAME = "bindings-suite", "Bindings-Passw0rd!", "WCCE-LAB-CA"
CATALOGUE = load_catalogue()
CASES = {c.id: c for c in load_cases(case_files(), CATALOGUE)}
#: one case of each shape that reaches the exporter differently (a call, a bind, a raw
#: negative that connects by address, the pending flow), and the activation case
SELECTED = ["wcce/2.1/auth-level/privacy/spnego-ntlm-l6-imp2/Request", "wcce/2.1/interface-version/ICertRequestD/v1.0",
            "rpce/12.6.4.3/unknown-assoc-group", "wcce/3.2.1.4.2.1.3/pending/retrieve/Request",
            "wcce/2.1/activation/server-alive2-first"]


@pytest.fixture(scope="module")
def name_only(tmp_path_factory):
    host = fresh_loopback()
    config = load_config(None, host=host, port=0, state_dir=tmp_path_factory.mktemp("name-only"),
                         users={USER: nt_hash(PASSWORD)}, ca_name=CA_NAME)
    ca = ReferenceCA(config, behaviour=MUTANTS["name-only-bindings"].behaviour()).start()
    target = Target(host=host, activation_port=ca.activation_port, ca_name=CA_NAME, user=USER, domain="",
                    password=PASSWORD, templates={"issue": "User", "pending": "UserApproval"},
                    claims=Claims(enforce_privacy=True, hardened_activation=True, pending_template=True, dcom=True))
    yield target, ca
    ca.stop()


@pytest.fixture
def dialled(monkeypatch):
    """Every address the suite connects to."""
    seen, connect = [], socket.create_connection

    def watched(address, *args, **kwargs):
        seen.append(address[0])
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", watched)
    return seen


def names(table):
    def lookup(name):
        if name not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[name]
    return lookup


@pytest.mark.parametrize("case_id", SELECTED)
def test_a_name_that_does_not_resolve_fails_wcce_t_01_not_the_suite(name_only, case_id):
    target, ca = name_only
    case = CASES[case_id]
    result = Engine(target, CATALOGUE, resolver=Resolver(lookup=names({}))).run(case)
    assert result.verdict is Verdict.FAIL, (result.actual, result.reason)
    [row] = [c for c in result.checks if c.requirement == BINDINGS_REQUIREMENT]
    assert row.verdict is Verdict.FAIL
    assert f"ncacn_ip_tcp:CA01[{ca.exporter_port}]" in row.actual and "does not resolve" in row.actual
    if case.kind == "activation":  # the activation itself was accepted: its bindings are what fails
        assert result.actual == "accept" and result.outcome_matched
    else:
        assert result.actual == "activation no usable string binding"
        assert all(c.verdict is Verdict.INCONCLUSIVE for c in result.checks if c is not row)


@pytest.mark.parametrize("case_id", SELECTED)
def test_a_name_that_resolves_is_used(name_only, case_id, dialled):
    target, _ = name_only
    resolver = Resolver(lookup=names({"CA01": ("192.0.2.1", target.host)}))  # the first is not loopback
    result = Engine(target, CATALOGUE, resolver=resolver).run(CASES[case_id])
    assert result.verdict is Verdict.PASS, (result.actual, result.reason)
    assert set(dialled) == {target.host}


def test_a_name_that_resolves_outside_loopback_is_not_contacted(name_only, dialled):
    target, _ = name_only
    resolver = Resolver(lookup=names({"CA01": ("192.0.2.1",)}))
    result = Engine(target, CATALOGUE, resolver=resolver).run(CASES[SELECTED[0]])
    assert (result.verdict, result.actual) == (Verdict.INCONCLUSIVE, "exporter unreachable")
    assert "192.0.2.1, outside loopback" in result.reason
    assert "192.0.2.1" not in dialled
