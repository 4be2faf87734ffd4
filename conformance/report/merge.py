"""Joining results: the shards of one selection (``--shard K/N``), or separate runs of the
same selection, into one results document the report, JUnit and the gate read as if one
run had made it.  Sans-IO: documents in, a document out.

Refused, with one line: different suite versions or catalogues, different targets (kind,
description, host, CA, profile, mutant), shards of different selections or of different
counts, the same shard twice, or one case in two inputs.  Shards that are missing are not
an error: the merged run then misses their MUST cases and the gate says the run is partial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MergeError", "merge_results"]

#: what must be equal in every input, and how a mismatch is named
_SAME = (("suite_version", "suite versions"), ("catalogue_hash", "requirement catalogues"),
         ("strict", "strict modes"), ("deviations_hash", "deviation files"))
_TARGET = ("kind", "description", "host", "activation_port", "ca_name", "profile_hash", "mutant")


class MergeError(ValueError):
    """The inputs are not parts of one run (one line)."""


def _shard_text(run: Mapping[str, Any]) -> str | None:
    shard = run.get("shard")
    return f"{shard['index']}/{shard['count']}" if shard else None


def merge_results(documents: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> dict[str, Any]:
    if len(documents) < 2:
        raise MergeError("report merge needs at least two results files")
    names = list(names or [d["run"]["id"] for d in documents])
    first = documents[0]["run"]
    for name, document in zip(names[1:], documents[1:]):
        run = document["run"]
        for key, what in _SAME:
            if run.get(key) != first.get(key):
                raise MergeError(f"{name}: different {what} ({run.get(key)!r} vs {first.get(key)!r}): not one run")
        for key in _TARGET:
            if run["target"].get(key) != first["target"].get(key):
                raise MergeError(f"{name}: another target ({key} {run['target'].get(key)!r} vs "
                                 f"{first['target'].get(key)!r})")
        if (run.get("shard") is None) != (first.get("shard") is None):
            raise MergeError(f"{name}: a shard and a whole run cannot be merged")
        if run.get("shard") and (run["shard"]["selection"], run["shard"]["count"]) != (
                first["shard"]["selection"], first["shard"]["count"]):
            raise MergeError(f"{name}: a shard of another selection or split ({run['shard']['selection']} "
                             f"of {run['shard']['count']} vs {first['shard']['selection']} of "
                             f"{first['shard']['count']})")
        if run.get("selection") != first.get("selection"):
            raise MergeError(f"{name}: another selection ({run.get('selection')} vs {first.get('selection')})")
    shards = [_shard_text(d["run"]) for d in documents]
    if first.get("shard") and len(set(shards)) != len(shards):
        raise MergeError(f"the same shard twice ({sorted(s for s in shards if shards.count(s) > 1)[0]})")
    cases: dict[str, Mapping[str, Any]] = {}
    for name, document in zip(names, documents):
        for case in document["cases"]:
            if case["id"] in cases:
                raise MergeError(f"{name}: case {case['id']} is in two of the inputs")
            cases[case["id"]] = case
    requirements: dict[str, Any] = {}
    for document in documents:
        requirements.update(document["requirements"])
    runs = [d["run"] for d in documents]
    merged = dict(first)
    merged.update(
        id="merged-" + "+".join(sorted(r["id"] for r in runs))[:120],
        started=min(r["started"] for r in runs), finished=max(r["finished"] for r in runs),
        workers=sum(r["workers"] for r in runs),
        expected_must_cases=sorted({c for r in runs for c in r["expected_must_cases"]}),
        expected_must_requirements=sorted({q for r in runs for q in r["expected_must_requirements"]}),
        shard=None,
        merged_from=[{"id": r["id"], "shard": _shard_text(r)} for r in runs],
    )
    return {"run": merged, "requirements": requirements, "cases": sorted(cases.values(), key=lambda c: c["id"])}
