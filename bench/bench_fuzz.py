"""The seeded long fuzz run against the reference CA, over real loopback sockets.

    .venv/bin/python bench/bench_fuzz.py --inputs 100000 --seed 1 --time-limit 3600

Starts a reference CA in a process of its own on 127.0.0.1 (free ports), then
sends ``--inputs`` inputs from :mod:`conformance.testkit.fuzz` (raw bytes, PDUs with one
field mutated, fragment sequences, mutated NDR in sealed calls), one seeded
``random.Random``, so a seed and an index reproduce an input.  Stops at the count
or at ``--time-limit`` seconds, whichever comes first.  Every ``--check-every``
inputs and at the end a fresh valid client must enroll (a Request at PKT_PRIVACY
answered with disposition 3).  Prints: inputs per kind, answers by class, rate,
crashes (ERROR records and uncaught thread exceptions in the CA process), hangs
(no answer and no close within ``--timeout``), answers outside the acceptable
set, the valid-client checks, the CA's RSS before and after, the request store's
row count and SQLite integrity.  Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import collections
import logging
import multiprocessing
import pathlib
import random
import secrets
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from conformance.testkit import fuzz  # noqa: E402
from conformance.testkit.fuzzrun import FuzzRunner, FuzzTarget  # noqa: E402

USER = "fuzz"
CA_NAME = fuzz.CA_NAME


def serve_ca(state_dir: str, log_path: str, password: str, ready, stop) -> None:
    """The CA process: WARNING and above to ``log_path``; an uncaught exception in
    any thread is logged at ERROR too."""
    import threading

    from conformance.refca.ca import ReferenceCA
    from conformance.refca.config import load_config
    from conformance.wire.gss import nt_hash

    logging.basicConfig(level=logging.WARNING, filename=log_path, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("scapy").setLevel(logging.ERROR)
    log = logging.getLogger("conformance.refca")
    threading.excepthook = lambda args: log.error("uncaught exception in thread %s: %r",
                                                  args.thread.name if args.thread else "?", args.exc_value)
    config = load_config(None, host="127.0.0.1", port=0, state_dir=pathlib.Path(state_dir), ca_name=CA_NAME,
                         users={USER: nt_hash(password)})
    ca = ReferenceCA(config).start()
    ready.send(ca.activation_port)
    stop.wait()
    ca.stop()


def rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def error_records(log_path: pathlib.Path) -> list[str]:
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return [line for line in text.splitlines() if line.startswith("ERROR ")]


def store_health(state_dir: pathlib.Path) -> tuple[int, str]:
    """(rows, PRAGMA integrity_check) of the CA's request store, opened read-only."""
    db = sqlite3.connect(f"file:{state_dir / 'requests.sqlite3'}?mode=ro", uri=True)
    try:
        return (db.execute("SELECT COUNT(*) FROM requests").fetchone()[0],
                db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds; stops the run early")
    parser.add_argument("--timeout", type=float, default=2.0, help="bound on each answer, seconds")
    parser.add_argument("--check-every", type=int, default=2000, help="inputs between valid-client checks")
    parser.add_argument("--progress", type=int, default=10_000, help="print a line every N inputs")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the CA process on the way out
    password = secrets.token_urlsafe(18)  # in memory only
    with tempfile.TemporaryDirectory(prefix="wcce-fuzz-") as scratch:
        state, log_path = pathlib.Path(scratch) / "state", pathlib.Path(scratch) / "ca.log"
        spawn = multiprocessing.get_context("spawn")
        ready, ready_child = spawn.Pipe()
        stop = spawn.Event()
        ca = spawn.Process(target=serve_ca, args=(str(state), str(log_path), password, ready_child, stop),
                           daemon=True)
        ca.start()
        if not ready.poll(60):
            print("the reference CA did not start", file=sys.stderr)
            ca.kill()
            return 1
        port = ready.recv()
        target = FuzzTarget(host="127.0.0.1", activation_port=port, user=USER, password=password,
                            ca_name=CA_NAME, timeout=args.timeout)
        try:
            return run(args, target, ca, state, log_path)
        finally:
            stop.set()
            ca.join(10)
            if ca.is_alive():
                ca.kill()


def run(args, target: FuzzTarget, ca, state: pathlib.Path, log_path: pathlib.Path) -> int:
    choose = fuzz.RandomChooser(random.Random(args.seed))
    per_kind: collections.Counter = collections.Counter()
    by_class: collections.Counter = collections.Counter()
    details: collections.Counter = collections.Counter()
    rejected: list[str] = []  # answers outside the acceptable set
    checks = passed = harness_errors = 0
    with FuzzRunner(target) as runner:
        first = runner.enroll()  # also warms up the client and learns the exporter port
        rss_before = rss_kib(ca.pid)
        print(f"seed {args.seed}, CA pid {ca.pid} on 127.0.0.1:{target.activation_port}, "
              f"first enrollment disposition {first}, CA RSS {rss_before} KiB", flush=True)
        start = time.monotonic()
        sent = 0
        while sent < args.inputs and time.monotonic() - start < args.time_limit:
            item = fuzz.generate(choose)
            index, sent = sent, sent + 1
            try:
                answer = runner.send(item)
            except Exception as exc:  # noqa: BLE001 - counted: the CA may be gone
                harness_errors += 1
                rejected.append(f"#{index} {item.label}: the harness failed: {type(exc).__name__}: {exc}")
                if not ca.is_alive():
                    break
                continue
            per_kind[item.kind.value] += 1
            by_class[(item.kind.value, answer.cls.value)] += 1
            details[answer.label] += 1
            if answer.cls not in fuzz.acceptable(item):
                rejected.append(f"#{index} {item.label}: {answer.label}")
            if sent % args.check_every == 0 or sent == args.inputs:
                checks += 1
                passed += runner.enroll() == 3
            if args.progress and sent % args.progress == 0:
                rate = sent / (time.monotonic() - start)
                print(f"  {sent} inputs, {rate:.0f}/s, rejected {len(rejected)}, "
                      f"checks {passed}/{checks}", flush=True)
        elapsed = time.monotonic() - start
        if sent % args.check_every and sent != args.inputs:  # stopped by the time limit
            checks += 1
            passed += runner.enroll() == 3
    rss_after = rss_kib(ca.pid) if ca.is_alive() else 0
    crashes = error_records(log_path)
    hangs = sum(n for (_, cls), n in by_class.items() if cls == fuzz.AnswerClass.TIMEOUT.value)
    rows, integrity = store_health(state)

    print(f"inputs sent: {sent} in {elapsed:.0f} s ({sent / elapsed:.1f} inputs/s), seed {args.seed}")
    print("per kind: " + ", ".join(f"{k} {n}" for k, n in sorted(per_kind.items())))
    print("answers by class:")
    for kind in sorted(per_kind):
        row = {cls: n for (k, cls), n in by_class.items() if k == kind}
        print(f"  {kind:<10} " + ", ".join(f"{cls} {n}" for cls, n in sorted(row.items())))
    print("most frequent answers: " + ", ".join(f"{label} {n}" for label, n in details.most_common(8)))
    print(f"crashes (CA ERROR records): {len(crashes)}; CA process alive: {ca.is_alive()}")
    print(f"hangs (timeouts): {hangs}")
    print(f"answers outside the acceptable set: {len(rejected)} (harness errors {harness_errors})")
    print(f"valid-client checks passed: {passed}/{checks}")
    print(f"sealed NDR sessions the CA closed after an answer: {runner.late_drops}")
    print(f"CA RSS: {rss_before} KiB before, {rss_after} KiB after")
    print(f"request store: {rows} rows, integrity_check {integrity}")
    for line in rejected[:20] + crashes[:5]:
        print("  " + line[:300])
    ok = not crashes and not rejected and hangs == 0 and passed == checks and integrity == "ok" \
        and ca.is_alive() and runner.late_drops == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
