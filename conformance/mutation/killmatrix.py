"""The mutant kill matrix: every mutant must be caught by the cases of the
requirement it breaks, and must not make anything else fail.

Server mutants (``conformance.mutation.server``) run the whole case suite against a
mutated reference CA.  Client mutants are modes of the driven client; each runs
the client scenario against the (unmutated) reference CA and the client-side
checks of the catalogue judge its wire.

A case failure is *attributed* to a requirement when its outcome did not match
and the case cites the requirement, or when a failing check verifies it.  A case whose
protected responses do not verify has its outcome not judged
(:mod:`conformance.judge.decide`): its failure names RPCE-PROT-02, not what it cites.

Each row says how well the failures name the mutant's requirement (*attribution*): of
the cases (or client checks) that fail, how many are attributed to it, and how many to
it alone — a mutant can be killed while most of its failures blame something else,
which is what a vendor reading the report would chase.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping

from conformance.capture.tap import Tap
from conformance.client import methods
from conformance.client.session import WcceSession
from conformance.judge.checks import CheckContext, run_check
from conformance.judge.engine import Engine
from conformance.judge.settings import settings_for
from conformance.model.cases import Case
from conformance.model.catalogue import Requirement
from conformance.model.results import CaseResult
from conformance.model.verdicts import Level, Verdict
from conformance.mutation.client import CLIENT_BASELINE, CLIENT_MUTANTS, ClientMutant
from conformance.mutation.server import MUTANTS
from conformance.targets.embedded import embedded_target
from conformance.wire.gss import nt_hash

__all__ = ["Row", "attributed", "blamed", "run_server_mutant", "run_client_scenario", "kill_matrix",
           "format_matrix", "focus", "cover"]


def blamed(result: CaseResult, case: Case) -> set[str]:
    """The requirements ``result``'s failure is attributed to: the case's own when its
    outcome (or "the connection must drop") did not match, and those of failing checks."""
    found = set(case.requirements) if False in (result.outcome_matched, result.connection_matched) else set()
    return found | {c.requirement for c in result.checks if c.verdict in (Verdict.FAIL, Verdict.WARN)}


def attributed(result: CaseResult, case: Case, requirement: str) -> bool:
    """Whether ``result``'s failure is (partly) that of ``requirement``."""
    return requirement in blamed(result, case)


def _failing(result: CaseResult) -> bool:
    return result.verdict in (Verdict.FAIL, Verdict.ERROR)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    mutant: str
    requirement: str
    kind: str  # "server" | "client"
    killed: bool
    killers: tuple[str, ...]  # case IDs (server) or checks (client) that caught it
    collateral: tuple[str, ...]  # unrelated MUST failures
    seconds: float
    failing: int = 0  # cases (server) or checks (client) that failed
    attributed: int = 0  # … of them, failures that name the mutant's requirement
    alone: int = 0  # … of those, failures that name no other requirement
    attribution: float | None = None  # attributed / failing (None: nothing failed)
    errors: int = 0  # ERROR verdicts: the suite broke on the mutant, whatever it did
    #: the mutant is one no case may fail (``Mutant.survives``): ok only when nothing fails
    survives: bool = False

    @property
    def ok(self) -> bool:
        return self.killed is not self.survives and not self.collateral and not self.errors


def _attribution(blames: list[set[str]], requirement: str) -> dict[str, object]:
    """Row fields from what each failure was blamed on."""
    named = [b for b in blames if requirement in b]
    return dict(failing=len(blames), attributed=len(named), alone=sum(b == {requirement} for b in named),
                attribution=round(len(named) / len(blames), 3) if blames else None)


def run_server_mutant(name: str | None, cases: list[Case], catalogue: Mapping[str, Requirement],
                      progress: Callable[[str], None] | None = None) -> list[tuple[Case, CaseResult]]:
    with embedded_target(behaviour=MUTANTS[name].behaviour() if name else None, label=name) as (target, ca):
        engine = Engine(target, catalogue, service_keys=ca.service_keys)
        results = []
        for case in cases:
            results.append((case, engine.run(case)))
        if progress:
            progress(f"{name or 'reference'}: {len(results)} cases")
        return results


