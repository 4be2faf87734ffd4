"""Diagnosis hints from ``diagnoses.toml``: what an observed code means, why a check or a
requirement usually fails.  Data, not code: add a code by adding an entry."""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from collections.abc import Mapping
from typing import Any

__all__ = ["diagnose", "hints"]


@functools.cache
def hints() -> dict[str, dict[str, str]]:
    text = importlib.resources.files("conformance.report").joinpath("diagnoses.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return {"code": {e["outcome"]: f"{e['outcome']} = {e['name']}: {e['hint']}" for e in data.get("code", [])},
            "check": {e["check"]: e["hint"] for e in data.get("check", [])},
            "requirement": {e["id"]: e["hint"] for e in data.get("requirement", [])}}


def diagnose(record: Mapping[str, Any]) -> list[str]:
    """Hints for one case record, most specific first: the requirement a failed outcome
    breaks, failing checks, then what the observed code means."""
    table = hints()
    out: list[str] = []
    failed = record["verdict"] in ("FAIL", "WARN")
    if failed and record.get("outcome_matched") is False and record["actual"] == "accept" \
            and "accept" not in record["expected"]:  # the target accepted what it must refuse
        out += [table["requirement"][r["id"]] for r in record["requirements"] if r["id"] in table["requirement"]]
    for check in record.get("checks", ()):
        if check["verdict"] in ("FAIL", "WARN") and check["check"] in table["check"]:
            out.append(f"{check['check']}: {table['check'][check['check']]}")
    observed = record["actual"].removeprefix("activation ").removeprefix("submit ").removeprefix("retrieve ")
    if observed in table["code"]:
        out.append(table["code"][observed])
    if record["verdict"] == "INCONCLUSIVE":
        out.append("The target could not be reached: check the host and port in the profile, that TCP 135 and "
                   "the dynamic RPC range are open, and that the CA service runs.")
    return list(dict.fromkeys(out))
