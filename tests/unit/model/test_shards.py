"""Shards: the same split on every machine, every case in exactly one shard, balanced by cost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.model.shards import ShardError, assign, parse_shard, selection_hash

IDS = [f"wcce/2.1/case-{i:03d}" for i in range(40)]


@pytest.mark.parametrize("text", ["", "1", "0/2", "3/2", "a/b", "1/0", "-1/2", "1/1001"])
def test_a_bad_shard_is_one_line(text):
    with pytest.raises(ShardError, match="--shard"):
        parse_shard(text)


def test_k_of_n():
    assert (parse_shard("2/3").index, parse_shard("2/3").count, str(parse_shard("2/3"))) == (2, 3, "2/3")


@settings(max_examples=50, deadline=None)
@given(ids=st.sets(st.text(min_size=1, max_size=12), min_size=1, max_size=60), count=st.integers(1, 8),
       costs=st.dictionaries(st.text(min_size=1, max_size=12), st.floats(0.001, 30), max_size=30))
def test_every_case_is_in_exactly_one_shard_whatever_the_order(ids, count, costs):
    forward = assign(sorted(ids), count, costs)
    backward = assign(sorted(ids, reverse=True), count, costs)
    assert forward == backward  # the order of collection does not matter
    assert set(forward) == set(ids) and set(forward.values()) <= set(range(1, count + 1))


def test_shards_are_balanced_by_recorded_cost():
    costs = {case_id: (10.0 if i < 4 else 0.1) for i, case_id in enumerate(IDS)}  # four slow cases
    part = assign(IDS, 4, costs)
    totals = [sum(costs[c] for c, s in part.items() if s == k) for k in (1, 2, 3, 4)]
    assert max(totals) - min(totals) < 1.0  # each shard gets one slow case
    assert sorted(part[c] for c in IDS[:4]) == [1, 2, 3, 4]


def test_a_case_without_a_recorded_cost_counts_as_the_median():
    costs = {IDS[0]: 1.0, IDS[1]: 1.0, IDS[2]: 1.0}
    part = assign(IDS[:6], 2, costs)
    assert sorted(list(part.values()).count(k) for k in (1, 2)) == [3, 3]


def test_the_selection_hash_names_the_set():
    assert selection_hash(IDS) == selection_hash(reversed(IDS)) != selection_hash(IDS[1:])
