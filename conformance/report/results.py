"""results.json: the source of truth of a run, and its JSON Schema (``results.schema.json``).

The pytest plugin builds one record per case (:func:`case_record`) on whichever
process ran it, and the controller writes the document (:func:`write_results`)
with the run's metadata.  The HTML report, JUnit XML and the gate read it back
with :func:`load_results`, which validates it against the shipped schema.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.resources
import json
import pathlib
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from conformance.report.diagnosis import diagnose

__all__ = ["SCHEMA_ID", "ResultsError", "case_record", "repro_command", "write_results", "load_results",
           "schema", "schema_error", "file_hash", "requirement_table", "now"]

SCHEMA_ID = "https://wcce-conformance.invalid/schema/results-1.json"


class ResultsError(ValueError):
    """A results file that cannot be read or does not match the schema, in one line."""


def schema() -> dict[str, Any]:
    text = importlib.resources.files("conformance.report").joinpath("results.schema.json").read_text("utf-8")
    return json.loads(text)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def file_hash(path: pathlib.Path | None) -> str | None:
    """sha256 of a profile or deviations file: they name environment variables, never secrets."""
    if path is None:
        return None
    return "sha256:" + hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def repro_command(case_id: str, *, target: str | None = None, mutant: str | None = None,
                  deviations: str | None = None, strict: bool = False) -> str:
    argv = ["wcce-conformance", "run", "--case", f"{case_id}$"]
    if target:
        argv += ["--target", target]
    if mutant:
        argv += ["--mutant", mutant]
    if deviations:
        argv += ["--deviations", deviations]
    if strict:
        argv.append("--strict")
    return shlex.join(argv)


def case_record(result, case, catalogue, deviation, *, repro: str, evidence_root: pathlib.Path | None) -> dict:
    """One case's entry; ``result`` is an engine CaseResult, ``case`` its casebook Case."""
    pcap = result.pcap
    if pcap is not None and evidence_root is not None:
        try:  # relative to the run directory, so the report can link it wherever it is copied
            pcap = str(pathlib.Path(pcap).resolve().relative_to(evidence_root.resolve()))
        except ValueError:
            pass
    checks = [{"check": c.check, "requirement": c.requirement, "verdict": c.verdict.value,
               "expected": list(c.expected), "actual": c.actual, "evidence": list(c.evidence)}
              for c in result.checks]
    record = {
        "id": case.id, "title": case.title, "source": case.source, "kind": case.kind, "method": case.method,
        "requirements": [{"id": r, "level": catalogue[r].level.value} for r in case.requirements],
        "level": result.level.value, "claims": list(case.claims),
        "variant": case.variant,
        "settings": {k: v if isinstance(v, (int, bool, str)) or v is None else str(v)
                     for k, v in case.client.items()},
        "verdict": result.verdict.value, "expected": list(case.expect), "actual": result.actual,
        "outcome_matched": result.outcome_matched, "reason": result.reason,
        "checks": checks,
        "evidence": {"pcap": pcap, "connections": list(result.connections), "ladder": list(result.ladder)},
        "deviation": None if deviation is None else {
            "case": deviation.case, "reason": deviation.reason, "expires": deviation.expires.isoformat(),
            "expired": deviation.expired(),
            "applied": result.verdict.value == "FAIL" and not deviation.expired()},
        "repro": repro, "seconds": round(result.seconds, 3),
    }
    situation = getattr(case, "situation", None)
    if situation is not None:
        record["situation"] = {"id": situation.id, "confidence": situation.confidence.value,
                               "windows": list(situation.windows), "connection": situation.connection.value,
                               "sources": list(situation.sources)}
    record["diagnosis"] = diagnose(record)
    return record


def requirement_table(catalogue) -> dict[str, dict[str, Any]]:
    return {r.id: {"level": r.level.value, "section": r.section, "binds": r.binds, "text": r.text,
                   "checks": list(r.checks)} for r in catalogue.values()}


def write_results(path: pathlib.Path, run: Mapping[str, Any], requirements: Mapping[str, Any],
                  cases: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    document = {"$schema": SCHEMA_ID, "run": dict(run), "requirements": dict(requirements),
                "cases": sorted(cases, key=lambda c: c["id"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    return document


@functools.lru_cache(maxsize=1)
def _accepts():
    """The schema compiled to Python (fastjsonschema; formats unchecked, as jsonschema leaves
    them): a full run's document in ~0.2 s where jsonschema takes ~2.5 s."""
    import fastjsonschema

    return fastjsonschema.compile(schema(), use_formats=False)


def schema_error(document: Any) -> tuple[str, str] | None:
    """Where ``document`` breaks the schema and how (``("(top)", message)``), or None.

    The compiled validator accepts; only a document it refuses is walked by jsonschema, whose
    verdict stands and whose best match names the error (so a fast-path quirk could cost
    time, never a verdict: tests/unit/report/test_schema_paths.py holds them to agreement)."""
    import fastjsonschema

    try:
        _accepts()(document)
        return None
    except fastjsonschema.JsonSchemaException:
        pass
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(document))
    if error is None:
        return None
    return "/".join(str(p) for p in error.absolute_path) or "(top)", error.message


def load_results(path: pathlib.Path) -> dict[str, Any]:
    try:
        document = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"cannot read results {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"results {path} is not JSON: {exc}") from None
    error = schema_error(document)
    if error is not None:
        where, message = error
        raise ResultsError(f"results {path} do not match the schema at {where}: {message[:200]}")
    return document
