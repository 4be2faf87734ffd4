"""``wcce-conformance mutants``: the kill matrix as a command (list, run, JSON)."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

from conformance.model.cases import case_files
from conformance.model.catalogue import load_catalogue
from conformance.model.exitcodes import Exit
from conformance.mutation.client import CLIENT_MUTANTS
from conformance.mutation.killmatrix import format_matrix, kill_matrix
from conformance.mutation.server import MUTANTS

__all__ = ["mutants_command"]


def mutants_command(args) -> int:
    """``wcce-conformance mutants``: 0 only if every mutant is killed by its requirement's
    cases (a mutant that must survive, by nothing), nothing unrelated fails, no case ERRORs,
    and the unmutated baseline is clean."""
    if args.list:
        for name, m in sorted(MUTANTS.items()):
            spared = " [must survive]" if m.survives else ""
            print(f"server  {name:34s} {m.requirement:13s} {m.description}{spared}")
        for name, m in sorted(CLIENT_MUTANTS.items()):
            print(f"client  {name:34s} {m.requirement:13s} {m.description}")
        return Exit.OK
    for kind, names, known in (("server", args.server, MUTANTS), ("client", args.client, CLIENT_MUTANTS)):
        unknown = sorted(set(names or ()) - set(known))
        if unknown:
            print(f"wcce-conformance: error: unknown {kind} mutant(s) {', '.join(unknown)} "
                  f"(see wcce-conformance mutants --list)", file=sys.stderr)
            return Exit.USAGE
    server, client = args.server, args.client
    if server and client is None:
        client = []  # naming only server mutants runs only those, and vice versa
    if client and server is None:
        server = []
    started = time.monotonic()
    rows, baseline = kill_matrix(case_files(), load_catalogue(), server=server, client=client,
                                 workers=args.workers, full=args.full,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_matrix(rows, baseline))
    print(f"({time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": [dataclasses.asdict(r) for r in rows],
                                         "baseline_failures": baseline}, indent=1) + "\n")
    return Exit.OK if rows and all(r.ok for r in rows) and not baseline else Exit.MUST
