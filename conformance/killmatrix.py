"""The mutant kill matrix: every mutant must be caught by the cases of the
requirement it breaks, and must not make anything else fail.

Server mutants (``conformance.refca.mutants``) run the whole case suite against a
mutated reference CA.  Client mutants are modes of the driven client; each runs
the client scenario against the (unmutated) reference CA and the client-side
checks of the catalogue judge its wire.

A case failure is *attributed* to a requirement when its outcome did not match
and the case cites the requirement, or when a failing check verifies it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping

from conformance.capture.tap import Tap
from conformance.casebook import Case
from conformance.catalogue import Requirement
from conformance.client import methods
from conformance.client.session import WcceSession
from conformance.client.settings import ClientSettings
from conformance.embedded import embedded_target
from conformance.engine import CaseResult, Engine
from conformance.refca.config import nt_hash
from conformance.refca.mutants import MUTANTS
from conformance.wire.checks import CheckContext, Level, Verdict, run_check
from conformance.wire.passive import NtlmFlag

__all__ = ["ClientMutant", "CLIENT_MUTANTS", "Row", "attributed", "run_server_mutant",
           "run_client_scenario", "kill_matrix", "format_matrix", "main"]


@dataclasses.dataclass(frozen=True, slots=True)
class ClientMutant:
    name: str
    requirement: str
    description: str
    settings: Mapping[str, object]


CLIENT_MUTANTS = {m.name: m for m in [
    ClientMutant("client-version-1.0", "WCCE-T-02", "binds ICertRequestD at version 1.0",
                 {"if_version": 1}),
    ClientMutant("client-kerberos-identify", "WCCE-T-10",
                 "SPNEGO/Kerberos with GSS_C_IDENTIFY_FLAG in the checksum at impersonation IDENTIFY",
                 {"provider": "spnego-kerberos", "impersonation": 2}),
    ClientMutant("client-kerberos-raw", "WCCE-T-06", "authenticates with raw Kerberos (auth_type 16)",
                 {"provider": "kerberos"}),
    ClientMutant("client-kerberos-no-conf", "WCCE-T-09",
                 "SPNEGO/Kerberos at PKT_PRIVACY without GSS_C_CONF_FLAG in the checksum",
                 {"provider": "spnego-kerberos", "kerberos_flags_clear": 0x10}),
    ClientMutant("client-kerberos-activation-spn", "WCCE-T-12",
                 "asks for a host/ ticket instead of RPCSS/ to activate",
                 {"provider": "spnego-kerberos", "activation_spn": "host/ca01.lab.test"}),
    ClientMutant("client-wrong-class", "WCCE-T-04", "activates another CLSID",
                 {"clsid": "6f0b7c1e-2c8b-4d0e-9a53-7c1c0b6d2a11"}),
    ClientMutant("client-foreign-iid", "WCCE-T-05", "asks for an interface that is not ICertRequestD(2)",
                 {"iids": ["0000010b-0000-0000-c000-000000000046"]}),
    ClientMutant("client-raw-ntlm", "WCCE-T-06", "authenticates with raw NTLM (auth_type 10)",
                 {"provider": "ntlm"}),
    ClientMutant("client-level-5", "WCCE-T-07", "calls at PKT_INTEGRITY", {"level": 5}),
    ClientMutant("client-no-seal-flag", "WCCE-T-09", "NTLM NEGOTIATE without SEAL at PKT_PRIVACY",
                 {"ntlm_clear_flags": int(NtlmFlag.SEAL)}),
    ClientMutant("client-identify", "WCCE-T-10", "impersonation level IDENTIFY", {"impersonation": 2}),
    ClientMutant("client-anonymous", "WCCE-T-11", "authenticates anonymously", {"anonymous": True}),
    ClientMutant("client-spnego-auth3", "WCCE-T-13", "sends SPNEGO's third leg in rpc_auth3",
                 {"spnego_auth3": True}),
    ClientMutant("client-no-object-uuid", "WCCE-T-15", "ORPCs without PFC_OBJECT_UUID",
                 {"object_uuid": False}),
    ClientMutant("client-orpcthis-flags", "WCCE-T-16", "ORPCTHIS.flags 1 on ORPCs", {"orpc_flags": 1}),
    ClientMutant("client-activation-connect", "WCCE-T-22", "activates at CONNECT", {"activation_level": 2}),
    ClientMutant("client-resolve-connect", "WCCE-T-23", "resolves the OXID at CONNECT",
                 {"resolve_oxid_level": 2}),
    ClientMutant("client-auth-pad-8", "RPCE-PAD-01", "pads stubs to 8 bytes before the sec_trailer",
                 {"auth_pad_alignment": 8}),
]}

#: The client scenario's defaults: what a conformant Windows-like client does.
CLIENT_BASELINE = {"provider": "spnego-ntlm", "level": 6, "impersonation": 3,
                   "server_alive2": True, "resolve_oxid_level": 5}


def attributed(result: CaseResult, case: Case, requirement: str) -> bool:
    """Whether ``result``'s failure is (partly) that of ``requirement``."""
    if requirement in case.requirements and False in (result.outcome_matched, result.connection_matched):
        return True  # the outcome, or "the connection must drop", is the requirement's
    return any(c.requirement == requirement and c.verdict in (Verdict.FAIL, Verdict.WARN)
               for c in result.checks)


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

    @property
    def ok(self) -> bool:
        return self.killed and not self.collateral


