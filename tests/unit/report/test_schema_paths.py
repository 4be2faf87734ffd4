"""results.json's two validators agree: the compiled one (fastjsonschema, the fast path of
``load_results``) accepts exactly what jsonschema accepts, on a real run's document and on
every change hypothesis makes to it; the error named is jsonschema's."""

from __future__ import annotations

import copy
import json
import pathlib

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.report import results

DOCUMENT = json.loads((pathlib.Path(__file__).parents[2] / "data" / "results" / "interface-version.json").read_text())
JSONSCHEMA = jsonschema.Draft202012Validator(results.schema())
SMALL = {**DOCUMENT, "cases": DOCUMENT["cases"][:2]}  # the cases are alike: two make hypothesis quick

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**33), st.floats(allow_nan=False),
                    st.sampled_from(["", "PASS", "FAIL", "MUST", "x", "WCCE-T-02", "2026-12-01T10:00:00Z"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
    st.sampled_from(["id", "verdict", "level", "x"]), inner, max_size=2), max_leaves=4)


def _paths(node, at=()):
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*at, index))


PATHS = [p for p in _paths(SMALL) if p]


def _fast_accepts(document) -> bool:
    import fastjsonschema

    try:
        results._accepts()(copy.deepcopy(document))  # it may fill defaults in place: give it a copy
        return True
    except fastjsonschema.JsonSchemaException:
        return False


def test_a_real_runs_document_is_accepted_by_both():
    assert JSONSCHEMA.is_valid(DOCUMENT) and _fast_accepts(DOCUMENT) and results.schema_error(DOCUMENT) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), how=st.sampled_from(["replace", "delete", "add"]), value=values)
def test_the_compiled_validator_accepts_exactly_what_jsonschema_accepts(path, how, value):
    document = copy.deepcopy(SMALL)
    *parents, last = path
    node = document
    for step in parents:
        node = node[step]
    if how == "replace":
        node[last] = value
    elif how == "delete":
        del node[last]
    else:
        target = node[last]
        if isinstance(target, dict):
            target["unexpected-key"] = value
        elif isinstance(target, list):
            target.append(value)
        else:
            node[last] = [target, value]
    assert _fast_accepts(document) == JSONSCHEMA.is_valid(document)
    error = results.schema_error(document)
    assert (error is None) == JSONSCHEMA.is_valid(document)


@pytest.mark.parametrize("change, where", [
    (lambda d: d["cases"][3].update(verdict="BOGUS"), "cases/3/verdict"),
    (lambda d: d["run"].pop("id"), "run"),
    (lambda d: d.pop("cases"), "(top)"),
])
def test_the_error_named_is_jsonschemas_best_match(change, where):
    document = copy.deepcopy(DOCUMENT)
    change(document)
    found, message = results.schema_error(document)
    best = jsonschema.exceptions.best_match(JSONSCHEMA.iter_errors(document))
    assert found == where and message == best.message
