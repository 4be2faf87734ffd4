"""One enrollment at PKT_PRIVACY as a whole process: ``wcce-conformance enroll`` vs
``certipy req -dcom``, against the same reference CA, interleaved, in one run.

    .venv/bin/python bench/bench_enroll.py [--rounds 10]

Both pay for their interpreter start, imports, an RSA-2048 key and the DCOM exchange
(certipy speaks raw NTLM, ours SPNEGO/NTLM, both at level 6).  The CA listens on port
135 of a fresh loopback address (certipy knows no other port; needs root).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance.commands.probe_client import certipy_path  # noqa: E402
from conformance.refca.ca import ReferenceCA  # noqa: E402
from conformance.refca.config import load_config, nt_hash  # noqa: E402

PASSWORD = "Bench-Passw0rd!"
CA_NAME = "WCCE-LAB-CA"
HOST = "127.77.0.135"


def ours(workdir: pathlib.Path, n: int) -> list[str]:
    return [str(pathlib.Path(sys.executable).with_name("wcce-conformance")),  # the venv running this
            "enroll", "--host", HOST, "--ca", CA_NAME, "--user", "bench", "--domain", "lab.test",
            "--password-env", "BENCH_PASSWORD", "--out", str(workdir / f"ours{n}")]


def theirs(workdir: pathlib.Path, n: int) -> list[str]:
    # every lookup certipy makes points at the CA's loopback address: nothing leaves the machine
    return [certipy_path(), "req", "-u", "bench@lab.test", "-p", PASSWORD, "-ca", CA_NAME,
            "-target", HOST, "-target-ip", HOST, "-dc-ip", HOST, "-ns", HOST, "-dns-tcp", "-dcom",
            "-timeout", "10", "-template", "User", "-out", str(workdir / f"certipy{n}")]


def timed(command: list[str], workdir: pathlib.Path, check: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL, env={**os.environ, "BENCH_PASSWORD": PASSWORD})
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or check not in result.stdout:
        raise SystemExit(f"{command[0]} failed ({result.returncode}): {result.stdout[-500:]} {result.stderr[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if not pathlib.Path(certipy_path()).exists():
        raise SystemExit("certipy not found: bash .ci/install creates .venv-certipy")
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as work:
        workdir = pathlib.Path(work)
        config = load_config(None, host=HOST, port=135, state_dir=pathlib.Path(state),
                             users={"bench": nt_hash(PASSWORD)}, ca_name=CA_NAME)
        ca = ReferenceCA(config).start()
        try:
            timed(ours(workdir, 0), workdir, "issued")  # warm the page cache for both
            timed(theirs(workdir, 0), workdir, "Successfully requested certificate")
            mine, certipy = [], []
            for n in range(1, args.rounds + 1):
                mine.append(timed(ours(workdir, n), workdir, "issued"))
                certipy.append(timed(theirs(workdir, n), workdir, "Successfully requested certificate"))
        finally:
            ca.stop()
    med = statistics.median
    print(f"rounds: {args.rounds} (interleaved; whole process, RSA-2048 key, level 6)")
    print(f"wcce-conformance enroll  median {med(mine) * 1000:7.1f} ms  (min {min(mine) * 1000:.1f})")
    print(f"certipy req -dcom        median {med(certipy) * 1000:7.1f} ms  (min {min(certipy) * 1000:.1f})")
    print(f"ratio (ours / certipy): {med(mine) / med(certipy):.2f}x  (target <= 0.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
