"""The pytest side of a run: the target each process reaches, selection, the case items,
verdicts mapped onto pytest outcomes, and results.json at the end.

Imported by the plugin only when a session has conformance work to do, and even then
the protocol stack (the judge, the embedded CA) is imported only when the first case
runs, so the plugin costs an unrelated pytest session next to nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import time
import warnings

import pytest

from conformance.model.cases import Case, CaseError, parse_cases
from conformance.model.catalogue import catalogue_hash, spec_revisions
from conformance.model.deviations import find_deviation
from conformance.model.exitcodes import Exit
from conformance.model.profile import Claims
from conformance.model.results import CaseResult
from conformance.model.verdicts import Level, Verdict
from conformance.report.results import case_record, file_hash, now, repro_command, requirement_table, write_results
from conformance.report.summary import summary_line

__all__ = ["start_run", "WcceRun", "CaseFile", "CaseItem", "ShouldViolation", "SESSION", "strict", "header_lines",
           "tally_text"]

SESSION = pytest.StashKey["WcceRun"]()


def strict(config) -> bool:
    """pytest 9's ``--strict`` / ``strict = true``: everything strict, SHOULD included."""
    return bool(config.getini("strict"))


def tally_text(records) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["verdict"]] = counts.get(record["verdict"], 0) + 1
    return ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict if v.value in counts) or "none yet"


def header_lines(target, claims: Claims, total: int, workers: int, shard: str | None, mutant: str | None) -> list[str]:
    """What a run judges, said before it starts (sans-IO: the lines)."""
    if target is None:
        from conformance.targets.domain import DomainUnavailable, domain_wanted
        from conformance.targets.kdc import kdc_available

        try:
            kerberos = "the lab's AD domain LAB.TEST (Samba)" if domain_wanted() else \
                "a throwaway MIT realm LAB.TEST" if kdc_available() else "none (its cases N/A)"
        except DomainUnavailable as exc:
            kerberos = str(exc)
        what = (f"embedded reference CA{f' as mutant {mutant}' if mutant else ''}, one per worker on a loopback "
                f"address; Kerberos: {kerberos}")
    elif target.kind == "ca":
        what = f"CA {target.ca_name!r} at {target.host}:{target.activation_port}" + (
            f" ({target.description})" if target.description else "")
    else:
        what = f"{target.interface} at {target.host}:{target.activation_port} (plain DCE/RPC endpoint)"
    held = [name for name, value in dataclasses.asdict(claims).items() if value]
    cut = f", shard {shard}" if shard else ""
    return [f"target: {what}", f"claims: {', '.join(held) or 'none'}",
            f"{total} case(s){cut} on {workers} worker(s)"]


class ShouldViolation(pytest.PytestWarning):
    """A SHOULD requirement the target does not meet (WARN)."""


def start_run(config) -> "WcceRun":
    """Check the session's conformance options (one line each) and register its run."""
    from conformance.model.catalogue import load_catalogue
    from conformance.model.deviations import DeviationError, load_deviations
    from conformance.model.profile import ProfileError, load_profile

    opt = config.option
    try:
        catalogue = load_catalogue()
        deviations = load_deviations(opt.deviations) if opt.deviations else []
        target = None
        if opt.target is not None:
            if opt.mutant:
                raise ProfileError("--mutant runs the embedded CA; it cannot be combined with --target")
            target = load_profile(opt.target)
        elif opt.mutant:
            from conformance.mutation.server import MUTANTS

            if opt.mutant not in MUTANTS:
                raise ProfileError(f"unknown mutant {opt.mutant!r}; known: {', '.join(sorted(MUTANTS))}")
        for rid in opt.requirement:
            if rid not in catalogue:
                raise ProfileError(f"--requirement {rid}: not in the catalogue")
        for directory in opt.wcce_cases:
            if not pathlib.Path(directory).is_dir():
                raise ProfileError(f"--cases {directory}: not a directory")
        if opt.shard:
            from conformance.model.shards import ShardError, parse_shard

            try:
                parse_shard(opt.shard)
            except ShardError as exc:
                raise ProfileError(str(exc)) from None
    except (ProfileError, DeviationError) as exc:
        raise pytest.UsageError(str(exc)) from None
    if target is not None:
        deviations = [*deviations, *target.quirks]
        if not hasattr(config, "workerinput"):  # once, on the controller
            from conformance.judge.preflight import CredentialsRefused, preflight

            try:
                preflight(target)
            except CredentialsRefused as exc:
                raise pytest.UsageError(str(exc)) from None
    run = WcceRun(config, catalogue, target, deviations)
    config.stash[SESSION] = run
    config.pluginmanager.register(run, "wcce-conformance-run")
    return run