def _server_row(name: str, results, catalogue, seconds: float) -> Row:
    requirement = MUTANTS[name].requirement
    level = catalogue[requirement].level
    killing = {Verdict.FAIL} if level is Level.MUST else {Verdict.FAIL, Verdict.WARN}
    killers = tuple(case.id for case, r in results if r.verdict in killing and attributed(r, case, requirement))
    collateral = tuple(case.id for case, r in results
                       if _failing(r) and not attributed(r, case, requirement))
    blames = [blamed(r, case) for case, r in results if _failing(r) or r.verdict in killing]
    return Row(mutant=name, requirement=requirement, kind="server", killed=bool(killers),
               killers=killers, collateral=collateral, seconds=seconds,
               survives=bool(MUTANTS[name].survives),
               errors=sum(r.verdict is Verdict.ERROR for _, r in results), **_attribution(blames, requirement))


def run_client_scenario(target, overrides: Mapping[str, object], catalogue,
                        service_keys=None) -> dict[str, object]:
    """The client scenario in one mode: ServerAlive2, activation, ResolveOxid2, Request.
    Returns the check results of every client-side requirement."""
    settings = settings_for(target, {**CLIENT_BASELINE, **overrides})
    tap = Tap()
    session = WcceSession.from_settings(settings, tap=tap)
    csr = methods.new_pkcs10("client-scenario")
    exporter_spn = None
    try:
        _, activation = session.activate()
        exporter_spn = session.exporter_spn()
        if activation is not None and activation.status == 0:
            session.connect_exporter()
            if session.exporter.contexts:
                session.call(methods.request(target.ca_name, csr, template=target.issue_template))
    except Exception:  # a client mode the CA refuses may end the exchange early
        pass
    finally:
        session.close()
    transcript = tap.transcript({target.user: nt_hash(target.password)}, service_keys=service_keys)
    context = CheckContext(exporter_spn=exporter_spn, plaintexts=(  # IMPERSONATE, PKT_PRIVACY expected
        target.ca_name.encode("utf-16-le"), csr))
    names = sorted({c for r in catalogue.values() if r.binds in ("client", "both") for c in r.checks})
    return {name: run_check(name, transcript, context) for name in names}


def _client_row(mutant: ClientMutant, target, catalogue, service_keys=None) -> Row:
    started = time.monotonic()
    results = run_client_scenario(target, mutant.settings, catalogue, service_keys)
    level = catalogue[mutant.requirement].level
    killing = {Verdict.FAIL} if level is Level.MUST else {Verdict.FAIL, Verdict.WARN}
    killers = tuple(n for n, r in results.items() if r.requirement == mutant.requirement
                    and r.verdict in killing)
    collateral = tuple(f"{n} ({r.requirement})" for n, r in results.items()
                       if r.verdict in (Verdict.FAIL, Verdict.ERROR) and r.requirement != mutant.requirement)
    blames = [{r.requirement} for r in results.values()
              if r.verdict in killing or r.verdict in (Verdict.FAIL, Verdict.ERROR)]
    return Row(mutant=mutant.name, requirement=mutant.requirement, kind="client", killed=bool(killers),
               killers=killers, collateral=collateral, seconds=time.monotonic() - started,
               errors=sum(r.verdict is Verdict.ERROR for r in results.values()),
               **_attribution(blames, mutant.requirement))


#: Besides the cases a focused mutant runs for what they can show, every SAMPLE_EVERY-th other
#: case (by ID) runs too, for collateral: a fixed sample, the same in every run.
SAMPLE_EVERY = 48


def _shape(case: Case) -> dict[str, object]:
    """What a case varies within its table entry: the matrix axes, and everything else the
    entry's rows set (other client knobs, parameters, action, expected outcome)."""
    variant = case.variant
    rest = sorted((k, repr(v)) for k, v in case.client.items() if k not in ("provider", "level", "impersonation"))
    return {**variant, "method": case.method,
            "row": repr((rest, case.params, case.action, case.expect, case.connection_drops, case.kind))}


