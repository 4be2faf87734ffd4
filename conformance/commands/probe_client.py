"""``wcce-conformance probe-client``: score an enrollment client the way a run scores a CA.

The reference CA starts in recording mode (its listeners write every byte of every
connection into a :class:`~conformance.capture.tap.Tap`), the client under test runs
as any command pointed at it, and the client-side cases of ``cases/client/*.toml``
judge the recorded wire with the same checks, verdicts, results.json, HTML, JUnit
and gate as a CA run.  A case about something the client never did is N/A, not PASS.

The lab account is made up per run; the command gets it through placeholders
(``{host} {port} {ca} {user} {domain} {password} {template} {python} {certipy}
{repo}``) or the environment (``WCCE_PROBE_*``).  The password never reaches the
report: the command line is recorded with ``{password}`` in its place.

With Kerberos (``--kerberos``, or ``kerberos = true`` in the profile) a throwaway MIT
realm starts beside the CA, the account is a principal of it, and the command also
gets ``{realm} {kdc} {service_host} {krb5_config}`` and MIT's ``KRB5_CONFIG``: the
CA then reads the client's Kerberos exchange with its keytab, so the Kerberos
client cases (SPNs, checksum flags) are judged instead of N/A.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

from conformance.model.client_profile import load_client_profile
from conformance.model.deviations import DeviationError
from conformance.model.exitcodes import Exit
from conformance.model.profile import ProfileError
from conformance.model.verdicts import Level, Verdict

__all__ = ["probe_command", "certipy_path", "REPO"]

REPO = pathlib.Path(__file__).resolve().parents[2]
USER, DOMAIN, TEMPLATE = "probe-user", "lab.test", "User"
DOMAIN_USER = "wcce-suite"  # the lab AD domain's user (conformance.targets.domain)


def certipy_path() -> str:
    """certipy-ad's entry point: ``$WCCE_CERTIPY``, else the venv ``bash .ci/install`` makes."""
    return os.environ.get("WCCE_CERTIPY") or str(REPO / ".venv-certipy" / "bin" / "certipy")


def _fill(command: Sequence[str], values: Mapping[str, str]) -> list[str]:
    try:
        return [arg.format(**values) for arg in command]
    except (KeyError, IndexError, ValueError) as exc:
        raise ProfileError(f"client command: unknown or malformed placeholder {exc} "
                           f"(known: {', '.join('{' + k + '}' for k in sorted(values))})") from None


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "{password}") if secret else text


