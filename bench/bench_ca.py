"""Reference-CA throughput, latency and memory, with the CA in a separate process
so that its CPU and the clients' CPU are measured apart.

    .venv/bin/python bench/bench_ca.py [--full N] [--requests N] [--clients 1 4 16]
                                       [--rss 10000] [--time-limit 600] [--profile DIR]

Two definitions of "one enrollment", each measured with 1, 4 and 16 concurrent
clients (threads of this process, each on its own connections):

* full: ``RemoteCreateInstance`` on a new activation connection (SPNEGO/NTLM,
  PKT_INTEGRITY), a new exporter connection bound with SPNEGO/NTLM at PKT_PRIVACY,
  one ``ICertRequestD::Request`` (a fresh PKCS#10, template User, issued), close;
* request: one ``ICertRequestD::Request`` at PKT_PRIVACY on a level-6 session each
  client opened before the clock started (the CA's request path alone).

Latency is per enrollment on the client; throughput is enrollments / wall time of
the phase; the ratios 4 vs 1 and 16 vs 1 client come from the same run.  The RSS
check starts a fresh CA and reads its VmRSS after 1k, 5k and 10k request-mode
enrollments (16 clients), bounded by --time-limit.  CSRs are made before each phase
from a pool of four keys, outside the clock and outside the client CPU figure.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import pathlib
import pstats
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from conformance.client import methods  # noqa: E402
from conformance.client.rpc import Credentials, Security  # noqa: E402
from conformance.client.session import WcceSession  # noqa: E402
from conformance.wire.wcce import Disposition  # noqa: E402

LAUNCHER = REPO / "bench" / "ca_launcher.py"
CA_NAME = "WCCE-LAB-CA"
TARGET_THROUGHPUT = 100.0    # enrollments/s with 16 concurrent clients
TARGET_P99 = 0.250           # seconds
TARGET_RSS = 200_000_000 // 1024  # 200 MB, in KiB, after 10k enrollments
RSS_GROWTH_ALLOWED = 5 * 1024  # KiB from 5k to 10k enrollments: more is "growth"
CLIENT_TIMEOUT = 60.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the CA process ---------------------------------------------------------------------------------


class CaProcess:
    """bench/ca_launcher.py on a loopback address of this process; stopped by its PID."""

    _hosts = itertools.count(150)  # 127.<pid>.150+: clear of tests/support/hosts.py and embedded.py

    def __init__(self, scratch: pathlib.Path, name: str, *, profile: pathlib.Path | None = None) -> None:
        self.password = secrets.token_urlsafe(18)
        self.host = f"127.{(os.getpid() >> 8) & 0xFF}.{os.getpid() & 0xFF}.{next(self._hosts)}"
        self.state = scratch / f"state-{name}"
        argv = [sys.executable, str(LAUNCHER), "--host", self.host, "--state-dir", str(self.state),
                "--log", str(scratch / f"ca-{name}.log")]
        if profile is not None:
            argv += ["--profile", str(profile)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "BENCH_CA_PASSWORD": self.password})
        banner = self.proc.stdout.readline()  # the launcher writes nothing else to stdout
        if "serving" not in banner:
            self.proc.kill()
            raise SystemExit(f"the CA did not start (exit {self.proc.wait()}); see {scratch}/ca-{name}.log")
        self.port = int(banner.rsplit(":", 1)[1])
        self.security = Security(auth_type=9, level=6, credentials=Credentials(
            user="bench", domain="lab.test", password=self.password))

    def cpu_seconds(self) -> float:
        fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime

    def rss_kib(self) -> int:
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- clients ----------------------------------------------------------------------------------------


_KEYS = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]


def make_csrs(count: int, label: str) -> list[bytes]:
    csrs = []
    for n in range(count):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{label}-{n}")])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(_KEYS[n % 4], hashes.SHA256())
        csrs.append(csr.public_bytes(serialization.Encoding.DER))
    return csrs


def open_session(ca: CaProcess) -> WcceSession:
    session = WcceSession(ca.host, ca.port, security=ca.security, timeout=CLIENT_TIMEOUT)
    _, activation = session.activate()
    if activation is None or activation.status != 0:
        raise RuntimeError("activation failed")
    session.connect_exporter()
    return session


def request(session: WcceSession, csr: bytes) -> None:
    response = session.call(methods.request(CA_NAME, csr)).response
    if response is None or response.pdwDisposition != Disposition.ISSUED:
        raise RuntimeError(f"not issued: {response and hex(int(response.pdwDisposition))}")


def full_enrollment(ca: CaProcess, _session, csr: bytes) -> None:
    with contextlib.closing(open_session(ca)) as session:
        request(session, csr)


def session_request(_ca: CaProcess, session: WcceSession, csr: bytes) -> None:
    request(session, csr)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    mode: str
    clients: int
    enrollments: int
    wall: float
    latencies: tuple[float, ...]
    ca_cpu: float
    client_cpu: float
    errors: int

    @property
    def throughput(self) -> float:
        return self.enrollments / self.wall

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def ca_ceiling(self) -> float:
        """Enrollments per CPU-second of the CA: its rate with a core to itself (one
        Python process, one GIL: a core is all it can use), whatever else runs."""
        return self.enrollments / self.ca_cpu

    def line(self) -> str:
        per = 1000 / self.enrollments
        return (f"{self.mode:8s} {self.clients:3d} clients: {self.enrollments:6d} in {self.wall:6.1f} s = "
                f"{self.throughput:6.1f}/s  p50 {self.percentile(50) * 1000:6.1f} ms  "
                f"p99 {self.percentile(99) * 1000:6.1f} ms  "
                f"CA CPU {self.ca_cpu:6.1f} s ({self.ca_cpu / self.wall:4.0%} of a core, "
                f"{self.ca_cpu * per:5.1f} ms/enr, ceiling {self.ca_ceiling:5.1f}/s)  "
                f"client CPU {self.client_cpu:6.1f} s ({self.client_cpu / self.wall:4.0%}, "
                f"{self.client_cpu * per:5.1f} ms/enr)  errors {self.errors}")


def run_phase(ca: CaProcess, mode: str, clients: int, enrollments: int, *, time_limit: float,
              on_done=None) -> Phase:
    """``enrollments`` split over ``clients`` threads started together; request mode
    opens each client's session before the clock starts."""
    enroll = full_enrollment if mode == "full" else session_request
    csrs = make_csrs(enrollments, f"{mode}-{clients}-{time.monotonic_ns()}")
    shares = [csrs[i::clients] for i in range(clients)]
    sessions = [open_session(ca) if mode == "request" else None for _ in range(clients)]
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    deadline = time.monotonic() + time_limit

    def client(share: list[bytes], session) -> None:
        start.wait()
        for csr in share:
            if time.monotonic() > deadline:
                return
            began = time.perf_counter()
            try:
                enroll(ca, session, csr)
            except Exception as exc:  # counted; the phase goes on
                errors.append(repr(exc))
                continue
            latencies.append(time.perf_counter() - began)
            if on_done is not None:
                on_done()

    threads = [threading.Thread(target=client, args=(share, session), daemon=True)
               for share, session in zip(shares, sessions)]
    for thread in threads:
        thread.start()
    ca_cpu, client_cpu = ca.cpu_seconds(), time.process_time()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join(timeout=time_limit + CLIENT_TIMEOUT)
    wall = time.perf_counter() - began
    ca_cpu, client_cpu = ca.cpu_seconds() - ca_cpu, time.process_time() - client_cpu
    for session in sessions:
        if session is not None:
            session.close()
    if errors:
        print(f"  first error: {errors[0]}", file=sys.stderr)
    return Phase(mode=mode, clients=clients, enrollments=len(latencies), wall=wall,
                 latencies=tuple(latencies), ca_cpu=ca_cpu, client_cpu=client_cpu, errors=len(errors))


