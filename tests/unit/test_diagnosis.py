"""Diagnosis hints: the right hint for what happened, not every hint of the case."""

from __future__ import annotations

from conformance.report.diagnosis import diagnose


def record(verdict, actual, expected, requirements=("WCCE-T-08",), checks=()):
    return {"verdict": verdict, "actual": actual, "expected": list(expected),
            "outcome_matched": actual in expected, "requirements": [{"id": r} for r in requirements],
            "checks": list(checks)}


def test_accepted_what_must_be_refused_names_the_requirement_fix():
    hints = diagnose(record("FAIL", "accept", ["fault 0x00000005", "hresult 0x80070005"]))
    assert hints and "IF_ENFORCEENCRYPTICERTREQUEST" in hints[0]


def test_a_refusal_of_a_good_call_explains_the_code_not_the_requirement():
    hints = diagnose(record("FAIL", "activation unverifiable response", ["accept"],
                            requirements=("WCCE-T-08", "RPCE-PROT-01")))
    assert not any("certutil" in h for h in hints)
    assert any(h.startswith("unverifiable response = ") for h in hints)


def test_expected_refusals_are_explained_too():
    (hint,) = diagnose(record("PASS", "fault 0x00000005", ["fault 0x00000005"]))
    assert "rpc_s_access_denied" in hint and "PKT_PRIVACY" in hint
    assert "CERTSRV_E_UNSUPPORTED_CERT_TYPE" in diagnose(record("PASS", "disposition 0x80094800",
                                                                ["disposition 0x80094800"]))[0]


def test_failing_checks_and_unreachable_targets():
    hints = diagnose(record("FAIL", "accept", ["accept"], requirements=("RPCE-PROT-01",), checks=[
        {"check": "stub-confidentiality", "verdict": "FAIL"}, {"check": "header-signing", "verdict": "PASS"}]))
    assert len(hints) == 1 and hints[0].startswith("stub-confidentiality:")
    assert "TCP 135" in diagnose(record("INCONCLUSIVE", "target unreachable", ["accept"]))[-1]


def test_user_facing_codes_have_hints():
    for code in ("fault 0x00000005", "hresult 0x80070005", "hresult 0x80000009", "fault 0x00000721",
                 "disposition 0x80094800", "disposition 0x80094805", "disposition 0x8009480f",
                 "fault 0x80010108"):
        assert diagnose(record("PASS", code, [code])), code
