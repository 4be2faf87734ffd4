"""The main job until the conformance cases land: the transport smoke matrix.

Starts the embedded reference CA, drives the suite's own client through
provider x level against ``ICertRequestD::Request``, compares each outcome with
what [MS-WCCE] 2.1 and the CA's policy require, and writes
``reports/<run-id>/results.json``.  The table-driven cases, the HTML report and
the gate replace this (issues 4 and 5); the matrix and its expectations are the
seed of those tables.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import secrets
import sys
import tempfile
import time

from conformance import __version__
from conformance.client.rpc import Credentials, Security
from conformance.client.session import WcceSession
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config, nt_hash
from conformance.refca.listener import PortInUse
from conformance.wire import wcce
from conformance.wire.rpc import FaultStatus

__all__ = ["run_smoke"]

PROVIDERS = {"spnego-ntlm": 0x09, "ntlm": 0x0A}


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    variant: str
    expected: str
    observed: str

    @property
    def verdict(self) -> str:
        return "PASS" if self.expected == self.observed else "FAIL"


def _start_ca(state_dir: pathlib.Path, password: str) -> ReferenceCA:
    users = {"smoke": nt_hash(password)}
    for port in (135, 0):
        try:
            config = load_config(None, host="127.0.0.1", port=port, state_dir=state_dir, users=users)
            return ReferenceCA(config).start()
        except PortInUse:
            continue
    raise PortInUse("cannot listen on 127.0.0.1")


def _observe(ca: ReferenceCA, security: Security, csr: bytes) -> str:
    session = WcceSession(ca.config.listen.host, ca.activation_port, security=security)
    try:
        outcome, activation = session.activate()
        if activation is None:
            return f"activation fault 0x{outcome.fault_status or 0:x}"
        session.connect_exporter()
        result = session.call(wcce.Request_Request(
            dwFlags=0, pwszAuthority=ca.config.ca_name, pdwRequestId=0,
            pwszAttributes="CertificateTemplate:User", pctbRequest=wcce.blob(csr), ndr64=False))
        if result.response is None:
            return f"fault 0x{result.fault_status or 0:x}"
        return f"disposition {result.response.pdwDisposition}"
    finally:
        session.close()


def run_smoke(report_dir: pathlib.Path, *, out=sys.stderr) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = report_dir / run_id
    target.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)  # lives in memory only
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smoke")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    started = time.time()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as state:
        ca = _start_ca(pathlib.Path(state), password)
        try:
            creds = Credentials(user="smoke", domain="lab.test", password=password)
            rows.append(Row("none/level-1", "activation fault 0x5",
                            _observe(ca, Security(auth_type=0, level=1), csr)))
            for name, auth_type in PROVIDERS.items():
                for level in range(2, 7):
                    expected = (f"disposition {wcce.Disposition.ISSUED}" if level == 6
                                else f"fault 0x{FaultStatus.ACCESS_DENIED:x}")
                    sec = Security(auth_type=auth_type, level=level, credentials=creds)
                    rows.append(Row(f"{name}/level-{level}", expected, _observe(ca, sec, csr)))
        finally:
            ca.stop()
    document = {
        "suite": {"name": "wcce-conformance", "version": __version__, "job": "transport smoke"},
        "target": {"kind": "embedded reference CA", "ca_name": "WCCE-LAB-CA"},
        "started": started, "finished": time.time(),
        "results": [dict(dataclasses.asdict(r), verdict=r.verdict) for r in rows],
    }
    (target / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    for row in rows:
        print(f"{row.verdict:4s} {row.variant:20s} expected {row.expected:22s} observed {row.observed}",
              file=out)
    failed = sum(r.verdict != "PASS" for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} as required; results in {target / 'results.json'}", file=out)
    return 1 if failed else 0
