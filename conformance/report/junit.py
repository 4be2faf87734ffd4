"""JUnit XML from results.json: one ``testsuite`` per case table, ``name`` = the case ID.

Valid against the Jenkins/Surefire ``junit-10.xsd`` and shaped as the Apache Ant
schema wants too (``properties``, ``testcase*``, ``system-out``, ``system-err`` in
that order; ``package`` and ``id`` on aggregated suites; timestamps without zone).
FAIL is a ``failure``, ERROR an ``error``; N/A, INCONCLUSIVE and a FAIL under a live
deviation are ``skipped`` with the reason; WARN passes (``failure`` under strict).
"""

from __future__ import annotations

import datetime
import pathlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from conformance.model.verdicts import DEVIATION
from conformance.report.summary import shown, summary_line

__all__ = ["write_junit"]


def _timestamp(iso: str) -> str:
    moment = datetime.datetime.fromisoformat(iso).astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _text(case: Mapping[str, Any], requirements: Mapping[str, Any]) -> str:
    lines = [f"{case['verdict']} {case['id']}: {case['title']}"]
    for r in case["requirements"]:
        req = requirements.get(r["id"], {})
        lines.append(f"  -> {r['id']} ({r['level']}, {req.get('section', '')}): {req.get('text', '')}")
    lines.append(f"Expected: {' | '.join(case['expected'])}")
    lines.append(f"Actual:   {case['actual']}")
    if case["reason"]:
        lines.append(f"Reason:   {case['reason']}")
    lines += [f"Hint:     {d}" for d in case["diagnosis"]]
    lines += [f"  {summary_line(p)}" for p in case["evidence"]["ladder"]]
    if case["evidence"]["pcap"]:
        lines.append(f"pcapng: {case['evidence']['pcap']}")
    lines.append(f"Repro: {case['repro']}")
    return "\n".join(lines)


def _testcase(parent: ET.Element, case: Mapping[str, Any], requirements, strict: bool, suite: str) -> str:
    node = ET.SubElement(parent, "testcase", name=case["id"], classname=f"wcce-conformance.{suite}",
                         time=f"{case['seconds']:.3f}")
    verdict = case["verdict"]
    deviation = case.get("deviation")
    if shown(case) == DEVIATION:
        ET.SubElement(node, "skipped", message=f"deviation until {deviation['expires']}: {deviation['reason']}")
        return "skipped"
    if verdict == "FAIL" or (verdict == "WARN" and strict):
        failure = ET.SubElement(node, "failure", type=verdict, message=f"expected {' | '.join(case['expected'])}; "
                                f"actual {case['actual']}")
        failure.text = _text(case, requirements)
        return "failure"
    if verdict == "ERROR":
        error = ET.SubElement(node, "error", type="ERROR", message=case["actual"][:500])
        error.text = _text(case, requirements)
        return "error"
    if verdict in ("N/A", "INCONCLUSIVE"):
        ET.SubElement(node, "skipped", message=f"{verdict}: {case['reason']}")
        return "skipped"
    return "passed"


def write_junit(document: Mapping[str, Any], out: pathlib.Path) -> pathlib.Path:
    run = document["run"]
    root = ET.Element("testsuites", name="wcce-conformance")
    suites: dict[str, list] = {}
    for case in document["cases"]:
        suites.setdefault(pathlib.PurePath(case["source"]).stem, []).append(case)
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for number, (name, cases) in enumerate(sorted(suites.items())):
        suite = ET.SubElement(root, "testsuite", name=name, package="wcce-conformance", id=str(number),
                              timestamp=_timestamp(run["started"]), hostname=run.get("hostname") or "localhost")
        properties = ET.SubElement(suite, "properties")
        for key, value in (("suite_version", run["suite_version"]), ("catalogue_hash", run["catalogue_hash"]),
                           ("target", run["target"]["description"]), ("run_id", run["id"]),
                           *((f"spec.{doc}", rev) for doc, rev in run["spec"].items())):
            ET.SubElement(properties, "property", name=key, value=str(value))
        tally = {"failure": 0, "error": 0, "skipped": 0, "passed": 0}
        for case in cases:
            tally[_testcase(suite, case, document["requirements"], run["strict"], name)] += 1
        seconds = sum(c["seconds"] for c in cases)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(tally["failure"]))
        suite.set("errors", str(tally["error"]))
        suite.set("skipped", str(tally["skipped"]))
        suite.set("time", f"{seconds:.3f}")
        ET.SubElement(suite, "system-out").text = ""
        ET.SubElement(suite, "system-err").text = ""
        totals["tests"] += len(cases)
        totals["failures"] += tally["failure"]
        totals["errors"] += tally["error"]
        totals["time"] += seconds
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", f"{totals['time']:.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out
