"""``wcce-conformance ca serve|approve|deny|list``: the reference CA as a command."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from conformance.model.exitcodes import Exit

__all__ = ["serve_command", "resolve_command", "list_command"]


def _load(args):
    from conformance.refca.config import load_config
    from conformance.wire.gss import nt_hash
    from conformance.wire.wcce import InterfaceFlag

    overrides = {}
    if getattr(args, "state_dir", None):
        overrides["state_dir"] = args.state_dir
    for key in ("host", "port", "exporter_port", "ca_name"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    users = {name: nt_hash(password) for name, password in getattr(args, "user", [])}
    if users:
        overrides["users"] = users
    config = load_config(args.config, **overrides)
    if getattr(args, "no_enforce_privacy", False):
        from dataclasses import replace

        flags = config.policy.interface_flags & ~InterfaceFlag.ENFORCEENCRYPTICERTREQUEST
        config = replace(config, policy=replace(config.policy, interface_flags=flags))
    return config


def serve_command(args) -> int:
    from conformance.refca.ca import ReferenceCA

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(message)s", stream=sys.stderr)
    mutant = None
    if args.mutant:
        from conformance.refca.config import ConfigError
        from conformance.mutation.server import MUTANTS

        if args.mutant not in MUTANTS:  # before anything is created or started
            raise ConfigError(f"unknown mutant {args.mutant!r}; see wcce-conformance mutants --list")
        mutant = MUTANTS[args.mutant]
    config = _load(args)
    if not config.users:
        print("wcce-conformance: warning: no users configured; nobody can authenticate "
              "(use --user NAME:PASSWORD)", file=sys.stderr)
    ca = ReferenceCA(config, behaviour=mutant.behaviour() if mutant else None)
    if mutant:
        print(f"wcce-conformance: warning: this CA is the MUTANT {mutant.name}: it breaks {mutant.requirement} "
              f"({mutant.description})", file=sys.stderr)
    ca.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"reference CA {config.ca_name!r} serving: activation {config.listen.host}:"
          f"{ca.activation_port}, exporter {config.listen.host}:{ca.exporter_port}, "
          f"state {config.state_dir}", file=sys.stderr, flush=True)
    stop.wait()
    ca.stop()
    return Exit.OK


def resolve_command(args, approve: bool) -> int:
    from conformance.refca.ca import ReferenceCA

    ca = ReferenceCA(_load(args))
    try:
        row = ca.resolve_pending(args.request_id, approve=approve)
    finally:
        ca.store.close()
    if row is None:
        print(f"wcce-conformance: error: no request {args.request_id}", file=sys.stderr)
        return Exit.USAGE
    print(f"request {row.id}: {row.status.value} (disposition 0x{row.disposition:x})")
    return Exit.OK


def list_command(args) -> int:
    from conformance.refca.store import RequestStore

    config = _load(args)
    store = RequestStore(config.state_dir / "requests.sqlite3")
    try:
        for row in store.all():
            print(f"{row.id:6d} {row.status.value:8s} 0x{row.disposition:08x} "
                  f"{row.template or '-':16s} {row.requester} {row.serial or ''}")
    finally:
        store.close()
    return Exit.OK