class WcceRun:
    """This process's run: the target (each xdist worker starts or reaches its own),
    the engine, and the results reported back (on the controller for xdist)."""

    def __init__(self, config, catalogue, target, deviations) -> None:
        self.config = config
        self.catalogue = catalogue
        self.profile_target = target
        self.deviations = deviations
        self.results: dict[str, dict] = {}  # node ID -> case record
        self.tables: set[pathlib.Path] = set()  # the case tables the results came from
        self.started = now()
        self.shard: dict | None = None  # index, count, selection hash, selected (set at collection)
        self._total: int | None = None  # cases this run will judge (known once collected)
        self._clock = 0.0
        self._next_progress = 1
        self._engine = None  # a conformance.judge.engine.Engine, made when the first case runs
        self._start_error: str | None = None
        self._stack = contextlib.ExitStack()

    def engine(self):
        if self._start_error is not None:
            raise TargetStartError(self._start_error)
        if self._engine is None:
            opt = self.config.option
            target = self.profile_target
            keys = None
            if target is None:
                from conformance.mutation.server import MUTANTS
                from conformance.targets.embedded import embedded_target
                from conformance.targets.domain import DomainUnavailable
                from conformance.targets.kdc import KdcError
                from conformance.targets.samba import SambaError

                try:
                    target, ca = self._stack.enter_context(embedded_target(
                        behaviour=MUTANTS[opt.mutant].behaviour() if opt.mutant else None, label=opt.mutant))
                except (OSError, KdcError, SambaError, DomainUnavailable) as exc:  # PortInUse, temp dir, KDC, DC: once
                    self._start_error = f"the embedded reference CA did not start: {exc}"
                    raise TargetStartError(self._start_error) from None
                keys = ca.service_keys
            if opt.evidence_dir is not None:
                opt.evidence_dir.mkdir(parents=True, exist_ok=True)
            from conformance.judge.engine import Engine

            self._engine = Engine(target, self.catalogue, evidence_dir=opt.evidence_dir, service_keys=keys)
            if opt.evidence_dir is not None and opt.evidence_secrets:
                from conformance.capture.secrets import write_worker_keys

                # the keys the engine reads the wire with: its accounts' NT hashes, the target's keytab
                write_worker_keys(opt.evidence_dir, target, self._engine.identities, self._engine.service_keys,
                                  os.environ.get("PYTEST_XDIST_WORKER") or "main")
        return self._engine

    # -- selection --------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        self._select(config, items)
        if config.option.shard:
            self._shard(config, items)

    def _shard(self, config, items) -> None:
        """Keep this shard's part of the selection (the same on every machine: the IDs and
        the shipped cost table decide it); a worker tells the controller what it cut."""
        from conformance.model.shards import assign, parse_shard, selection_hash

        shard = parse_shard(config.option.shard)
        ids = [item.case.id for item in items if isinstance(item, CaseItem)]
        part = assign(ids, shard.count)
        keep = [item for item in items if not isinstance(item, CaseItem) or part[item.case.id] == shard.index]
        drop = [item for item in items if item not in keep]
        self.shard = {"index": shard.index, "count": shard.count, "selection": selection_hash(ids),
                      "selected": len(ids)}
        if hasattr(config, "workeroutput"):
            config.workeroutput["wcce_shard"] = json.dumps(self.shard)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        """xdist: the controller collects nothing; its workers say what the shard was."""
        shard = getattr(node, "workeroutput", {}).get("wcce_shard")
        if shard and self.shard is None:
            self.shard = json.loads(shard)

    def _select(self, config, items) -> None:
        prefixes = tuple(config.option.case)
        wanted = set(config.option.requirement)
        if not prefixes and not wanted:
            return
        keep, drop = [], []
        for item in items:
            if not isinstance(item, CaseItem):
                (drop if wanted or prefixes else keep).append(item)
            elif item.case.matches(prefixes) and (not wanted or wanted & set(item.case.requirements)):
                keep.append(item)
            else:
                drop.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    # -- results --------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        # pytest renders setup errors as tracebacks; an ERROR verdict reads like a FAIL
        if call.when == "setup" and call.excinfo is not None and isinstance(
                call.excinfo.value, (CaseFailed, TargetStartError)):
            report.longrepr = item.repr_failure(call.excinfo)
        return report

    def pytest_runtest_logreport(self, report):
        for key, value in getattr(report, "user_properties", ()):
            if key == "wcce_result":
                self.results[report.nodeid] = json.loads(value)
                self.tables.add(self.config.rootpath / report.location[0])
                self._progress()

    # -- what a person reads while it runs ---------------------------------------------------

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            if getattr(reporter._tw, "width_of_current_line", 0):
                reporter.write("\n")  # after pytest's progress dots
            reporter.write_line(line)

    def pytest_collection_finish(self, session):
        if not hasattr(self.config, "workerinput"):  # xdist: the controller hears it from its workers
            self._announce(sum(isinstance(i, CaseItem) for i in session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self._announce(sum(".toml::" in i for i in ids))  # the case items among the session's

    def _announce(self, total: int) -> None:
        """The run's header: what is judged, how many cases, on how many workers."""
        if self._total is not None:
            return
        self._total = total
        self._next_progress = self._step()
        for line in header_lines(self.profile_target, self.claims(), total, self._workers(),
                                 self.config.option.shard, self.config.option.mutant):
            self._say(f"wcce-conformance: {line}")

    def _step(self) -> int:
        return max(10, (self._total or 0) // 10)  # a tenth of the run, and not every case of a small one

    def _workers(self) -> int:
        workers = getattr(self.config.option, "numprocesses", None)
        return workers if isinstance(workers, int) and workers > 0 else 1

    def _progress(self) -> None:
        """Every tenth of the run: counts by verdict so far and the time left (at the pace so
        far, measured from the first result).  Not in quiet mode (-qq)."""
        done = len(self.results)
        if done == 1:
            self._clock = time.monotonic()
        if self._total is None or self.config.option.verbose < -1 or done < self._next_progress:
            return
        self._next_progress = done + self._step()
        tally = tally_text(self.results.values())
        left = ""
        if done < self._total and done > 1:  # the pace between results: other tests may run first
            seconds = (time.monotonic() - self._clock) / (done - 1) * (self._total - done)
            left = f"; about {seconds:.0f} s left" if seconds < 120 else f"; about {seconds / 60:.0f} min left"
        self._say(f"wcce-conformance: {done}/{self._total} cases ({100 * done // max(1, self._total)} %): {tally}{left}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if hasattr(self.config, "workerinput"):
            return
        results = list(self.results.values())
        if self.config.option.evidence_dir is not None and results:
            from conformance.capture.secrets import finish_evidence

            finish_evidence(self.config.option.evidence_dir, secrets=self.config.option.evidence_secrets)
        path = self.config.option.wcce_results
        if path is not None:
            write_results(path, self.run_metadata(), requirement_table(self.catalogue), results)
        if session.exitstatus == 0 and any(r["verdict"] == Verdict.INCONCLUSIVE.value for r in results):
            session.exitstatus = Exit.CONNECTION

    def record(self, result: CaseResult, case: Case, deviation) -> dict:
        opt = self.config.option
        repro = repro_command(case.id, target=str(opt.target) if opt.target else None, mutant=opt.mutant,
                              deviations=str(opt.deviations) if opt.deviations else None,
                              strict=strict(self.config))
        root = opt.wcce_results.parent if opt.wcce_results else None
        record = case_record(result, case, self.catalogue, deviation, repro=repro, evidence_root=root)
        record["worker"] = os.environ.get("PYTEST_XDIST_WORKER")
        return record

    def claims(self) -> Claims:
        if self.profile_target is not None:
            return self.profile_target.claims
        from conformance.targets.claims import embedded_claims  # the reference CA itself is not imported

        return embedded_claims()

    def expected_must_cases(self) -> list[Case]:
        """The MUST cases of every table in the directories run, whose claims the target holds:
        a summary verdict needs all of them to have run."""
        claims = self.claims()
        tables = sorted({t for d in {t.parent for t in self.tables} for t in d.glob("*.toml")})
        try:
            universe = parse_cases(tables, self.catalogue)
        except CaseError:
            return []
        return [c for c in universe if any(self.catalogue[r].level is Level.MUST for r in c.requirements)
                and all(claims.holds(claim) for claim in c.claims)]

    def run_metadata(self) -> dict:
        import platform
        import socket
        import sys

        import scapy

        from conformance import __version__

        opt = self.config.option
        t = self.profile_target
        target = {"kind": "profile" if t else "embedded",
                  "description": (t.description or (f"{t.ca_name} at {t.host}" if t.kind == "ca" else
                                                   f"{t.interface} at {t.host}:{t.activation_port}")) if t else
                  "embedded reference CA" + (f" as mutant {opt.mutant}" if opt.mutant else ""),
                  "host": t.host if t else None, "activation_port": t.activation_port if t else None,
                  "ca_name": t.ca_name if t else None,
                  "profile": str(opt.target) if opt.target else None, "profile_hash": file_hash(opt.target),
                  "mutant": opt.mutant, "claims": dataclasses.asdict(self.claims())}
        expected = self.expected_must_cases()
        must_requirements = sorted({r for c in expected for r in c.requirements
                                    if self.catalogue[r].level is Level.MUST})
        workers = getattr(opt, "numprocesses", None)
        return {
            "id": self.config.option.wcce_results.parent.name if opt.wcce_results else "pytest",
            "suite_version": __version__, "spec": spec_revisions(), "catalogue_hash": catalogue_hash(),
            "target": target, "started": self.started, "finished": now(),
            "command": list(sys.argv), "python": platform.python_version(), "scapy": scapy.VERSION,
            "hostname": socket.gethostname(), "workers": workers if isinstance(workers, int) and workers > 0 else 1,
            "strict": strict(self.config),
            "deviations": str(opt.deviations) if opt.deviations else None,
            "deviations_hash": file_hash(opt.deviations),
            "selection": {"case": list(opt.case), "requirement": list(opt.requirement),
                          "keyword": opt.keyword or None},
            "expected_must_cases": sorted(c.id for c in expected),
            "expected_must_requirements": must_requirements,
            "shard": self.shard,
            "case_dirs": [str(d) for d in opt.wcce_cases],
        }

    def pytest_terminal_summary(self, terminalreporter):
        results = list(self.results.values())
        if not results:
            return
        counts: dict[str, int] = {}
        for r in results:
            counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        summary = ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict if v.value in counts)
        terminalreporter.write_sep("-", f"wcce-conformance: {len(results)} cases: {summary}")
        for r in results:
            dev = r["deviation"]
            if dev and r["verdict"] == Verdict.FAIL.value:
                state = "EXPIRED, counted as FAIL" if dev["expired"] else f"accepted until {dev['expires']}"
                terminalreporter.write_line(f"deviation ({state}): {r['id']}: {dev['reason']}")
        for deviation in self.deviations:  # a waiver nobody needs any more should be removed
            covered = [r for r in results if deviation.covers(r["id"])]
            if not covered:
                terminalreporter.write_line(f"deviation matches no case that ran: {deviation.case}")
            elif all(r["verdict"] != Verdict.FAIL.value for r in covered):
                terminalreporter.write_line(f"deviation not needed (its cases did not fail): {deviation.case}")
        if self.config.option.mutant:
            terminalreporter.write_line(f"target: embedded reference CA as mutant {self.config.option.mutant}")

    def pytest_unconfigure(self, config):
        self._stack.close()


class TargetStartError(Exception):
    pass


class CaseFile(pytest.File):
    def collect(self):
        from conformance.judge.tables import load_cases

        run = self.config.stash[SESSION]
        try:
            cases = load_cases([self.path], run.catalogue)
        except CaseError as exc:
            raise self.CollectError(str(exc)) from None
        for case in cases:
            yield CaseItem.from_parent(self, name=case.id, case=case)


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.result: CaseResult | None = None
        self.add_marker("wcce_case")

    def reportinfo(self):
        return self.path, self.case.line, self.case.id

    def setup(self) -> None:
        # The case runs here so that an ERROR verdict is a pytest error, not a failure.
        run = self.config.stash[SESSION]
        self.result = result = run.engine().run(self.case)
        deviation = find_deviation(run.deviations, self.case.id)
        self.record = run.record(result, self.case, deviation)
        self.user_properties.append(("wcce_result", json.dumps(self.record)))
        if result.verdict is Verdict.ERROR:
            raise CaseFailed(result)

    def runtest(self) -> None:
        result = self.result
        run = self.config.stash[SESSION]
        verdict = result.verdict
        deviation = find_deviation(run.deviations, self.case.id)
        if verdict is Verdict.FAIL and deviation is not None and not deviation.expired():
            pytest.xfail(f"deviation until {deviation.expires}: {deviation.reason}")
        if verdict is Verdict.FAIL or (verdict is Verdict.WARN and strict(self.config)):
            raise CaseFailed(result, deviation)
        if verdict is Verdict.WARN:
            warnings.warn(ShouldViolation(f"{self.case.id}: {result.reason}"))
        if verdict in (Verdict.NA, Verdict.INCONCLUSIVE):
            # Reported at the case's line in its table, not at this line.
            raise pytest.skip.Exception(f"{verdict.value}: {self.case.id}: {result.reason}",
                                        _use_item_location=True)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFailed):
            return _explain(excinfo.value, self.case, self.config.stash[SESSION].catalogue)
        if isinstance(excinfo.value, TargetStartError):
            return f"ERROR {self.case.id}: {excinfo.value}"
        return super().repr_failure(excinfo)


class CaseFailed(Exception):
    def __init__(self, result: CaseResult, deviation=None) -> None:
        super().__init__(result.verdict.value)
        self.result = result
        self.deviation = deviation


def _explain(failure: CaseFailed, case: Case, catalogue) -> str:
    """h2spec-style: the case, each requirement's text, expected alternatives vs actual."""
    result = failure.result
    lines = [f"{result.verdict.value} {case.id}" + (f": {case.title}" if case.title != case.id else "")]
    for rid in case.requirements:
        req = catalogue[rid]
        lines.append(f"  -> {rid} ({req.level.value}, {req.section}): {req.text}")
    lines.append(f"     Expected: {case.expect[0]}")
    lines += [f"               {alt}" for alt in case.expect[1:]]
    lines.append(f"       Actual: {result.actual}")
    for check in result.checks:
        if check.verdict in (Verdict.FAIL, Verdict.WARN, Verdict.ERROR):
            lines.append(f"     Check {check.check} ({check.requirement}) {check.verdict.value}: "
                         f"expected {' / '.join(check.expected)}; actual {check.actual}; "
                         f"PDUs {list(check.evidence)}")
    if result.reason:
        lines.append(f"       Reason: {result.reason}")
    if failure.deviation is not None:
        lines.append(f"    Deviation: EXPIRED {failure.deviation.expires}: {failure.deviation.reason}")
    if result.ladder:
        lines.append("     PDUs:")
        lines += [f"       {summary_line(record)}" for record in result.ladder]
    if result.pcap:
        lines.append(f"     pcapng: {result.pcap}")
    return "\n".join(lines)
