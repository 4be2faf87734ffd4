"""report merge: shards of one run join into one document; anything else is refused in one line."""

from __future__ import annotations

import copy

import pytest

from conformance.report.gate import Policy, evaluate
from conformance.report.merge import MergeError, merge_results


def _document(run_id: str, shard: int | None, cases: list[tuple[str, str]], *, count: int = 2, **run) -> dict:
    base = {
        "id": run_id, "suite_version": "0.1.0", "spec": {}, "catalogue_hash": "c1",
        "target": {"kind": "embedded", "description": "embedded reference CA", "host": None,
                   "activation_port": None, "ca_name": None, "profile": None, "profile_hash": None,
                   "mutant": None, "claims": {}},
        "started": f"2026-12-01T10:0{shard or 0}:00Z", "finished": f"2026-12-01T10:0{shard or 0}:30Z",
        "command": ["wcce-conformance", "run"], "workers": 1, "strict": False,
        "selection": {"case": [], "requirement": [], "keyword": None},
        "expected_must_cases": sorted(c for c, _ in cases), "expected_must_requirements": ["WCCE-T-02"],
        "shard": {"index": shard, "count": count, "selection": "abc", "selected": 4} if shard else None,
    }
    base.update(run)
    return {"run": base, "requirements": {"WCCE-T-02": {"level": "MUST"}},
            "cases": [{"id": c, "verdict": v, "level": "MUST", "requirements": [{"id": "WCCE-T-02", "level": "MUST"}]}
                      for c, v in cases]}


ONE = _document("r1", 1, [("a", "PASS"), ("c", "PASS")])
TWO = _document("r2", 2, [("b", "PASS"), ("d", "FAIL")])


def test_two_shards_make_one_run():
    merged = merge_results([ONE, TWO])
    assert [c["id"] for c in merged["cases"]] == ["a", "b", "c", "d"]
    run = merged["run"]
    assert run["shard"] is None and run["merged_from"] == [{"id": "r1", "shard": "1/2"}, {"id": "r2", "shard": "2/2"}]
    assert run["expected_must_cases"] == ["a", "b", "c", "d"]
    assert (run["started"], run["finished"]) == ("2026-12-01T10:01:00Z", "2026-12-01T10:02:30Z")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["run"].update(suite_version="0.2.0"), "different suite versions"),
    (lambda d: d["run"].update(catalogue_hash="c2"), "different requirement catalogues"),
    (lambda d: d["run"]["target"].update(description="embedded reference CA as mutant x", mutant="x"), "another target"),
    (lambda d: d["run"]["shard"].update(selection="zzz"), "another selection or split"),
    (lambda d: d["run"]["shard"].update(count=3), "another selection or split"),
    (lambda d: d["run"]["shard"].update(index=1), "the same shard twice"),
    (lambda d: d["run"].update(shard=None), "a shard and a whole run"),
    (lambda d: d["cases"].append({"id": "a", "verdict": "PASS"}), "case a is in two"),
])
def test_what_is_not_one_run_is_refused_in_one_line(change, message):
    other = copy.deepcopy(TWO)
    change(other)
    with pytest.raises(MergeError, match=message) as info:
        merge_results([ONE, other])
    assert "\n" not in str(info.value)


def test_one_input_is_not_a_merge():
    with pytest.raises(MergeError, match="at least two"):
        merge_results([ONE])


def test_the_gate_on_the_merged_file_is_the_gate_on_the_whole_run():
    whole = _document("w", None, [("a", "PASS"), ("b", "PASS"), ("c", "PASS"), ("d", "FAIL")])
    merged = merge_results([ONE, TWO])
    assert evaluate(merged, Policy())[0] == evaluate(whole, Policy())[0] != 0
