"""What a run amounts to, from results.json alone (sans-IO): counts, the summary verdict,
MUST coverage, and the requirement x variant matrix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from conformance.model.verdicts import DEVIATION, VERDICT_ORDER, Verdict, shown_verdict

__all__ = ["SHOWN_ORDER", "shown", "counts", "summary_verdict", "must_coverage", "variant_key", "matrix",
           "summary_line"]

#: Verdicts as shown, worst first: a FAIL under a live deviation (DEVIATION) ranks after FAIL.
SHOWN_ORDER = [VERDICT_ORDER[0].value, VERDICT_ORDER[1].value, DEVIATION, *(v.value for v in VERDICT_ORDER[2:])]
_RAN = {Verdict.PASS.value, Verdict.FAIL.value, Verdict.WARN.value, Verdict.INFO.value}
_PROVIDERS = ["spnego-ntlm", "ntlm", "spnego-kerberos", "kerberos", "none"]


def shown(case: Mapping[str, Any]) -> str:
    """The case's verdict as the report shows it (DEVIATION for a FAIL under a live deviation)."""
    return shown_verdict(case["verdict"], case.get("deviation"))


def counts(document: Mapping[str, Any]) -> dict[str, int]:
    tally = Counter(shown(c) for c in document["cases"])
    return {v: tally[v] for v in SHOWN_ORDER if tally[v]}


def summary_verdict(document: Mapping[str, Any]) -> dict[str, Any]:
    """``state``: conformant / conformant-with-deviations / not-conformant / partial.
    A verdict is given only when every MUST case for the target's claims ran."""
    by_id = {c["id"]: c for c in document["cases"]}
    expected = document["run"]["expected_must_cases"]
    missing = [cid for cid in expected if cid not in by_id]
    unran = [cid for cid in expected if cid in by_id and by_id[cid]["verdict"] not in _RAN]
    tally = counts(document)
    if not expected or missing or unran:
        reasons = []
        if not expected:
            reasons.append("no MUST case applies to this target")
        if missing:
            reasons.append(f"{len(missing)} MUST case(s) not selected")
        if unran:
            kinds = Counter(by_id[cid]["verdict"] for cid in unran)
            reasons.append(", ".join(f"{n} MUST case(s) {v}" for v, n in kinds.items()))
        return {"state": "partial", "text": "Partial run — no verdict", "reasons": reasons}
    if tally.get("FAIL"):
        return {"state": "not-conformant", "text": "Not conformant",
                "reasons": [f"{tally['FAIL']} case(s) FAIL"]}
    if tally.get(DEVIATION):
        return {"state": "conformant-with-deviations", "text": "Conformant with deviations",
                "reasons": [f"{tally[DEVIATION]} failing case(s) covered by deviations"]}
    reasons = [f"all {len(expected)} MUST cases ran and passed"]
    if tally.get("WARN"):
        reasons.append(f"{tally['WARN']} SHOULD warning(s)")
    return {"state": "conformant", "text": "Conformant", "reasons": reasons}


def must_coverage(document: Mapping[str, Any]) -> tuple[int, int, list[str]]:
    """(covered, applicable, uncovered IDs): MUST requirements cited by the applicable MUST
    cases, and how many of them have at least one case that ran."""
    applicable = set(document["run"]["expected_must_requirements"])
    covered = {r["id"] for case in document["cases"] if case["verdict"] in _RAN
               for r in case["requirements"] if r["level"] == "MUST"}
    return len(applicable & covered), len(applicable), sorted(applicable - covered)


def variant_key(variant: Mapping[str, Any]) -> str:
    return f"{variant['provider']} L{variant['level']} I{variant['impersonation']}"


def matrix(document: Mapping[str, Any]) -> dict[str, Any]:
    """Rows: requirements (catalogue order); columns: provider x level x impersonation
    variants present in the run; a cell holds the worst verdict and the case count."""
    rank = {v: n for n, v in enumerate(SHOWN_ORDER)}
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    variants: set[tuple] = set()
    for case in document["cases"]:
        v = case["variant"]
        variants.add((_PROVIDERS.index(v["provider"]) if v["provider"] in _PROVIDERS else 99, v["provider"],
                      v["level"], v["impersonation"]))
        key = variant_key(v)
        verdict = shown(case)
        for req in case["requirements"]:
            cell = cells.setdefault(req["id"], {}).setdefault(key, {"verdict": verdict, "cases": 0})
            cell["cases"] += 1
            if rank[verdict] < rank[cell["verdict"]]:
                cell["verdict"] = verdict
    columns = [variant_key({"provider": p, "level": lvl, "impersonation": imp})
               for _, p, lvl, imp in sorted(variants)]
    rows = [rid for rid in document["requirements"] if rid in cells]
    return {"columns": columns, "rows": rows, "cells": cells}


def summary_line(record: dict[str, Any]) -> str:
    """The one-line form of a ladder record (terminal output, JUnit text)."""
    parts = [f"#{record['n']}", record["dir"], record["ptype"], f"call {record['call_id']}"]
    if "auth" in record:
        parts.append(f"auth {record['auth']['type']}/{record['auth']['level']}")
    parts += record.get("contexts", [])
    if "opnum" in record:
        parts.append(f"{record['interface']} opnum {record['opnum']}")
    if "fault" in record:
        parts.append(f"fault {record['fault']}")
    if record["protection"] in ("sealed", "signed"):
        parts.append(record["protection"])
    return " ".join(parts)
