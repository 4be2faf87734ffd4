"""The self-contained HTML compliance report, rendered from results.json with Jinja2.

Fast at 10k cases: the page carries a compact index (one short row a case) that the
browser pages through; each case's detail (checks, PDU ladder, decoded fields, hex)
sits in gzip+base64 chunks of CHUNK cases, inflated only when a case is opened
(``DecompressionStream``).  No external resource: it works offline and from a file.
"""

from __future__ import annotations

import base64
import gzip
import json
import pathlib
from collections.abc import Mapping
from typing import Any

import jinja2

from conformance.report.summary import counts, matrix, must_coverage, shown, summary_verdict, variant_key

__all__ = ["render_html", "CHUNK"]

CHUNK = 200  # cases per detail chunk


def _index_row(case: Mapping[str, Any]) -> list[Any]:
    return [case["id"], shown(case), " ".join(r["id"] for r in case["requirements"]),
            variant_key(case["variant"]), " | ".join(case["expected"]), case["actual"], case["level"],
            case["title"]]


def _chunk(cases: list[Mapping[str, Any]]) -> str:
    raw = json.dumps(cases, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("conformance.report", "templates"),
                              autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(document: Mapping[str, Any], out: pathlib.Path) -> pathlib.Path:
    cases = document["cases"]
    covered, applicable, uncovered = must_coverage(document)
    meta = {"run": document["run"], "requirements": document["requirements"], "chunk": CHUNK}
    html = _environment().get_template("report.html.j2").render(
        run=document["run"], requirements=document["requirements"], summary=summary_verdict(document),
        counts=counts(document), total=len(cases), coverage={"covered": covered, "applicable": applicable,
                                                              "uncovered": uncovered},
        matrix=matrix(document), meta=meta, index=[_index_row(c) for c in cases],
        chunks=[_chunk(cases[i:i + CHUNK]) for i in range(0, len(cases), CHUNK)])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