def cover(cases: Iterable[Case], *, per_entry: bool) -> list[str]:
    """IDs of a covering subset, in ID order: a case is taken when it shows a value of one of
    its :func:`_shape` axes not yet taken — per table entry with ``per_entry`` (each entry's
    every provider, level, impersonation, method and row), across all cases otherwise."""
    taken: set[tuple] = set()
    chosen = []
    for case in sorted(cases, key=lambda c: c.id):
        entry = (case.source, case.line) if per_entry else None
        new = {(entry, axis, value) for axis, value in _shape(case).items()
               if per_entry or axis != "row"} - taken
        if new:
            chosen.append(case.id)
            taken |= new
    return chosen


def focus(cases: Iterable[Case], catalogue: Mapping[str, Requirement], requirement: str, *,
          every_seeing: bool = False) -> list[str]:
    """The IDs of the cases a mutant of ``requirement`` runs against in a focused matrix.

    The cases citing the requirement are those whose outcome can kill it: of each table entry,
    enough of them to show its every provider, level, impersonation, method and row once.
    The cases that only run one of its checks: enough to show every provider, level,
    impersonation and method once.  Then a fixed sample of all the others, where collateral
    would show.  With ``every_seeing`` (a mutant that must survive: good only when nothing
    fails) every case that can see it runs.  A focused "killed" is a killed: the killers ran;
    a focused "not killed" is a question for ``--full``."""
    ordered = sorted(cases, key=lambda c: c.id)
    checks = set(catalogue[requirement].checks)
    citing = [c for c in ordered if requirement in c.requirements]
    checking = [c for c in ordered if requirement not in c.requirements and checks & set(c.checks)]
    if every_seeing:
        chosen = [c.id for c in citing + checking]
    else:
        chosen = cover(citing, per_entry=True) + cover(checking, per_entry=False)
    taken = set(chosen)
    return chosen + [c.id for c in ordered if c.id not in taken][::SAMPLE_EVERY]


def _server_worker(name: str | None, case_files: list[str], only: list[str] | None = None
                   ) -> tuple[float, list[tuple[str, CaseResult]]]:
    """Run in a worker process: the suite (or the cases ``only`` names) against one (mutated) CA;
    returns the seconds it took there (not counting its wait in the pool's queue) and the results."""
    import logging
    import pathlib

    from conformance.judge.tables import load_cases
    from conformance.model.catalogue import load_catalogue

    started = time.monotonic()
    logging.getLogger("scapy").setLevel(logging.ERROR)
    catalogue = load_catalogue()
    cases = load_cases([pathlib.Path(f) for f in case_files], catalogue)
    if only is not None:
        chosen = set(only)
        cases = [c for c in cases if c.id in chosen]
    results = [(case.id, result) for case, result in run_server_mutant(name, cases, catalogue)]
    return time.monotonic() - started, results


