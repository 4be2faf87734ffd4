"""``wcce-conformance run``: every case through the pytest plugin, into a run directory.

Writes ``<report-dir>/<run-id>/results.json``, ``junit.xml`` and ``pcap/<case>.pcapng``;
the exit status is pytest's (0 all verified, 1 a case failed, 4 usage) or the
plugin's EXIT_INCONCLUSIVE (6) when a case could not reach the target.
"""

from __future__ import annotations

import datetime
import secrets
import sys

import pytest

from conformance.casebook import CASES_DIR, case_files
from conformance.profile import ProfileError, load_profile

__all__ = ["run_suite", "pytest_arguments"]

EXIT_USAGE = 2


def pytest_arguments(args, run_dir) -> list[str]:
    argv = [str(CASES_DIR), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            "--wcce-results", str(run_dir / "results.json"),
            "--evidence-dir", str(run_dir / "pcap"),
            "--junitxml", str(run_dir / "junit.xml"), "-o", "junit_family=xunit2"]
    if args.workers > 1:
        argv += ["-n", str(args.workers)]
    if args.keyword:
        argv += ["-k", args.keyword]
    for option in ("case", "requirement"):
        for value in getattr(args, option):
            argv += [f"--{option}", value]
    if args.target:
        argv += ["--target", str(args.target)]
    if args.mutant:
        argv += ["--mutant", args.mutant]
    if args.deviations:
        argv += ["--deviations", str(args.deviations)]
    if args.strict:
        argv.append("--strict")
    return argv


def run_suite(args, *, out=sys.stderr) -> int:
    try:
        case_files()
        if args.target:
            load_profile(args.target)  # validated here too: one line, exit 2
    except (ProfileError, ValueError) as exc:
        print(f"wcce-conformance: error: {exc}", file=out)
        return EXIT_USAGE
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.report_dir / f"{stamp}-{secrets.token_hex(2)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    status = int(pytest.main(pytest_arguments(args, run_dir)))
    print(f"wcce-conformance: results in {run_dir}/ (results.json, junit.xml, pcap/); "
          f"exit status {status}", file=out)
    return status
