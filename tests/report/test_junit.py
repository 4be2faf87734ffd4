"""JUnit XML: valid against the JUnit XSD (junit-10.xsd, as Jenkins reads it), name = case ID."""

from __future__ import annotations

import os
import pathlib

import pytest
from lxml import etree

from conformance.report.junit import write_junit

XSD = pathlib.Path(os.environ.get("WCCE_JUNIT_XSD", pathlib.Path(__file__).resolve().parents[2] / ".ci" /
                                  "cache" / "junit-10.xsd"))


@pytest.fixture(scope="module")
def junit_schema() -> etree.XMLSchema:
    if not XSD.is_file():
        raise RuntimeError(f"{XSD} is missing: bash .ci/install fetches it (from pytest's sdist)")
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.mark.parametrize("which", ["reference_run", "mutant_run"])
def test_junit_is_valid_and_named_by_case_id(which, request, junit_schema):
    run = request.getfixturevalue(which)
    tree = etree.parse(str(run.dir / "junit.xml"))
    junit_schema.assertValid(tree)
    cases = tree.getroot().findall(".//testcase")
    document = run.document
    assert sorted(c.get("name") for c in cases) == sorted(c["id"] for c in document["cases"])
    failures = sum(1 for c in document["cases"] if c["verdict"] == "FAIL")
    assert int(tree.getroot().get("failures")) == failures == len(tree.getroot().findall(".//failure"))


def test_every_verdict_maps_and_stays_valid(mutant_run, tmp_path, junit_schema):
    document = mutant_run.document
    verdicts = ["PASS", "FAIL", "WARN", "N/A", "INCONCLUSIVE", "ERROR", "INFO"]
    for case, verdict in zip(document["cases"], verdicts * 10):
        case["verdict"] = verdict
    document["cases"][1]["deviation"] = {"case": "x", "reason": "ticket 1", "expires": "2099-01-01",
                                         "expired": False, "applied": True}
    out = write_junit(document, tmp_path / "junit.xml")
    tree = etree.parse(str(out))
    junit_schema.assertValid(tree)
    root = tree.getroot()
    assert len(root.findall(".//error")) == sum(1 for c in document["cases"] if c["verdict"] == "ERROR")
    skipped = root.findall(".//skipped")
    assert any("deviation until 2099-01-01" in s.get("message") for s in skipped)
    assert any(s.get("message").startswith("INCONCLUSIVE") for s in skipped)