def rss_run(scratch: pathlib.Path, total: int, time_limit: float) -> tuple[dict[int, int], int]:
    """VmRSS (KiB) of a fresh CA after every 1000 request-mode enrollments, and the
    size of its request database (bytes)."""
    ca = CaProcess(scratch, "rss")
    try:
        rss = {0: ca.rss_kib()}
        done = [0]
        lock = threading.Lock()

        def count() -> None:
            with lock:
                done[0] += 1
                if done[0] % 1000 == 0:
                    rss[done[0]] = ca.rss_kib()

        phase = run_phase(ca, "request", 16, total, time_limit=time_limit, on_done=count)
        print(phase.line())
        db_bytes = sum(f.stat().st_size for f in ca.state.glob("requests.sqlite3*"))
    finally:
        ca.stop()
    return rss, db_bytes


# -- profile ----------------------------------------------------------------------------------------


def profile_run(scratch: pathlib.Path, out: pathlib.Path, *, full: int, requests: int) -> None:
    """The same phases at 16 clients against a CA whose threads are cProfiled; the
    figures of this run are not reported (cProfile slows the CA down)."""
    out.mkdir(parents=True, exist_ok=True)
    for mode, count in (("full", full), ("request", requests)):
        path = out / f"ca-{mode}.pstats"
        ca = CaProcess(scratch, f"profile-{mode}", profile=path)
        try:
            run_phase(ca, mode, 16, count, time_limit=600)
        finally:
            ca.stop()
        print(f"\nprofile of the CA, {mode} mode, 16 clients, {count} enrollments ({path}):")
        stats = pstats.Stats(str(path))
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats(30)


