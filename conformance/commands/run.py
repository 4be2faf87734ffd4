"""``wcce-conformance run``, ``report`` and ``gate``: the main job and what it writes.

``run`` runs every case through the pytest plugin into ``<report-dir>/<run-id>/``
(``results.json``, ``pcap/<case>.pcapng``), then renders ``report.html`` and
``junit.xml`` from results.json and applies the gate policy (the default one, or
``--policy``).  Exit codes: :mod:`conformance.model.exitcodes`.
"""

from __future__ import annotations

import datetime
import pathlib
import secrets
import sys

from conformance.model.exitcodes import Exit
from conformance.report.gate import Policy, PolicyError, evaluate, load_policy

__all__ = ["run_suite", "pytest_arguments", "render_outputs", "apply_gate", "report_command", "gate_command",
           "merge_command", "cases_command"]


def pytest_arguments(args, run_dir: pathlib.Path) -> list[str]:
    from conformance.model.cases import CASES_DIR

    argv = [str(CASES_DIR), *(str(d) for d in args.case_dirs), "-p", "no:cacheprovider", "-o", "addopts=",
            "-qq" if getattr(args, "quiet", False) else "-q",
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "--wcce-results", str(run_dir / "results.json"), "--evidence-dir", str(run_dir / "pcap")]
    for directory in args.case_dirs:
        argv += ["--wcce-cases", str(directory)]
    if args.shard:
        argv += ["--shard", args.shard]
    if getattr(args, "evidence_secrets", False):
        argv.append("--evidence-secrets")
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


def render_outputs(document, directory: pathlib.Path) -> list[pathlib.Path]:
    from conformance.report.html import render_html
    from conformance.report.junit import write_junit

    return [render_html(document, directory / "report.html"), write_junit(document, directory / "junit.xml")]


def apply_gate(document, policy: Policy, out) -> int:
    """Print the summary and the gate's findings; the exit code."""
    from conformance.report.summary import counts, summary_verdict

    code, findings = evaluate(document, policy)
    summary = summary_verdict(document)
    tally = ", ".join(f"{n} {v}" for v, n in counts(document).items())
    print(f"wcce-conformance: {summary['text']} ({'; '.join(summary['reasons'])}); {tally}", file=out)
    for finding in findings:
        print(f"wcce-conformance: gate: {finding.text}", file=out)
    print(f"wcce-conformance: exit status {int(code)} ({Exit(code).meaning})", file=out)
    return code


def _usage(message: str, out) -> int:
    print(f"wcce-conformance: error: {message}", file=out)
    return Exit.USAGE


def run_suite(args, *, out=sys.stderr) -> int:
    import pytest

    from conformance.model.cases import CaseError
    from conformance.model.profile import ProfileError, load_profile
    from conformance.report.results import ResultsError, load_results

    try:
        from conformance.judge.tables import load_cases
        from conformance.model.catalogue import load_catalogue
        from conformance.model.shards import ShardError, parse_shard

        # the user's tables are validated with the shipped ones (an ID used twice is one line)
        load_cases(_tables(args), load_catalogue())
        if args.shard:
            parse_shard(args.shard)
        if args.target:
            load_profile(args.target)  # validated here too: one line, exit 2
        policy = load_policy(args.policy) if args.policy else Policy(
            max_should_warnings=0 if args.strict else None)
    except (ProfileError, PolicyError, CaseError, ShardError) as exc:
        return _usage(str(exc), out)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.report_dir / f"{stamp}-{secrets.token_hex(2)}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _usage(f"cannot create {run_dir}: {exc.strerror}", out)
    status = int(pytest.main(pytest_arguments(args, run_dir)))
    results = run_dir / "results.json"
    if not results.exists():  # pytest stopped before any case: usage, internal error, nothing selected
        return {3: Exit.SUITE, 5: Exit.PARTIAL}.get(status, Exit.USAGE)
    try:
        document = load_results(results)
    except ResultsError as exc:
        print(f"wcce-conformance: error: {exc}", file=out)
        return Exit.SUITE
    for path in render_outputs(document, run_dir):
        print(f"wcce-conformance: wrote {path}", file=out)
    code = apply_gate(document, policy, out)
    if status == 2 and code == Exit.OK:  # a table failed to collect: not a complete run
        code = Exit.USAGE
    return code


def report_command(args, *, out=sys.stderr) -> int:
    from conformance.report.results import ResultsError, load_results

    if len(args.results) != 1:
        return _usage("report takes one RESULTS.json (to join several: report merge A.json B.json… --out DIR)", out)
    results = pathlib.Path(args.results[0])
    try:
        document = load_results(results)
    except ResultsError as exc:
        return _usage(str(exc), out)
    directory = args.out or results.parent
    for path in render_outputs(document, directory):
        print(f"wcce-conformance: wrote {path}", file=out)
    return Exit.OK


def merge_command(args, *, out=sys.stderr) -> int:
    """``report merge A.json B.json… --out DIR``: one results.json, report.html and junit.xml."""
    from conformance.report.merge import MergeError, merge_results
    from conformance.report.results import ResultsError, load_results, write_results

    paths = [pathlib.Path(p) for p in args.results[1:]]
    if args.out is None:
        return _usage("report merge needs --out DIR (where the merged results go)", out)
    try:
        documents = [load_results(p) for p in paths]
        merged = merge_results(documents, names=[str(p) for p in paths])
    except (ResultsError, MergeError) as exc:
        return _usage(str(exc), out)
    results = args.out / "results.json"
    document = write_results(results, merged["run"], merged["requirements"], merged["cases"])
    print(f"wcce-conformance: merged {len(paths)} results ({len(document['cases'])} cases) into {results}", file=out)
    for path in render_outputs(load_results(results), args.out):
        print(f"wcce-conformance: wrote {path}", file=out)
    return Exit.OK


def cases_command(args, *, out=sys.stdout) -> int:
    """``cases --list``: what a run would include (ID, requirements, table), after the same
    validation a run does."""
    from conformance.model.cases import CaseError
    from conformance.model.catalogue import load_catalogue
    from conformance.judge.tables import load_cases

    try:
        cases = load_cases(_tables(args), load_catalogue())
    except CaseError as exc:
        return _usage(str(exc), sys.stderr)
    prefixes, wanted = tuple(args.case), set(args.requirement)
    shown = [c for c in cases if c.matches(prefixes) and (not wanted or wanted & set(c.requirements))]
    for case in sorted(shown, key=lambda c: c.id):
        print(f"{case.id}\t{','.join(case.requirements)}\t{case.source}", file=out)
    print(f"{len(shown)} case(s)", file=sys.stderr)
    return Exit.OK


def _tables(args) -> list[pathlib.Path]:
    """The shipped case tables and the user's (--cases DIR), as a run collects them."""
    from conformance.model.cases import case_files

    return case_files() + [f for d in args.case_dirs for f in _user_tables(d)]


def _user_tables(directory: pathlib.Path) -> list[pathlib.Path]:
    from conformance.model.cases import CaseError

    if not directory.is_dir():
        raise CaseError(f"--cases {directory}: not a directory")
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise CaseError(f"--cases {directory}: no case tables (*.toml)")
    return files


def gate_command(args, *, out=sys.stderr) -> int:
    from conformance.report.results import ResultsError, load_results

    try:
        document = load_results(args.results)
        policy = load_policy(args.policy) if args.policy else Policy()
    except (ResultsError, PolicyError) as exc:
        return _usage(str(exc), out)
    return apply_gate(document, policy, out)
