"""The requirement catalogue, and the rule that every wire-checked requirement has a mutant."""

from __future__ import annotations

from conformance.model.catalogue import load_catalogue
from conformance.mutation.client import CLIENT_MUTANTS
from conformance.mutation.server import MUTANTS
from conformance.judge.checks import CHECKS
from conformance.model.verdicts import Level

CATALOGUE = load_catalogue()


def test_catalogue_starts_from_the_reference_and_is_well_formed():
    assert {f"WCCE-T-{n:02d}" for n in range(1, 24)} <= set(CATALOGUE)
    for req in CATALOGUE.values():
        assert req.text.strip() and req.section.strip(), req.id
        assert req.level in (Level.MUST, Level.SHOULD, Level.MAY)
        assert set(req.checks) <= set(CHECKS)


def test_every_requirement_with_a_wire_check_has_a_mutant():
    broken = {m.requirement for m in MUTANTS.values()} | {m.requirement for m in CLIENT_MUTANTS.values()}
    missing = sorted(r.id for r in CATALOGUE.values() if r.checks and r.id not in broken)
    assert not missing, f"requirements with wire checks but no mutant: {missing}"


def test_every_mutant_breaks_a_catalogued_requirement():
    for mutant in [*MUTANTS.values(), *CLIENT_MUTANTS.values()]:
        assert mutant.requirement in CATALOGUE, mutant.name
        assert mutant.description
    # a client mutant breaks a requirement that binds clients, a server mutant one that binds servers
    assert all(CATALOGUE[m.requirement].binds in ("client", "both") for m in CLIENT_MUTANTS.values())
    assert all(CATALOGUE[m.requirement].binds in ("server", "both") for m in MUTANTS.values())


def test_every_server_requirement_has_a_diagnosis_hint():
    from conformance.report.diagnosis import hints

    table = hints()
    missing = sorted(r.id for r in CATALOGUE.values() if r.binds in ("server", "both") and r.id not in
                     table["requirement"] and not set(r.checks) & set(table["check"]) and r.id != "WCCE-T-01")
    assert not missing, missing
    assert set(table["check"]) <= set(CHECKS)
