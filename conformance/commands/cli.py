"""Command line: ``wcce-conformance``.

Every user error (bad option, unreadable configuration, port in use) is one
line on stderr and exit status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from conformance import __version__
from conformance.model.exitcodes import Exit



class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(Exit.USAGE, f"{self.prog}: error: {message}\n")


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--user wants NAME:PASSWORD, got {value!r}")
    return name, password


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535)")
    return port


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of workers") from None
    if not 1 <= workers <= 64:
        raise argparse.ArgumentTypeError(f"{workers} workers: use 1 to 64")
    return workers


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wcce-conformance",
                     description="Conformance suite for the MS-WCCE DCOM transport.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="the main job: every conformance case against a target")
    run.add_argument("--target", type=pathlib.Path, metavar="PROFILE.toml",
                     help="target profile (default: start the embedded reference CA)")
    run.add_argument("--report-dir", type=pathlib.Path, default=pathlib.Path("reports"),
                     help="where reports/<run-id>/ is written (default: reports)")
    run.add_argument("-n", "--workers", type=_workers, default=1, metavar="N",
                     help="parallel workers (pytest-xdist); each starts its own embedded CA")
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k expression over case IDs")
    run.add_argument("--case", action="append", default=[], metavar="PREFIX",
                     help="only cases whose ID starts with PREFIX (repeatable)")
    run.add_argument("--requirement", action="append", default=[], metavar="ID",
                     help="only cases citing this requirement (repeatable)")
    run.add_argument("--deviations", type=pathlib.Path, metavar="FILE", help="accepted failures (TOML)")
    run.add_argument("--strict", action="store_true", help="SHOULD violations fail too")
    run.add_argument("--mutant", metavar="NAME", help="run against the embedded CA as this mutant")
    run.add_argument("--evidence-secrets", action="store_true",
                     help="also write the keys that decrypt the captures (pcap/secrets/wcce.keytab, mode 0600)")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="for CI logs: the header, pytest's dots and the end; no progress lines")
    run.add_argument("--cases", dest="case_dirs", action="append", default=[], type=pathlib.Path, metavar="DIR",
                     help="also run the case tables (*.toml) in DIR, validated as the shipped ones (repeatable)")
    run.add_argument("--shard", metavar="K/N", help="run the K-th of N deterministic, cost-balanced parts of the "
                     "selection (join them with 'report merge')")
    run.add_argument("--policy", type=pathlib.Path, metavar="POLICY.toml",
                     help="gate the run with this policy (default: no MUST failure, no ERROR/INCONCLUSIVE)")

    report = commands.add_parser(
        "report", help="re-render report.html and junit.xml from results.json; 'report merge A.json B.json… "
                       "--out DIR' joins shards (or runs of one selection) into one",
        usage="wcce-conformance report RESULTS.json [--out DIR]\n"
              "       wcce-conformance report merge RESULTS.json RESULTS.json... --out DIR")
    report.add_argument("results", nargs="+", metavar="RESULTS.json")
    report.add_argument("--out", type=pathlib.Path, metavar="DIR", help="where to write (default: beside RESULTS.json)")

    cases = commands.add_parser("cases", help="list the cases a run would include")
    cases.add_argument("--list", action="store_true", required=True, help="list them: ID, requirements, table")
    cases.add_argument("--cases", dest="case_dirs", action="append", default=[], type=pathlib.Path, metavar="DIR",
                       help="also the case tables in DIR (repeatable)")
    cases.add_argument("--case", action="append", default=[], metavar="PREFIX", help="only IDs starting so")
    cases.add_argument("--requirement", action="append", default=[], metavar="ID", help="only cases citing ID")

    gate = commands.add_parser("gate", help="apply a release policy to results.json (exit codes: README)")
    gate.add_argument("results", type=pathlib.Path, metavar="RESULTS.json")
    gate.add_argument("--policy", type=pathlib.Path, metavar="POLICY.toml", help="the policy (default: strictest "
                      "MUST policy: no MUST failure, no ERROR, no INCONCLUSIVE)")

    mutants = commands.add_parser("mutants", help="the mutant kill matrix (every mutant must be caught)")
    mutants.add_argument("--server", action="append", metavar="NAME",
                         help="only this server mutant (repeatable; default: all)")
    mutants.add_argument("--client", action="append", metavar="NAME",
                         help="only this client mutant (repeatable; default: all)")
    mutants.add_argument("-n", "--workers", type=_workers, default=2, metavar="N",
                         help="processes running server mutants at once (default 2)")
    mutants.add_argument("--json", type=pathlib.Path, metavar="FILE", help="also write the matrix as JSON")
    mutants.add_argument("--list", action="store_true", help="list the mutants and exit")
    mutants.add_argument("--full", action="store_true",
                         help="every server mutant against every case (default: the cases that can see it, "
                              "and a fixed sample of the others for collateral)")

    enroll = commands.add_parser("enroll", help="enroll one certificate with the suite's own client")
    from conformance.commands.enroll import add_arguments as enroll_arguments

    enroll_arguments(enroll)

    calibrate = commands.add_parser(
        "calibrate", help="run the RPC-layer cases against a throwaway Samba AD DC (an independent DCE/RPC server)")
    calibrate.add_argument("--report-dir", type=pathlib.Path, default=pathlib.Path("reports"))
    calibrate.add_argument("--profile", type=pathlib.Path, default=None, metavar="PROFILE.toml",
                           help="the Samba target profile (default: examples/samba-dc.toml)")
    calibrate.add_argument("--policy", type=pathlib.Path, metavar="POLICY.toml")
    probe = commands.add_parser(
        "probe-client", help="score an enrollment client under test against the reference CA in recording mode")
    probe.add_argument("--client", type=pathlib.Path, metavar="PROFILE.toml",
                       help="a client profile (command with placeholders, timeout, deviations)")
    probe.add_argument("--host", help="loopback address the CA listens on (default 127.0.0.1; 127.0.0.2 "
                       "with the lab's AD domain, whose DC holds 127.0.0.1:135)")
    probe.add_argument("--port", type=_port, default=135, help="activation port (default 135)")
    probe.add_argument("--report-dir", type=pathlib.Path, default=pathlib.Path("reports"))
    probe.add_argument("--timeout", type=float, help="seconds the client may take (default 120)")
    probe.add_argument("--deviations", type=pathlib.Path, metavar="FILE")
    probe.add_argument("--policy", type=pathlib.Path, metavar="POLICY.toml")
    probe.add_argument("--strict", action="store_true", help="SHOULD violations fail too")
    probe.add_argument("--kerberos", action="store_true",
                       help="start a throwaway MIT realm beside the CA (placeholders {realm} {kdc} "
                            "{service_host} {krb5_config}); a profile can ask with kerberos = true")
    probe.add_argument("client_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                       help="the client under test and its arguments (placeholders: README)")

    ca = commands.add_parser("ca", help="the embedded reference CA")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True, parser_class=_Parser)

    serve = ca_commands.add_parser("serve", help="run the reference CA in the foreground")
    serve.add_argument("--config", type=pathlib.Path, help="CA configuration (TOML)")
    serve.add_argument("--host", help="loopback address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="activation port (default 135)")
    serve.add_argument("--exporter-port", type=_port, help="object exporter port (default: dynamic)")
    serve.add_argument("--ca-name", help="CA common name (default WCCE-LAB-CA)")
    serve.add_argument("--state-dir", type=pathlib.Path, help="where the CA keeps its key and database")
    serve.add_argument("--user", type=_user, action="append", default=[], metavar="NAME:PASSWORD",
                       help="an account that may authenticate (repeatable); kept only as an NT hash")
    serve.add_argument("--no-enforce-privacy", action="store_true",
                       help="clear IF_ENFORCEENCRYPTICERTREQUEST (accept requests below PKT_PRIVACY)")
    serve.add_argument("--mutant", metavar="NAME",
                       help="serve as this mutant, which breaks one requirement on purpose "
                            "(see wcce-conformance mutants --list)")
    serve.add_argument("-v", "--verbose", action="store_true", help="log every PDU-level event")

    for name, text in (("approve", "issue a pending request"), ("deny", "deny a pending request")):
        cmd = ca_commands.add_parser(name, help=text)
        cmd.add_argument("request_id", type=int)
        cmd.add_argument("--config", type=pathlib.Path)
        cmd.add_argument("--state-dir", type=pathlib.Path)
    listing = ca_commands.add_parser("list", help="list the CA's requests")
    listing.add_argument("--config", type=pathlib.Path)
    listing.add_argument("--state-dir", type=pathlib.Path)
    return parser


def _ca_usage_errors() -> tuple[type, ...]:
    """The reference CA's configuration errors, if the command loaded the CA: importing it
    costs scapy's layers (~1 s), which --help, gate and report never need."""
    found = (getattr(sys.modules.get(module), name, None) for module, name in (
        ("conformance.refca.config", "ConfigError"), ("conformance.refca.listener", "PortInUse")))
    return tuple(cls for cls in found if cls is not None)


