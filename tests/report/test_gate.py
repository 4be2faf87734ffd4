"""The release gate: policies, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conformance.model.exitcodes import Exit
from conformance.report.gate import Policy, PolicyError, evaluate, load_policy


def gate(results, policy=None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "conformance", "gate", str(results)]
    if policy is not None:
        argv += ["--policy", str(policy)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_gate_passes_the_reference_ca_with_full_coverage(reference_run, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text("[gate]\nmax_must_failures = 0\nmax_should_warnings = 0\nmin_must_coverage = 1.0\n")
    result = gate(reference_run.dir / "results.json", policy)
    assert result.returncode == Exit.OK == 0, result.stderr
    assert "Conformant" in result.stderr


def test_gate_fails_a_mutant_with_the_must_code(mutant_run, tmp_path):
    result = gate(mutant_run.dir / "results.json")
    assert result.returncode == Exit.MUST == 1
    assert "MUST case(s) FAIL" in result.stderr


def test_policy_shapes_the_exit_code(mutant_run, reference_run):
    mutant, reference = mutant_run.document, reference_run.document
    assert evaluate(mutant, Policy(max_must_failures=99))[0] == Exit.OK
    code, findings = evaluate(mutant, Policy(max_must_failures=99, min_must_coverage=1.0))
    assert code == Exit.PARTIAL and "MUST coverage" in findings[0].text
    assert evaluate(reference, Policy(min_must_coverage=1.0))[0] == Exit.OK
    # a run where cases could not reach the target is a connection problem, not a pass
    for case in reference["cases"][:3]:
        case["verdict"] = "INCONCLUSIVE"
    assert evaluate(reference, Policy())[0] == Exit.CONNECTION
    assert evaluate(reference, Policy(allow_inconclusive=True))[0] == Exit.OK
    reference["cases"][5]["verdict"] = "ERROR"
    assert evaluate(reference, Policy())[0] == Exit.SUITE  # ERROR before INCONCLUSIVE
    must = next(i for i, c in enumerate(reference["cases"]) if i > 5 and c["level"] == "MUST")
    reference["cases"][must]["verdict"] = "FAIL"
    assert evaluate(reference, Policy())[0] == Exit.MUST  # an established failure first
    # a FAIL under a live deviation is accepted, unless the policy counts deviations
    reference["cases"][must]["deviation"] = {"case": "x", "reason": "r", "expires": "2099-01-01",
                                          "expired": False, "applied": True}
    reference["cases"][5]["verdict"] = reference["cases"][0]["verdict"] = "PASS"
    for case in reference["cases"][:3]:
        case["verdict"] = "PASS"
    assert evaluate(reference, Policy())[0] == Exit.OK
    assert evaluate(reference, Policy(deviations_count=True))[0] == Exit.MUST
    # SHOULD warnings: allowed by default, counted when the policy limits them
    reference["cases"][must + 1].update(verdict="WARN", level="SHOULD")
    assert evaluate(reference, Policy())[0] == Exit.OK
    assert evaluate(reference, Policy(max_should_warnings=0))[0] == Exit.SHOULD
    # an expected MUST case that was never exercised (probe-client's "always" cases) leaves no verdict
    reference["cases"][must + 1].update(verdict="PASS", level="MUST")
    reference["cases"][must]["deviation"] = None
    reference["cases"][must]["verdict"] = "PASS"
    assert evaluate(reference, Policy())[0] == Exit.OK
    expected = next(c for c in reference["cases"] if c["id"] in set(reference["run"]["expected_must_cases"]))
    expected["verdict"] = "N/A"
    code, findings = evaluate(reference, Policy())
    assert code == Exit.PARTIAL and findings[0].text.startswith("1 MUST case(s) never exercised: ")
    reference["cases"] = []
    assert evaluate(reference, Policy())[0] == Exit.PARTIAL


@pytest.mark.parametrize("text, fragment", [
    ("[gate]\nmax_must_failures = -1\n", "whole number"),
    ("[gate]\nmin_must_coverage = 2\n", "fraction from 0 to 1"),
    ("[gate]\nallow_errors = \"yes\"\n", "true or false"),
    ("[gate]\nmax_must_fails = 0\n", "unknown key(s) in [gate]: max_must_fails"),
    ("[policy]\n", "unknown section(s) policy"),
    ("[gate\n", "not valid TOML"),
])
def test_bad_policies_are_one_line(tmp_path, text, fragment, mutant_run):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=None) as info:
        load_policy(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    result = gate(mutant_run.dir / "results.json", path)
    assert result.returncode == Exit.USAGE
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_report_command_rerenders(mutant_run, tmp_path):
    result = subprocess.run([sys.executable, "-m", "conformance", "report", str(mutant_run.dir / "results.json"),
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report.html").stat().st_size > 1000 and (tmp_path / "junit.xml").is_file()
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = subprocess.run([sys.executable, "-m", "conformance", "report", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "do not match the schema" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_shipped_release_policy_loads():
    import pathlib

    policy = load_policy(pathlib.Path(__file__).resolve().parents[2] / "examples" / "release-policy.toml")
    assert policy == Policy(max_must_failures=0, max_should_warnings=0, min_must_coverage=1.0)