def kill_matrix(case_files: list, catalogue: Mapping[str, Requirement], *,
                server: Iterable[str] | None = None, client: Iterable[str] | None = None,
                workers: int = 2, progress: Callable[[str], None] | None = None, full: bool = False
                ) -> tuple[list[Row], list[str]]:
    """Rows of the matrix, and the failures of the unmutated baseline (must be none).

    Each server mutant (and the baseline) runs in its own process, ``workers`` at a time.
    A mutant runs the cases of :func:`focus`, the baseline every case some mutant runs (all
    of them with ``full``).
    """
    import concurrent.futures
    import multiprocessing
    import pathlib

    from conformance.judge.tables import load_cases

    files = [str(f) for f in case_files]
    cases = {c.id: c for c in load_cases([pathlib.Path(f) for f in files], catalogue)}
    names = [None] + list(sorted(MUTANTS) if server is None else server)
    outcomes: dict = {}
    seconds: dict = {}
    context = multiprocessing.get_context("spawn")
    chosen = {name: None if full else focus(cases.values(), catalogue, MUTANTS[name].requirement,
                                             every_seeing=bool(MUTANTS[name].survives))
              for name in names[1:]}
    # the baseline runs what the mutants run (every case with ``full``): a failure it shares
    # is not the mutant's
    chosen[None] = None if full else sorted(set().union(*chosen.values()) if chosen else set())
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_server_worker, name, files, chosen[name]): name for name in names}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            seconds[name], results = future.result()
            outcomes[name] = [(cases[cid], result) for cid, result in results]
            if progress:
                progress(f"{name or 'reference'}: {len(outcomes[name])} cases")
    baseline_failures = [case.id for case, r in outcomes[None] if _failing(r)]
    rows = [_server_row(name, outcomes[name], catalogue, seconds[name]) for name in names[1:]]
    with embedded_target() as (target, ca):
        baselines = [{}] + ([{"provider": "spnego-kerberos"}] if target.kerberos is not None else [])
        for overrides in baselines:  # the conformant client, over NTLM and over Kerberos
            base = run_client_scenario(target, overrides, catalogue, ca.service_keys)
            baseline_failures += [f"client baseline {overrides or 'ntlm'}: {n}" for n, r in base.items()
                                  if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        for name in (sorted(CLIENT_MUTANTS) if client is None else client):
            rows.append(_client_row(CLIENT_MUTANTS[name], target, catalogue, ca.service_keys))
    return rows, baseline_failures


def _attribution_text(row: Row) -> str:
    """``attributed/failing``, and how many of those name the requirement alone when fewer."""
    if not row.failing:
        return "-"
    alone = f" ({row.alone} alone)" if row.alone != row.attributed else ""
    return f"{row.attributed}/{row.failing}{alone}"


def format_matrix(rows: list[Row], baseline_failures: list[str]) -> str:
    """One line per mutant: killed, the failures that name its requirement (attribution:
    attributed/failing, and how many name it alone), then killers and collateral."""
    lines = [f"{'mutant':34s} {'kind':6s} {'requirement':13s} {'killed':6s} {'attribution':18s} "
             f"killers / collateral"]
    for row in rows:
        killers = ", ".join(row.killers[:3]) + (f" (+{len(row.killers) - 3})" if len(row.killers) > 3 else "")
        extra = f"  COLLATERAL: {', '.join(row.collateral[:3])}" if row.collateral else ""
        extra += f" (+{len(row.collateral) - 3})" if len(row.collateral) > 3 else ""
        extra += f"  ERROR: {row.errors} verdict(s)" if row.errors else ""
        verdict = ("yes" if row.killed else "NO") if not row.survives else \
            ("KILLED" if row.killed else "no")
        extra += "  (must survive: fails what Windows may do)" if row.survives else ""
        lines.append(f"{row.mutant:34s} {row.kind:6s} {row.requirement:13s} "
                     f"{verdict:6s} {_attribution_text(row):18s} {killers}{extra}")
    killed = sum(r.killed for r in rows if not r.survives)
    survivors = [r for r in rows if r.survives]
    failing = sum(r.failing for r in rows)
    named = sum(r.attributed for r in rows)
    share = f"{named}/{failing} failures ({named / failing:.0%}) name the mutant's requirement" if failing \
        else "no failures"
    spared = f" ({sum(not r.killed and not r.collateral for r in survivors)}/{len(survivors)} that must " \
        f"survive did)" if survivors else ""
    lines.append(f"{killed}/{len(rows) - len(survivors)} mutants killed{spared}; "
                 f"{sum(bool(r.collateral) for r in rows)} with collateral failures; "
                 f"{sum(r.errors for r in rows)} ERROR verdicts; {share}; "
                 f"baseline failures: {len(baseline_failures)}")
    for failure in baseline_failures[:10]:
        lines.append(f"  baseline: {failure}")
    return "\n".join(lines)
