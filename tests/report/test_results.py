"""results.json: valid against the shipped schema, complete metadata, evidence, no secrets."""

from __future__ import annotations

import base64
import gzip
import json
import re

import pytest

from conformance import __version__
from conformance.model.catalogue import catalogue_hash, load_catalogue
from conformance.report.results import ResultsError, load_results, schema


def test_reference_run_is_conformant_and_complete(reference_run):
    assert reference_run.returncode == 0, reference_run.stderr
    doc = reference_run.document
    run = doc["run"]
    assert run["suite_version"] == __version__ and run["catalogue_hash"] == catalogue_hash()
    assert run["spec"]["MS-WCCE"].startswith("v53.0")
    assert run["target"]["kind"] == "embedded" and run["target"]["claims"]["enforce_privacy"] is True
    assert run["workers"] == 2 and run["command"][1:3] == ["run", "--report-dir"]
    assert len(doc["cases"]) >= 300 and {c["verdict"] for c in doc["cases"]} == {"PASS"}
    assert set(run["expected_must_cases"]) <= {c["id"] for c in doc["cases"]}
    assert set(doc["requirements"]) == set(load_catalogue())
    assert "Conformant (all" in reference_run.stderr
    # cases from both workers were merged
    assert {c["worker"] for c in doc["cases"]} == {"gw0", "gw1"}


def test_every_case_carries_its_evidence(reference_run):
    doc = reference_run.document
    for case in doc["cases"]:
        assert case["repro"].startswith("wcce-conformance run --case ")
        assert (reference_run.dir / case["evidence"]["pcap"]).is_file()
        assert case["evidence"]["ladder"], case["id"]
    sealed = [p for c in doc["cases"] for p in c["evidence"]["ladder"] if p["protection"] == "sealed"]
    assert sealed and all("plain_hex" in p for p in sealed if p["verified"])
    request = next(p for c in doc["cases"] if c["id"].startswith("wcce/2.1/auth-level/privacy/")
                   for p in c["evidence"]["ladder"] if p.get("method") == "Request_Request")
    assert request["fields"] and request["auth"]["level"] == 6


def test_no_secret_and_no_auth_token_in_the_outputs(reference_run):
    """The auth_token after each sec_trailer (NTLM messages, signatures) is redacted."""
    text = (reference_run.dir / "results.json").read_text()
    assert "4e544c4d53535000" not in text  # "NTLMSSP\0": no NTLM message anywhere
    tokens = [p for c in reference_run.document["cases"] for p in c["evidence"]["ladder"]
              if p.get("auth", {}).get("auth_len")]
    assert tokens
    for p in tokens:  # no byte of the auth_token (the last auth_len bytes) is shown
        shown = len(p["hex"].rstrip("-")) // 2
        assert shown <= p["frag_len"] - p["auth"]["auth_len"], p
    assert any(p["hex"].endswith("--") for p in tokens)
    html = (reference_run.dir / "report.html").read_text()
    for chunk in re.findall(r'type="application/octet-stream">([^<]+)<', html):
        assert b"4e544c4d53535000" not in gzip.decompress(base64.b64decode(chunk))


def test_mutant_run_fails_with_the_must_code_and_explains(mutant_run):
    assert mutant_run.returncode == 1, mutant_run.stderr
    doc = mutant_run.document
    failed = [c for c in doc["cases"] if c["verdict"] == "FAIL"]
    assert failed and all("/ca-name/" in c["id"] for c in failed)
    assert all(any("pwszAuthority" in d for d in c["diagnosis"]) for c in failed)
    assert doc["run"]["target"]["mutant"] == "ignore-ca-name"
    assert all("--mutant ignore-ca-name" in c["repro"] for c in doc["cases"])
    assert "Partial run" in mutant_run.stderr and "exit status 1 (must)" in mutant_run.stderr


def test_schema_is_itself_valid():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("breakage, where", [
    (lambda d: d["cases"][0].update(verdict="GREAT"), "cases/0/verdict"),
    (lambda d: d["cases"][0].pop("repro"), "cases/0"),
    (lambda d: d["run"].pop("catalogue_hash"), "run"),
    (lambda d: d["cases"][0]["evidence"]["ladder"][0].update(hex="zz"), "cases/0/evidence/ladder/0/hex"),
])
def test_schema_rejects_broken_documents_in_one_line(mutant_run, tmp_path, breakage, where):
    doc = mutant_run.document
    breakage(doc)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError) as info:
        load_results(path)
    assert f"at {where}" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_results_are_one_line(tmp_path):
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(ResultsError, match="is not JSON"):
        load_results(tmp_path / "r.json")
    with pytest.raises(ResultsError, match="cannot read results"):
        load_results(tmp_path / "none.json")