def run_suite(engine: Engine, cases: Iterable[Case]) -> list[tuple[Case, CaseResult]]:
    return [(case, engine.run(case)) for case in cases]


def run_server_mutant(name: str | None, cases: list[Case], catalogue: Mapping[str, Requirement],
                      progress: Callable[[str], None] | None = None) -> list[tuple[Case, CaseResult]]:
    with embedded_target(mutant=name) as (target, ca):
        engine = Engine(target, catalogue, service_keys=ca.service_keys)
        results = []
        for case in cases:
            results.append((case, engine.run(case)))
        if progress:
            progress(f"{name or 'reference'}: {len(results)} cases")
        return results


def _server_row(name: str, results, catalogue, started: float) -> Row:
    requirement = MUTANTS[name].requirement
    level = catalogue[requirement].level
    killing = {Verdict.FAIL} if level is Level.MUST else {Verdict.FAIL, Verdict.WARN}
    killers = tuple(case.id for case, r in results if r.verdict in killing and attributed(r, case, requirement))
    collateral = tuple(case.id for case, r in results
                       if _failing(r) and not attributed(r, case, requirement))
    return Row(mutant=name, requirement=requirement, kind="server", killed=bool(killers),
               killers=killers, collateral=collateral, seconds=time.monotonic() - started)


