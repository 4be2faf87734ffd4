"""Wall time of the whole case suite against the embedded reference CA, serial and with
pytest-xdist workers, as ratios to baselines measured in the same run:

* ``-n N`` vs ``-n 1``: the speed-up workers give (each starts its own embedded CA);
* per case vs a bare exchange: one case's mean cost as a multiple of one activation +
  bind + ``ICertRequestD::Request`` at PKT_PRIVACY without tap, transcript or checks.

    .venv/bin/python bench/bench_suite.py [--workers 1 2] [--bare-rounds 20]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance.client import methods  # noqa: E402
from conformance.client.session import WcceSession  # noqa: E402
from conformance.client.settings import ClientSettings  # noqa: E402
from conformance.targets.embedded import embedded_target  # noqa: E402


def bare_exchange_seconds(rounds: int) -> float:
    with embedded_target() as (target, _ca):
        settings = ClientSettings.from_mapping(
            {"provider": "spnego-ntlm", "level": 6}, host=target.host, port=target.activation_port,
            user=target.user, domain=target.domain, password=target.password)
        times = []
        for n in range(rounds):
            csr = methods.new_pkcs10(f"bench-{n}")  # made outside the timing, as the suite's cases do not
            start = time.perf_counter()
            session = WcceSession.from_settings(settings)
            try:
                session.activate()
                session.connect_exporter()
                result = session.call(methods.request(target.ca_name, csr))
                assert int(result.response.pdwDisposition) == 3
            finally:
                session.close()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def suite_seconds(workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        argv = [sys.executable, "-m", "pytest", str(REPO / "cases"), "-q", "-p", "no:cacheprovider",
                "-o", "addopts=", "--wcce-results", f"{scratch}/results.json"]
        if workers > 1:
            argv += ["-n", str(workers)]
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, cwd=scratch)
        elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"suite run with {workers} worker(s) failed:\n{result.stdout[-2000:]}")
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    return elapsed, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--bare-rounds", type=int, default=20)
    args = parser.parse_args()
    bare = bare_exchange_seconds(args.bare_rounds)
    print(f"baseline: bare exchange (activation + bind + Request, PKT_PRIVACY) {bare * 1000:.0f} ms (median)")
    serial = None
    for workers in args.workers:
        elapsed, cases = suite_seconds(workers)
        serial = serial or elapsed
        print(f"-n {workers}: {cases} cases in {elapsed:.1f} s; {elapsed / cases * 1000:.0f} ms/case "
              f"= {elapsed / cases / bare:.2f}x a bare exchange; {serial / elapsed:.2f}x the speed of -n "
              f"{args.workers[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