def probe_command(args, *, out=None) -> int:
    from conformance.capture.pcap import write_pcapng
    from conformance.capture.tap import Tap
    from conformance.commands.run import apply_gate, render_outputs
    from conformance.judge.clientcases import judge_client
    from conformance.model.cases import CaseError, load_client_cases
    from conformance.model.catalogue import catalogue_hash, load_catalogue, spec_revisions
    from conformance.model.deviations import find_deviation, load_deviations
    from conformance.targets.domain import DomainUnavailable, domain_wanted, shared_domain
    from conformance.targets.embedded import lab_realm
    from conformance.targets.kdc import KdcError
    from conformance.targets.samba import SambaError
    from conformance.refca.ca import ReferenceCA
    from conformance.refca.config import ConfigError, load_config
    from conformance.wire.gss import nt_hash
    from conformance.refca.listener import PortInUse
    from conformance.report.gate import Policy, PolicyError, load_policy
    from conformance.report.results import case_record, file_hash, now, requirement_table, write_results

    out = out or sys.stderr  # looked up now: pytest's capture swaps sys.stderr

    def usage(message: str) -> int:
        print(f"wcce-conformance: error: {message}", file=out)
        return Exit.USAGE

    command = list(args.client_command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    try:
        profile = load_client_profile(args.client) if args.client else None
        if profile is None and not command:
            return usage("name the client under test: --client PROFILE.toml or -- COMMAND ARGS...")
        if profile is not None and command:
            return usage("give --client or a command after --, not both")
        catalogue = load_catalogue()
        cases = load_client_cases(catalogue)
        deviations = list(profile.quirks if profile else ()) + (
            load_deviations(args.deviations) if args.deviations else [])
        policy = load_policy(args.policy) if args.policy else Policy(
            max_should_warnings=0 if args.strict else None)
    except (ProfileError, CaseError, DeviationError, PolicyError) as exc:
        return usage(str(exc))
    template = list(profile.command) if profile else command
    timeout = args.timeout or (profile.timeout if profile else 120.0)
    password = _new_password()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.report_dir / f"{stamp}-client-{secrets.token_hex(2)}"
    started = now()
    tap = Tap()
    kerberos = bool(args.kerberos or (profile is not None and profile.kerberos))
    with tempfile.TemporaryDirectory(prefix="wcce-probe-") as state, contextlib.ExitStack() as stack:
        realm = domain = None
        keytab = None
        user = USER
        try:
            # Kerberos: the account is a user of the lab's AD domain (the CA is its computer
            # CA01$) where Samba can run, else a principal of a throwaway MIT realm
            if kerberos and domain_wanted():
                domain = shared_domain()
                user = DOMAIN_USER
                password = domain.users[user]
                keytab = pathlib.Path(domain.keytab)
            elif kerberos:
                realm = stack.enter_context(lab_realm({USER: password}))
                keytab = realm.keytab
            host = args.host or ("127.0.0.2" if domain is not None else "127.0.0.1")
            config = load_config(None, host=host, port=args.port, state_dir=pathlib.Path(state),
                                 users={user: nt_hash(password)}, kerberos_keytab=keytab,
                                 kerberos_domain_member=domain is not None)
            ca = ReferenceCA(config)
            ca.recorder = tap
            ca.start()
        except (ConfigError, PortInUse, KdcError, SambaError, DomainUnavailable) as exc:
            return usage(str(exc))
        values = {"host": host, "port": str(ca.activation_port), "ca": config.ca_name, "user": user,
                  "domain": DOMAIN, "password": password, "template": TEMPLATE, "python": sys.executable,
                  "certipy": certipy_path(), "repo": str(REPO)}
        kerberos_env: dict[str, str] = {}
        if realm is not None:
            values.update(realm=realm.realm, kdc=f"{realm.kdc[0]}:{realm.kdc[1]}", service_host=config.dns_name,
                          krb5_config=realm.env["KRB5_CONFIG"], kdc_host=realm.kdc[0])
            kerberos_env = dict(realm.env)
        elif domain is not None:
            values.update(realm=domain.realm, kdc=f"{domain.kdc[0]}:{domain.kdc[1]}", service_host=config.dns_name,
                          krb5_config=str(domain.krb5_conf), kdc_host=domain.kdc[0])
            kerberos_env = {"KRB5_CONFIG": str(domain.krb5_conf)}
        if kerberos:  # the client's own credential cache, in the run's directory
            kerberos_env["KRB5CCNAME"] = str(run_dir / "krb5cc")
            values["ccache"] = kerberos_env["KRB5CCNAME"]
        try:
            argv = _fill(template, values)
        except ProfileError as exc:
            ca.stop()
            return usage(str(exc))
        env = {**os.environ, **kerberos_env,
               **{f"WCCE_PROBE_{k.upper()}": v for k, v in values.items()}}
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"wcce-conformance: probing {' '.join(_redact(a, password) for a in argv)}", file=out)
        clock = time.monotonic()
        timed_out, status = False, None
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                                    stdin=subprocess.DEVNULL, cwd=run_dir)
            status, output = result.returncode, result.stdout + result.stderr
        except subprocess.TimeoutExpired as exc:
            timed_out = True
            output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        except OSError as exc:
            ca.stop()
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran: leave no half run behind
            return usage(f"cannot run {argv[0]}: {exc.strerror or exc}")
        seconds = time.monotonic() - clock
        ca.stop()
        exporter_spn = config.orpc_principal
        transcript = tap.transcript({user: nt_hash(password)}, service_keys=ca.service_keys)
        if "ccache" in values:  # tickets are credentials: none stays in the report directory
            pathlib.Path(values["ccache"]).unlink(missing_ok=True)
    (run_dir / "client.log").write_text(_redact(output, password))
    pcap = run_dir / "pcap" / "client.pcapng"
    write_pcapng(pcap, tap.chunks, tap.connections)
    records = []
    for item, result in judge_client(transcript, cases, catalogue, ca_name=config.ca_name, template=TEMPLATE,
                                     exporter_spn=exporter_spn):
        result = dataclasses.replace(result, pcap=str(pcap), seconds=seconds)
        record = case_record(result, item.case, catalogue, find_deviation(deviations, item.case.id),
                             repro=" ".join(["wcce-conformance", "probe-client"] + (
                                 ["--client", str(args.client)] if args.client else
                                 ["--"] + [_redact(a, password) for a in argv])),
                             evidence_root=run_dir)
        record["applies"] = item.applies
        records.append(record)
    ran = {r["id"] for r in records if r["verdict"] != Verdict.NA.value}
    expected = sorted(i.case.id for i in cases if any(catalogue[r].level is Level.MUST for r in i.case.requirements)
                      and (i.applies == "always" or i.case.id in ran))
    run = {
        "id": run_dir.name, "suite_version": _version(), "spec": spec_revisions(),
        "catalogue_hash": catalogue_hash(),
        "target": {"kind": "client", "description": profile.name if profile else f"client: {argv[0]}",
                   "host": host, "activation_port": ca.activation_port, "ca_name": config.ca_name,
                   "profile": str(args.client) if args.client else None, "profile_hash": file_hash(args.client),
                   "mutant": None, "claims": {}},
        "client": {"command": [_redact(a, password) for a in argv], "exit_status": status,
                   "timed_out": timed_out, "seconds": round(seconds, 3),
                   "connections": len(transcript.connections), "pdus": len(transcript.pdus)},
        "started": started, "finished": now(), "command": [_redact(a, password) for a in sys.argv],
        "workers": 1, "strict": bool(args.strict),
        "deviations": str(args.deviations) if args.deviations else None,
        "deviations_hash": file_hash(args.deviations),
        "selection": {"case": [], "requirement": [], "keyword": None},
        "expected_must_cases": expected,
        "expected_must_requirements": sorted({r for i in cases if i.case.id in expected for r in i.case.requirements
                                              if catalogue[r].level is Level.MUST}),
    }
    document = write_results(run_dir / "results.json", run, requirement_table(catalogue), records)
    for path in render_outputs(document, run_dir):
        print(f"wcce-conformance: wrote {path}", file=out)
    if timed_out:
        print(f"wcce-conformance: the client did not finish within {timeout:.0f} s (judged on what it sent)", file=out)
    elif status:
        print(f"wcce-conformance: the client exited with status {status} (see client.log)", file=out)
    if not transcript.pdus:
        print("wcce-conformance: the client sent nothing to the reference CA", file=out)
        return Exit.CONNECTION
    return apply_gate(document, policy, out)


def _new_password() -> str:
    return secrets.token_urlsafe(15)  # this run's lab account only


def _version() -> str:
    from conformance import __version__

    return __version__