def run_client_scenario(target, overrides: Mapping[str, object], catalogue,
                        service_keys=None) -> dict[str, object]:
    """The client scenario in one mode: ServerAlive2, activation, ResolveOxid2, Request.
    Returns the check results of every client-side requirement."""
    data = {**CLIENT_BASELINE, **overrides}
    if data.get("anonymous"):
        fixed = {"host": target.host, "port": target.activation_port}
    else:
        fixed = {"host": target.host, "port": target.activation_port, "user": target.user,
                 "domain": target.domain, "password": target.password}
    if target.kerberos is not None:
        fixed.update(kdc=target.kerberos.kdc, realm=target.kerberos.realm,
                     service_host=target.kerberos.service_host)
    settings = ClientSettings.from_mapping(data, **fixed)
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
    context = CheckContext(impersonation=3, expected_level=6, exporter_spn=exporter_spn, plaintexts=(
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
    return Row(mutant=mutant.name, requirement=mutant.requirement, kind="client", killed=bool(killers),
               killers=killers, collateral=collateral, seconds=time.monotonic() - started)


def _server_worker(name: str | None, case_files: list[str]) -> list[tuple[str, CaseResult]]:
    """Run in a worker process: the whole suite against one (mutated) CA."""
    import logging
    import pathlib

    from conformance.casebook import load_cases
    from conformance.catalogue import load_catalogue

    logging.getLogger("scapy").setLevel(logging.ERROR)
    catalogue = load_catalogue()
    cases = load_cases([pathlib.Path(f) for f in case_files], catalogue)
    return [(case.id, result) for case, result in run_server_mutant(name, cases, catalogue)]


def kill_matrix(case_files: list, catalogue: Mapping[str, Requirement], *,
                server: Iterable[str] | None = None, client: Iterable[str] | None = None,
                workers: int = 2, progress: Callable[[str], None] | None = None
                ) -> tuple[list[Row], list[str]]:
    """Rows of the matrix, and the failures of the unmutated baseline (must be none).

    Each server mutant (and the baseline) runs in its own process, ``workers`` at a time.
    """
    import concurrent.futures
    import multiprocessing
    import pathlib

    from conformance.casebook import load_cases

    files = [str(f) for f in case_files]
    cases = {c.id: c for c in load_cases([pathlib.Path(f) for f in files], catalogue)}
    names = [None] + list(sorted(MUTANTS) if server is None else server)
    started = {name: time.monotonic() for name in names}
    outcomes: dict = {}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_server_worker, name, files): name for name in names}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            outcomes[name] = [(cases[cid], result) for cid, result in future.result()]
            if progress:
                progress(f"{name or 'reference'}: {len(outcomes[name])} cases")
    baseline_failures = [case.id for case, r in outcomes[None] if _failing(r)]
    rows = [_server_row(name, outcomes[name], catalogue, started[name]) for name in names[1:]]
    with embedded_target() as (target, ca):
        baselines = [{}] + ([{"provider": "spnego-kerberos"}] if target.kerberos is not None else [])
        for overrides in baselines:  # the conformant client, over NTLM and over Kerberos
            base = run_client_scenario(target, overrides, catalogue, ca.service_keys)
            baseline_failures += [f"client baseline {overrides or 'ntlm'}: {n}" for n, r in base.items()
                                  if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        for name in (sorted(CLIENT_MUTANTS) if client is None else client):
            rows.append(_client_row(CLIENT_MUTANTS[name], target, catalogue, ca.service_keys))
    return rows, baseline_failures


def format_matrix(rows: list[Row], baseline_failures: list[str]) -> str:
    lines = [f"{'mutant':34s} {'kind':6s} {'requirement':13s} {'killed':6s} killers / collateral"]
    for row in rows:
        killers = ", ".join(row.killers[:3]) + (f" (+{len(row.killers) - 3})" if len(row.killers) > 3 else "")
        extra = f"  COLLATERAL: {', '.join(row.collateral[:3])}" if row.collateral else ""
        lines.append(f"{row.mutant:34s} {row.kind:6s} {row.requirement:13s} "
                     f"{'yes' if row.killed else 'NO':6s} {killers}{extra}")
    killed = sum(r.killed for r in rows)
    lines.append(f"{killed}/{len(rows)} mutants killed; "
                 f"{sum(bool(r.collateral) for r in rows)} with collateral failures; "
                 f"baseline failures: {len(baseline_failures)}")
    for failure in baseline_failures[:10]:
        lines.append(f"  baseline: {failure}")
    return "\n".join(lines)




def main(args) -> int:
    """``wcce-conformance mutants``: 0 only if every mutant is killed by its requirement's
    cases, nothing unrelated fails, and the unmutated baseline is clean."""
    import json
    import sys

    from conformance.casebook import case_files
    from conformance.catalogue import load_catalogue

    if args.list:
        for name, m in sorted(MUTANTS.items()):
            print(f"server  {name:34s} {m.requirement:13s} {m.description}")
        for name, m in sorted(CLIENT_MUTANTS.items()):
            print(f"client  {name:34s} {m.requirement:13s} {m.description}")
        return 0
    for kind, names, known in (("server", args.server, MUTANTS), ("client", args.client, CLIENT_MUTANTS)):
        unknown = sorted(set(names or ()) - set(known))
        if unknown:
            print(f"wcce-conformance: error: unknown {kind} mutant(s) {', '.join(unknown)} "
                  f"(see wcce-conformance mutants --list)", file=sys.stderr)
            return 2
    server, client = args.server, args.client
    if server and client is None:
        client = []  # naming only server mutants runs only those, and vice versa
    if client and server is None:
        server = []
    started = time.monotonic()
    rows, baseline = kill_matrix(case_files(), load_catalogue(), server=server, client=client,
                                 workers=args.workers,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_matrix(rows, baseline))
    print(f"({time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": [dataclasses.asdict(r) for r in rows],
                                         "baseline_failures": baseline}, indent=1) + "\n")
    return 0 if rows and all(r.ok for r in rows) and not baseline else 1
