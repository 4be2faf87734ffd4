"""Cost of the evidence pipeline per case: tap + dissection + decryption + checks,
as a ratio to the same exchange without them, measured in one run.

    .venv/bin/python bench/bench_capture.py [--rounds 30]

Each round runs one case (activation, exporter bind, ICertRequestD::Request at
PKT_PRIVACY over SPNEGO/NTLM) against the embedded reference CA twice, bare and
with the pipeline, interleaved so that drift hits both alike.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from conformance.capture.tap import Tap  # noqa: E402
from conformance.client import methods  # noqa: E402
from conformance.client.session import WcceSession  # noqa: E402
from conformance.client.settings import ClientSettings, Provider  # noqa: E402
from conformance.refca.ca import ReferenceCA  # noqa: E402
from conformance.refca.config import load_config, nt_hash  # noqa: E402
from conformance.judge import checks  # noqa: E402

PASSWORD = "Bench-Passw0rd!"
CA_NAME = "WCCE-LAB-CA"


def one_case(settings: ClientSettings, csr: bytes, tap: Tap | None):
    session = WcceSession.from_settings(settings, tap=tap)
    try:
        session.activate()
        session.connect_exporter()
        result = session.call(methods.request(CA_NAME, csr))
        assert result.response.pdwDisposition == 3
    finally:
        session.close()


def judge(tap: Tap, csr: bytes) -> tuple[float, float]:
    start = time.perf_counter()
    t = tap.transcript({"bench": nt_hash(PASSWORD)})
    built = time.perf_counter()
    results = [checks.interface_version(t), checks.security_provider(t),
               checks.auth_type_consistent(t), checks.auth_level(t),
               checks.stub_confidentiality(t, [csr, CA_NAME.encode("utf-16-le")]),
               checks.impersonation_flags(t), checks.privacy_requested(t), checks.not_anonymous(t),
               checks.spnego_mechanism(t), checks.even_legs(t)]
    assert all(r.passed for r in results)
    return built - start, time.perf_counter() - built


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        config = load_config(None, host="127.0.0.1", port=0, state_dir=pathlib.Path(state),
                             users={"bench": nt_hash(PASSWORD)}, ca_name=CA_NAME)
        ca = ReferenceCA(config).start()
        try:
            settings = ClientSettings(host="127.0.0.1", port=ca.activation_port,
                                      provider=Provider.SPNEGO_NTLM, level=6, user="bench",
                                      domain="lab.test", password=PASSWORD)
            csr = methods.new_pkcs10("bench")
            one_case(settings, csr, None)  # warm-up (imports, first key)
            bare, tapped, build, judged = [], [], [], []
            for _ in range(args.rounds):
                start = time.perf_counter()
                one_case(settings, csr, None)
                bare.append(time.perf_counter() - start)
                tap = Tap()
                start = time.perf_counter()
                one_case(settings, csr, tap)
                b, j = judge(tap, csr)
                tapped.append(time.perf_counter() - start)
                build.append(b)
                judged.append(j)
        finally:
            ca.stop()
    med = statistics.median
    print(f"rounds: {args.rounds}")
    print(f"bare exchange         median {med(bare) * 1000:7.1f} ms")
    print(f"with tap+transcript+checks median {med(tapped) * 1000:7.1f} ms")
    print(f"  of which transcript (frame, decode, unseal) {med(build) * 1000:6.1f} ms, "
          f"checks {med(judged) * 1000:5.2f} ms")
    print(f"ratio (with / bare): {med(tapped) / med(bare):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
