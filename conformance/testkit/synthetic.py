"""A synthetic results document of any size, made from a real one: its cases are cloned
with new IDs and a spread of verdicts, evidence kept.  For the report's scale tests and
benchmark (10k cases); never written into a real run."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

__all__ = ["synthesize"]

_SPREAD = ["PASS"] * 80 + ["FAIL"] * 6 + ["WARN"] * 3 + ["N/A"] * 6 + ["INCONCLUSIVE"] * 3 + ["ERROR"] * 2


def synthesize(document: Mapping[str, Any], size: int, *, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    real = document["cases"]
    if not real:
        raise ValueError("the source document has no cases")
    cases = []
    for n in range(size):
        case = copy.deepcopy(real[n % len(real)])
        case["id"] = f"{case['id']}/synthetic-{n:05d}"
        case["verdict"] = rng.choice(_SPREAD)
        case["repro"] = case["repro"].replace(real[n % len(real)]["id"], case["id"])
        cases.append(case)
    run = dict(document["run"], id=f"synthetic-{size}", expected_must_cases=[c["id"] for c in cases
                                                                              if c["level"] == "MUST"])
    return {**document, "run": run, "cases": cases}
