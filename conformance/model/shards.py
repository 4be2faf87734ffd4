"""Sharding a selection of cases: the same split on every machine, balanced by cost.

``assign(ids, count, costs)`` gives each case ID its shard (1..count): cases sorted by
recorded cost (longest first, then ID), each to the shard with the least total so far
(ties: the lowest shard) — longest-processing-time first, deterministic because nothing
but the IDs and the shipped cost table enters it.  A case with no recorded cost counts as
the median of the recorded ones.  ``selection_hash`` names the selection a shard was cut
from, so shards of different selections are never merged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import statistics
from collections.abc import Iterable, Mapping

__all__ = ["Shard", "ShardError", "parse_shard", "assign", "selection_hash", "recorded_costs", "COSTS_FILE"]

#: Seconds per case, from a reference run (``bench/record_costs.py`` writes it from a results.json)
COSTS_FILE = pathlib.Path(__file__).with_name("case_costs.json")


class ShardError(ValueError):
    """``--shard`` is not K/N with 1 <= K <= N."""


@dataclasses.dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    index, sep, count = str(text).partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ShardError(f"--shard {text!r}: expected K/N, e.g. 1/4")
    shard = Shard(int(index), int(count))
    if not 1 <= shard.index <= shard.count or shard.count > 1000:
        raise ShardError(f"--shard {text}: K must be 1..N (N at most 1000)")
    return shard


def recorded_costs(path: pathlib.Path = COSTS_FILE) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.get("seconds", {}).items() if isinstance(v, (int, float))}


def assign(ids: Iterable[str], count: int, costs: Mapping[str, float] | None = None) -> dict[str, int]:
    """Case ID -> shard (1..count)."""
    ids = sorted(set(ids))
    costs = recorded_costs() if costs is None else costs
    known = [costs[i] for i in ids if i in costs]
    default = statistics.median(known) if known else 1.0
    load = [0.0] * count
    shards = {}
    for case_id in sorted(ids, key=lambda i: (-costs.get(i, default), i)):
        target = min(range(count), key=lambda s: (load[s], s))
        shards[case_id] = target + 1
        load[target] += costs.get(case_id, default)
    return shards


def selection_hash(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()[:16]
