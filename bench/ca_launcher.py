"""The reference CA in a process of its own, for bench_ca.py: built exactly as
``wcce-conformance ca serve`` builds it, plus an optional cProfile of every thread.

    python bench/ca_launcher.py --host 127.0.0.1 --state-dir DIR --log FILE [--profile FILE]

The account is ``bench`` with the password from the environment variable
``BENCH_CA_PASSWORD`` (never on the command line).  One line on stdout when it serves:
``serving: activation HOST:PORT``.  SIGTERM stops it; with ``--profile`` the
merged statistics of the threads that ended are written (pstats format) first.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pathlib
import pstats
import signal
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from conformance.refca.ca import ReferenceCA  # noqa: E402
from conformance.refca.config import load_config, nt_hash  # noqa: E402

USER = "bench"
PASSWORD_ENV = "BENCH_CA_PASSWORD"
CA_NAME = "WCCE-LAB-CA"


class ThreadProfiles:
    """cProfile is per thread: give every thread started from now on its own profile.

    Timed with the thread's CPU clock: with sixteen threads taking turns on the GIL,
    wall-clock profiles charge every function for the time its thread waited.
    """

    def __init__(self) -> None:
        self._ended: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._original_run = threading.Thread.run

    def install(self) -> None:
        profiles, original_run = self, self._original_run

        def profiled_run(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)
            profile.enable()
            try:
                original_run(thread)
            finally:
                profile.disable()
                with profiles._lock:
                    profiles._ended.append(profile)

        threading.Thread.run = profiled_run

    def dump(self, path: pathlib.Path) -> int:
        with self._lock:
            ended = list(self._ended)
        if not ended:
            return 0
        stats = pstats.Stats(ended[0])
        for profile in ended[1:]:
            stats.add(profile)
        stats.dump_stats(str(path))
        return len(ended)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--state-dir", type=pathlib.Path, required=True)
    parser.add_argument("--log", type=pathlib.Path, required=True, help="the CA's log (INFO, as ca serve logs)")
    parser.add_argument("--profile", type=pathlib.Path, help="write a cProfile of the CA's threads here")
    args = parser.parse_args()

    # as `ca serve` does: every call logged at INFO (here to a file, not a terminal)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        filename=str(args.log))
    profiles = ThreadProfiles() if args.profile else None
    if profiles is not None:
        profiles.install()
    config = load_config(None, host=args.host, port=0, state_dir=args.state_dir, ca_name=CA_NAME,
                         users={USER: nt_hash(os.environ[PASSWORD_ENV])})
    ca = ReferenceCA(config).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving: activation {args.host}:{ca.activation_port}", flush=True)
    stop.wait()
    ca.stop()
    if profiles is not None:
        threading.Event().wait(0.5)  # let the connection threads that stop() woke finish
        profiles.dump(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