def main(argv: list[str] | None = None) -> int:
    """The command line; ``argv`` None: this process is the command (the console script,
    ``python -m conformance``) and ends with it."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            from conformance.commands.run import run_suite

            return run_suite(args)
        if args.command == "report":
            from conformance.commands.run import merge_command, report_command

            return merge_command(args) if args.results[0] == "merge" else report_command(args)
        if args.command == "cases":
            from conformance.commands.run import cases_command

            return cases_command(args)
        if args.command == "gate":
            from conformance.commands.run import gate_command

            return gate_command(args)
        if args.command == "mutants":
            from conformance.commands.mutants import mutants_command

            return mutants_command(args)
        if args.command == "calibrate":
            from conformance.commands.calibrate import SAMBA_PROFILE, calibrate_command

            args.profile = args.profile or SAMBA_PROFILE
            return calibrate_command(args, parse_run=lambda argv: build_parser().parse_args(["run", *argv]))
        if args.command == "probe-client":
            from conformance.commands.probe_client import probe_command

            return probe_command(args)
        if args.command == "enroll":
            from conformance.commands.enroll import enroll_command

            return enroll_command(args, whole_process=argv is None)
        if args.command == "ca":
            from conformance.commands import ca

            if args.ca_command == "serve":
                return ca.serve_command(args)
            if args.ca_command in ("approve", "deny"):
                return ca.resolve_command(args, approve=args.ca_command == "approve")
            if args.ca_command == "list":
                return ca.list_command(args)
    except Exception as exc:
        if not isinstance(exc, _ca_usage_errors() + (OSError,)):
            raise
        if isinstance(exc, _ca_usage_errors()):
            print(f"wcce-conformance: error: {exc}", file=sys.stderr)
            return Exit.USAGE
        # an OSError, e.g. an unwritable state directory
        where = f" {exc.filename}" if exc.filename else ""
        print(f"wcce-conformance: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:
        return 130
    return Exit.USAGE


if __name__ == "__main__":
    sys.exit(main())
