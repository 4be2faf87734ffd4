"""The refusal-effect check: a refused request judged by what the CA numbered around it."""

from __future__ import annotations

from conformance.judge.checks import CheckContext, run_check
from conformance.judge.effects import RefusalEffect
from conformance.model.verdicts import Verdict
from conformance.wire.transcript import build_transcript

EMPTY = build_transcript([], [])


def _judge(effect=None, problem=None):
    return run_check("refusal-effect", EMPTY, CheckContext(effect=effect, effect_problem=problem))


def test_nothing_between_the_markers_passes():
    result = _judge(RefusalEffect(before=7, after=8))
    assert (result.verdict, result.requirement) == (Verdict.PASS, "WCCE-T-24")
    assert result.actual == "markers 7 and 8: the refused request was not issued"


def test_a_certificate_for_the_refused_key_fails():
    result = _judge(RefusalEffect(before=7, after=9, issued=(8,)))
    assert result.verdict is Verdict.FAIL
    assert "request(s) 8 between markers 7 and 9 hold a certificate for the refused request's key" in result.actual


def test_a_request_entered_between_the_markers_fails_when_nobody_else_submits():
    result = _judge(RefusalEffect(before=7, after=9, entered=(8,)))
    assert (result.verdict, result.requirement) == (Verdict.FAIL, "WCCE-T-24")
    assert "request(s) 8 between markers 7 and 9 were entered" in result.actual and "sole_requester" in result.actual


def test_other_clients_requests_between_the_markers_are_not_blamed():
    result = _judge(RefusalEffect(before=7, after=10, other=(8, 9)))
    assert result.verdict is Verdict.PASS and "2 other request(s)" in result.actual


def test_a_busy_ca_beyond_what_was_inspected_is_inconclusive():
    assert _judge(RefusalEffect(before=1, after=100, other=tuple(range(2, 34)), uninspected=66)).verdict \
        is Verdict.INCONCLUSIVE


def test_no_refused_request_is_na_and_a_failed_probe_inconclusive():
    assert _judge().verdict is Verdict.NA
    probe = _judge(problem="the effect probe's session failed: reset")
    assert probe.verdict is Verdict.INCONCLUSIVE and probe.actual.endswith("reset")


def test_a_bracket_holds_the_target_against_every_other_case(tmp_path, monkeypatch):
    """The exclusive lock waits for a case holding the shared one, and holds the next off."""
    import threading

    from conformance.judge.effects import requests_lock
    from conformance.model.profile import Target

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    target = Target(host="127.0.0.9", activation_port=135, ca_name="LOCK-CA", user="u", domain="", password="p")
    taken = threading.Event()

    def bracket():
        with requests_lock(target, exclusive=True):
            taken.set()

    with requests_lock(target, exclusive=False):
        thread = threading.Thread(target=bracket)
        thread.start()
        assert not taken.wait(0.3)  # a case is running: the bracket waits
    assert taken.wait(10)
    thread.join(10)
    assert list(tmp_path.glob("wcce-conformance-*.lock"))
