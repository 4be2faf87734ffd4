"""The report at scale: a synthetic 10k-case results.json (cloned from a real run against
the embedded reference CA) rendered to HTML, its size, and its open time in headless
Chromium — each as a ratio to a baseline measured in the same run.

    .venv/bin/python bench/bench_report.py [--cases 10000] [--results RESULTS.json]

Baselines: render time vs ``json.dumps`` of the same document; report size vs that
JSON's size; open time (the page's own ready mark, ``performance.now()`` when the first
page and the matrix are drawn) vs the real run's report, and the browser's wall time vs
a blank page.  Targets (issue 5): render <= 5 s, report <= 20 MB, opens <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance.report.html import render_html  # noqa: E402
from conformance.report.results import load_results  # noqa: E402
from conformance.testkit.synthetic import synthesize  # noqa: E402
from tests.support.browser import load  # noqa: E402


def real_results(scratch: pathlib.Path) -> pathlib.Path:
    subprocess.run([sys.executable, "-m", "conformance", "run", "--report-dir", str(scratch), "-n", "2"],
                   check=True, capture_output=True, cwd=REPO)
    (run,) = [p for p in scratch.iterdir() if p.is_dir()]
    return run / "results.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--results", type=pathlib.Path, help="a real results.json (default: run the suite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = pathlib.Path(scratch_name)
        source = args.results or real_results(scratch / "run")
        real = load_results(source)
        document = synthesize(real, args.cases)

        start = time.perf_counter()
        raw = json.dumps(document, separators=(",", ":"))
        dump_s = time.perf_counter() - start
        start = time.perf_counter()
        report = render_html(document, scratch / "report.html")
        render_s = time.perf_counter() - start
        size = report.stat().st_size

        small = render_html(real, scratch / "real.html")
        blank = scratch / "blank.html"
        blank.write_text("<!DOCTYPE html><title>blank</title><p>blank")
        blank_page, real_page, big_page = load(blank), load(small), load(report)
        last = document["cases"][-1]["id"]
        case_page = load(report, {"case": last})
        for page in (real_page, big_page, case_page):
            if page.attribute("data-js-errors") != "0":
                sys.exit("the report raised a script error")
        real_ms, big_ms = int(real_page.attribute("data-ready")), int(big_page.attribute("data-ready"))
        case_ms = int(case_page.attribute("data-ready"))

    print(f"cases: {args.cases} synthetic (from {len(real['cases'])} real)")
    print(f"render: {render_s:.2f} s = {render_s / dump_s:.1f}x json.dumps of the document ({dump_s:.2f} s)"
          f"  [target <= 5 s]")
    print(f"size: {size / 2**20:.1f} MiB = {size / len(raw):.3f}x the results JSON ({len(raw) / 2**20:.1f} MiB)"
          f"  [target <= 20 MB]")
    print(f"open: ready at {big_ms} ms = {big_ms / max(real_ms, 1):.1f}x the {len(real['cases'])}-case report "
          f"({real_ms} ms); with the last case opened {case_ms} ms  [target <= 2 s]")
    print(f"browser wall time: {big_page.seconds:.2f} s = {big_page.seconds / blank_page.seconds:.2f}x a blank page "
          f"({blank_page.seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
