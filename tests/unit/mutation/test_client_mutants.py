"""Client mutants are ClientSettings fields replaced: each changes what it names, every
field it names exists and is read by the client, so a rename cannot turn a mutant into the
conformant client."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import pytest

import conformance.client
from conformance.client.settings import ClientSettings, SettingsError
from conformance.judge.settings import PLACEHOLDER_TARGET, settings_for
from conformance.mutation.client import CLIENT_BASELINE, CLIENT_MUTANTS

FIELDS = {f.name for f in dataclasses.fields(ClientSettings)}
ALIASES = {"version": "if_version"}  # table words that set another field (ClientSettings.from_mapping)
#: fields that follow from a named one: an anonymous client holds no account
DERIVED = {"anonymous": {"user", "domain", "password"}}
CLIENT = pathlib.Path(conformance.client.__file__).parent
TICKETS = object()  # no KDC is asked


def _settings(overrides) -> ClientSettings:
    return settings_for(PLACEHOLDER_TARGET, {**CLIENT_BASELINE, **overrides}, tickets=TICKETS, environ={})


@pytest.mark.parametrize("name", sorted(CLIENT_MUTANTS))
def test_a_client_mutant_changes_the_fields_it_names(name):
    mutant = CLIENT_MUTANTS[name]
    assert mutant.settings, name
    named = {ALIASES.get(key, key) for key in mutant.settings}
    assert named <= FIELDS, named - FIELDS
    reference, mutated = _settings({}), _settings(mutant.settings)
    changed = {f for f in FIELDS if getattr(reference, f) != getattr(mutated, f)}
    derived = set().union(*(DERIVED.get(f, set()) for f in named))
    assert named <= changed and changed <= named | derived, (named, changed)


def test_a_misspelt_setting_is_refused():
    with pytest.raises(SettingsError, match="unknown client setting"):
        _settings({"ntlm_clear_flag": 0x10})


def _attributes_read(root: pathlib.Path, skip: pathlib.Path) -> set[str]:
    names = set()
    for path in root.rglob("*.py"):
        if path == skip:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


def test_every_field_a_mutant_names_is_read_by_the_client():
    """settings.py turns fields into connections; a field nothing reads is a no-op switch."""
    settings_py = CLIENT / "settings.py"
    tree = ast.parse(settings_py.read_text())
    in_settings = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                   and isinstance(n.value, ast.Name) and n.value.id == "self"}
    elsewhere = _attributes_read(CLIENT, settings_py) | _attributes_read(CLIENT.parent / "judge", settings_py)
    for mutant in CLIENT_MUTANTS.values():
        for key in mutant.settings:
            field = ALIASES.get(key, key)
            assert field in in_settings or field in elsewhere, f"{mutant.name}: {field} is never read"