# -- report -----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=int, default=160, help="full enrollments per concurrency level")
    parser.add_argument("--requests", type=int, default=800, help="session Requests per concurrency level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rss", type=int, default=10000, help="enrollments of the RSS check (0: skip)")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds, per phase")
    parser.add_argument("--profile", type=pathlib.Path, metavar="DIR",
                        help="afterwards, profile the CA at 16 clients and print its hot spots")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args()

    print("\n\n".join(__doc__.split("\n\n")[2:5]), "\n")  # the definitions, with the figures
    print("load average at start: %.2f %.2f %.2f (other work on this machine shares its cores)\n"
          % os.getloadavg())
    figures: dict = {"phases": [], "targets": {}}
    with tempfile.TemporaryDirectory(prefix="bench-ca-") as tmp:
        scratch = pathlib.Path(tmp)
        ca = CaProcess(scratch, "main")
        try:
            run_phase(ca, "full", 2, 4, time_limit=60)        # warm-up: imports, caches
            run_phase(ca, "request", 2, 20, time_limit=60)
            phases = {}
            for mode, count in (("full", args.full), ("request", args.requests)):
                for clients in args.clients:
                    phase = run_phase(ca, mode, clients, count, time_limit=args.time_limit)
                    phases[mode, clients] = phase
                    print(phase.line(), flush=True)
                    figures["phases"].append({
                        "mode": mode, "clients": clients, "enrollments": phase.enrollments,
                        "wall_s": phase.wall, "per_s": phase.throughput, "p50_ms": phase.percentile(50) * 1000,
                        "p99_ms": phase.percentile(99) * 1000, "ca_cpu_s": phase.ca_cpu,
                        "client_cpu_s": phase.client_cpu, "ca_ceiling_per_s": phase.ca_ceiling,
                        "errors": phase.errors})
        finally:
            ca.stop()
        base = min(args.clients)
        print()
        for mode in ("full", "request"):
            ratios = [f"{c} vs {base}: {phases[mode, c].throughput / phases[mode, base].throughput:.2f}x"
                      for c in args.clients if c != base]
            print(f"{mode:8s} throughput scaling, same run: " + ", ".join(ratios))
        most = max(args.clients)
        print(f"\ntargets at {most} clients:")
        for mode in ("full", "request"):
            phase = phases[mode, most]
            print(f"  {mode:8s} >= {TARGET_THROUGHPUT:.0f}/s: {verdict(phase.throughput >= TARGET_THROUGHPUT)} "
                  f"({phase.throughput:.1f}/s = {phase.throughput / TARGET_THROUGHPUT:.2f}x the target)")
            p99 = phase.percentile(99)
            print(f"  {mode:8s} p99 < {TARGET_P99 * 1000:.0f} ms: {verdict(p99 < TARGET_P99)} "
                  f"({p99 * 1000:.0f} ms = {p99 / TARGET_P99:.2f}x the limit)")
            print(f"  {mode:8s} CA ceiling (1 / CA CPU per enrollment): {phase.ca_ceiling:.1f}/s = "
                  f"{phase.ca_ceiling / TARGET_THROUGHPUT:.2f}x the target")
            figures["targets"][mode] = {"per_s": phase.throughput, "p99_ms": p99 * 1000,
                                        "ca_ceiling_per_s": phase.ca_ceiling}
        if args.rss:
            print(f"\nRSS check: fresh CA, {args.rss} request-mode enrollments, 16 clients")
            rss, db = rss_run(scratch, args.rss, args.time_limit)
            marks = sorted(rss)
            print("  VmRSS (MiB) after N enrollments: "
                  + ", ".join(f"{n}: {rss[n] / 1024:.1f}" for n in marks))
            print(f"  request database: {db / 2**20:.1f} MiB")
            last = marks[-1]
            print(f"  RSS <= 200 MB after {last}: {verdict(rss[last] <= TARGET_RSS)} "
                  f"({rss[last] / 1024:.1f} MiB = {rss[last] / TARGET_RSS:.2f}x the limit)")
            # growth over the second half: the first thousand fill caches and pools
            half = max((n for n in marks if 0 < n <= last // 2), default=None)
            if half is None:
                print("  no growth: not judged (needs at least 2000 enrollments)")
            else:
                growth = rss[last] - rss[half]
                print(f"  no growth ({half} -> {last}: +{growth / 1024:.1f} MiB, allowed "
                      f"{RSS_GROWTH_ALLOWED / 1024:.0f}): {verdict(growth <= RSS_GROWTH_ALLOWED)}")
            if last < args.rss:
                print(f"  (the time limit stopped the check at {last} enrollments)")
            figures["rss_kib"] = rss
        if args.profile:
            profile_run(scratch, args.profile, full=args.full, requests=args.requests)
    print("\nload average at end: %.2f %.2f %.2f" % os.getloadavg())
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
