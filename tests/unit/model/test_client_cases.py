"""The client-side case tables and client profiles probe-client reads."""

from __future__ import annotations

import pathlib

import pytest

from conformance.model.cases import CaseError, load_client_cases
from conformance.model.client_profile import load_client_profile
from conformance.model.catalogue import load_catalogue
from conformance.model.profile import ProfileError

CATALOGUE = load_catalogue()
EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples" / "clients"


def test_every_client_requirement_with_a_check_has_a_client_case():
    cases = load_client_cases(CATALOGUE)
    covered = {r for c in cases for r in c.case.requirements}
    wanted = {r.id for r in CATALOGUE.values() if r.binds in ("client", "both") and r.checks}
    assert wanted <= covered, sorted(wanted - covered)
    assert all(c.case.id.split("/")[0] in ("wcce", "dcom", "rpce") and "/client/" in c.case.id for c in cases)


@pytest.mark.parametrize("text, fragment", [
    ('[[case]]\nid = "x"\nrequirements = ["WCCE-T-06"]\nchecks = ["security-provider"]\ncolour = 1\n',
     "unknown key(s) colour"),
    ('[[case]]\nid = "x"\nrequirements = ["NOPE-1"]\nchecks = ["security-provider"]\n', "NOPE-1"),
    ('[[case]]\nid = "x"\nrequirements = ["WCCE-T-06"]\nchecks = ["nope"]\n', "unknown check(s)"),
    ('[[case]]\nid = "x"\nrequirements = ["WCCE-T-06"]\nchecks = ["security-provider"]\napplies = "sometimes"\n',
     "applies must be"),
])
def test_bad_client_tables_are_one_line(tmp_path, text, fragment):
    (tmp_path / "t.toml").write_text(text)
    with pytest.raises(CaseError) as info:
        load_client_cases(CATALOGUE, tmp_path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["ours.toml", "certipy.toml", "impacket.toml"])
def test_shipped_client_profiles_load(name):
    profile = load_client_profile(EXAMPLES / name)
    assert profile.command and profile.timeout > 0 and profile.name


@pytest.mark.parametrize("text, fragment", [
    ('[client]\ncommand = []\n', "non-empty list"),
    ('[client]\ncommand = ["x"]\ntimeout = 0\n', "1-3600"),
    ('[client]\ncommand = ["x"]\nshell = true\n', "unknown key(s) in [client]: shell"),
    ('[tool]\n', "unknown section(s) tool"),
    ('[client]\ncommand = ["x"]\n[[quirk]]\ncase = "a"\n', "quirk"),
])
def test_bad_client_profiles_are_one_line(tmp_path, text, fragment):
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(ProfileError) as info:
        load_client_profile(tmp_path / "p.toml")
    assert fragment in str(info.value) and "\n" not in str(info.value)
