"""How fast the commands that need no protocol stack start (issue 17, goal 1).

Each command runs as a whole process, interleaved with a baseline measured in the same run:
the bare interpreter (``python -c pass``).  Prints the medians and each command's ratio to
the baseline and its extra milliseconds, and which heavy modules the command imported.

    .venv/bin/python bench/bench_startup.py [--rounds 15] [--results RESULTS.json]

``--results``: a results.json for ``gate`` and ``report`` (default: a 12-case run made first).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HEAVY = ("scapy", "cryptography", "jinja2", "jsonschema", "conformance.refca", "conformance.judge")


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False)
    return time.perf_counter() - start


def _imports(args: list[str]) -> str:
    code = ("import sys, runpy; sys.argv = ['wcce-conformance', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('conformance', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True).stdout
    return next((line[6:] for line in out.splitlines() if line.startswith("HEAVY=")), "?") or "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--results", type=pathlib.Path)
    args = parser.parse_args()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="wcce-bench-startup-"))
    results = args.results
    if results is None:
        subprocess.run([sys.executable, "-m", "conformance", "run", "-q", "-k", "interface-version",
                        "--report-dir", str(scratch)], capture_output=True, check=True)
        results = next(scratch.glob("*/results.json"))
    commands = {
        "--help": ["--help"],
        "gate": ["gate", str(results)],
        "report": ["report", str(results), "--out", str(scratch / "report")],
        "cases --list": ["cases", "--list"],
    }
    baseline = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {name: [] for name in ["python -c pass", *commands]}
    for _ in range(args.rounds):  # interleaved: load changes hit every command alike
        times["python -c pass"].append(_timed(baseline))
        for name, argv in commands.items():
            times[name].append(_timed([sys.executable, "-m", "conformance", *argv]))
    base = statistics.median(times["python -c pass"])
    cases = sum(1 for _ in open(results)) and len(__import__("json").loads(results.read_text())["cases"])
    print(f"baseline python -c pass: {base * 1000:.0f} ms (median of {args.rounds}); results.json of {cases} cases")
    for name, argv in commands.items():
        median = statistics.median(times[name])
        print(f"{name:14s} {median * 1000:7.0f} ms = {median / base:5.1f}x the baseline, +{(median - base) * 1000:.0f} ms;"
              f" heavy imports: {_imports(argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
