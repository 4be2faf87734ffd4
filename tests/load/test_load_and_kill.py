"""Load and faults: fifty concurrent clients against a reference CA in its own process,
some of them hanging up mid-call, and in one run the CA killed with SIGKILL mid-run.

Afterwards, read from the CA's SQLite file and through a (restarted) CA: every
request the CA answered (request ID, disposition issued, certificate) is stored
with that certificate; no request is stored twice; no serial number repeats; the
database passes ``integrity_check``; the CA serves a new enrollment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import socket
import sqlite3
import struct
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conformance.client import methods
from conformance.client.dcom import orpc_request_stub
from conformance.client.rpc import Credentials, Security
from conformance.client.session import WcceSession
from conformance.wire import wcce
from conformance.wire.rpc import PfcFlag
from conformance.wire.wcce import Disposition, Opnum
from tests.conftest import CA_NAME, USERS
from tests.load.caprocess import CaProcess
from tests.support.hosts import can_bind_privileged, fresh_loopback

CLIENTS = 50
REQUESTS_PER_CLIENT = 2       # completed Requests on each client's session before any hang-up
KILL_AFTER_ANSWERS = 40       # of the 100 a full run answers: the kill lands mid-run
CLIENT_TIMEOUT = 30.0         # per socket operation; 50 NTLM handshakes queue up on 2 cores
RUN_DEADLINE = 90.0           # for all client threads together
SECURITY = Security(auth_type=9, level=6,  # SPNEGO/NTLM, PKT_PRIVACY
                    credentials=Credentials(user="alice", domain="lab.test", password=USERS["alice"]))


class Role(enum.Enum):
    COMPLETE = "complete"
    HANG_UP_AFTER_SEND = "hang up after sending a sealed Request"
    RESET_AFTER_SEND = "reset (RST) after sending a sealed Request"
    HANG_UP_MID_FRAGMENT = "hang up after the first fragment of a Request"


def role_of(index: int) -> Role:
    return (Role.COMPLETE, Role.COMPLETE, Role.HANG_UP_AFTER_SEND, Role.RESET_AFTER_SEND,
            Role.HANG_UP_MID_FRAGMENT)[index % 5]


@functools.cache
def _pooled_key(slot: int):
    return ec.generate_private_key(ec.SECP256R1())


def fresh_csr(common_name: str) -> bytes:
    """A new PKCS#10 (its own subject, so each stored request is recognisable) signed
    by one of four pooled keys: key generation is not what this test loads."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    key = _pooled_key(hash(common_name) % 4)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """A Request the CA answered: what the client holds as proof."""

    request_id: int
    csr: bytes
    certificate: bytes


@dataclasses.dataclass(slots=True)
class RunLog:
    """What the clients saw; appended to from many threads (list.append is atomic)."""

    answers: list[Answer] = dataclasses.field(default_factory=list)
    hung_up: list[bytes] = dataclasses.field(default_factory=list)  # sent whole, then FIN; reply never read
    reset: list[bytes] = dataclasses.field(default_factory=list)    # sent whole, then RST
    torn: list[bytes] = dataclasses.field(default_factory=list)       # never sent whole
    errors: list[tuple[float, int, str]] = dataclasses.field(default_factory=list)  # (when, client, what)
    answered: threading.Semaphore = dataclasses.field(default_factory=lambda: threading.Semaphore(0))


def _open_session(ca: CaProcess) -> WcceSession:
    session = WcceSession(ca.host, ca.activation_port, security=SECURITY, timeout=CLIENT_TIMEOUT)
    outcome, activation = session.activate()
    if activation is None or activation.status != 0:
        raise AssertionError(f"activation failed: ptype {outcome.ptype}, closed {outcome.closed}")
    session.connect_exporter()
    if wcce.IID_ICERTREQUESTD not in session.exporter.contexts:
        raise AssertionError("the exporter refused the ICertRequestD bind")
    return session


def _enroll(session: WcceSession, csr: bytes) -> Answer:
    response = session.call(methods.request(CA_NAME, csr)).response
    if response is None:
        raise AssertionError("no response to Request")
    if response.pdwDisposition != Disposition.ISSUED:
        raise AssertionError(f"disposition 0x{int(response.pdwDisposition):x}")
    return Answer(request_id=int(response.pdwRequestId), csr=csr,
                  certificate=bytes(response.pctbEncodedCert.valueof("pb")))


def _hang_up(session: WcceSession, csr: bytes, role: Role) -> None:
    """Send a sealed Request (whole, or only its first fragment) and close without reading."""
    conn = session.exporter
    stub = orpc_request_stub(methods.request(CA_NAME, csr))
    target = dict(cont_id=conn.contexts[wcce.IID_ICERTREQUESTD],
                  object_uuid=session.activation.ipid(wcce.IID_ICERTREQUESTD))
    if role is Role.HANG_UP_MID_FRAGMENT:
        pdu = conn.request_pdu(Opnum.REQUEST, stub[:64], pfc_flags=PfcFlag.FIRST_FRAG,
                               alloc_hint=len(stub), **target)
    else:
        pdu = conn.request_pdu(Opnum.REQUEST, stub, **target)
    if role is Role.RESET_AFTER_SEND:  # linger 0: close() sends RST instead of FIN
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.send(pdu)
    conn.close()


def run_client(ca: CaProcess, index: int, start: threading.Barrier, log: RunLog) -> None:
    role = role_of(index)
    try:
        start.wait(timeout=CLIENT_TIMEOUT)
        with contextlib.closing(_open_session(ca)) as session:
            for n in range(REQUESTS_PER_CLIENT):
                log.answers.append(_enroll(session, fresh_csr(f"load-{index}-{n}")))
                log.answered.release()
            if role is not Role.COMPLETE:
                csr = fresh_csr(f"load-{index}-gone")
                # noted before the send: the kill may cut it short, and then it is only
                # known not to be stored twice
                {Role.HANG_UP_AFTER_SEND: log.hung_up, Role.RESET_AFTER_SEND: log.reset,
                 Role.HANG_UP_MID_FRAGMENT: log.torn}[role].append(csr)
                _hang_up(session, csr, role)
    except Exception as exc:  # the log is the verdict; the kill makes some of these expected
        log.errors.append((time.monotonic(), index, f"{role.value}: {type(exc).__name__}: {exc}"))


def run_clients(ca: CaProcess, log: RunLog, *, kill_after: int | None = None) -> float | None:
    """Run every client; with ``kill_after``, SIGKILL the CA once that many Requests
    were answered.  Returns when the kill happened (monotonic), if it did."""
    start = threading.Barrier(CLIENTS)
    threads = [threading.Thread(target=run_client, args=(ca, i, start, log), daemon=True,
                                name=f"load-client-{i}") for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + RUN_DEADLINE
    killed_at = None
    if kill_after is not None:
        for _ in range(kill_after):
            assert log.answered.acquire(timeout=max(0.0, deadline - time.monotonic())), \
                f"only {len(log.answers)} answers before the deadline; errors: {log.errors[:3]}"
        killed_at = time.monotonic()
        ca.kill()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"clients still running after {RUN_DEADLINE} s: {stuck}"
    return killed_at


# -- reading what the CA stored ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    id: int
    status: str
    serial: str | None
    certificate: bytes | None
    csr: bytes | None


def read_store(state_dir) -> list[Row]:
    """Every row, from a connection of our own (SQLite recovers the WAL on open)."""
    with contextlib.closing(sqlite3.connect(state_dir / "requests.sqlite3", timeout=10)) as db:
        [[verdict]] = db.execute("PRAGMA integrity_check").fetchall()
        assert verdict == "ok", verdict
        return [Row(id=r[0], status=r[1], serial=r[2], certificate=r[3], csr=r[4]) for r in db.execute(
            "SELECT id, status, serial, certificate_der, request_der FROM requests ORDER BY id")]


def assert_store_consistent(rows: list[Row], log: RunLog) -> None:
    by_id = {row.id: row for row in rows}
    for answer in log.answers:
        row = by_id.get(answer.request_id)
        assert row is not None, f"request {answer.request_id} was answered but is not stored"
        assert row.status == "issued" and row.certificate == answer.certificate, \
            f"request {answer.request_id}: the stored certificate is not the one the client got"
        assert row.csr == answer.csr, f"request {answer.request_id} stores another client's CSR"
    csrs = [row.csr for row in rows]
    assert len(csrs) == len(set(csrs)), "a request is stored twice"
    assert not set(log.torn) & set(csrs), "a Request whose fragments never all arrived was stored"
    issued = [row for row in rows if row.status == "issued"]
    serials = [row.serial for row in issued]
    assert None not in serials and len(serials) == len(set(serials)), "a serial number repeats"
    for row in issued:
        assert x509.load_der_x509_certificate(row.certificate).serial_number == int(row.serial, 16)


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def assert_serves_new_enrollment(ca: CaProcess, rows: list[Row]) -> Answer:
    with contextlib.closing(_open_session(ca)) as session:
        answer = _enroll(session, fresh_csr("after-the-run"))
    assert answer.request_id > max((row.id for row in rows), default=0), "a request ID was reused"
    return answer


# -- the runs ---------------------------------------------------------------------------------------


@pytest.fixture
def ca_processes(tmp_path):
    started: list[CaProcess] = []

    def start(state_dir, host, port=135 if can_bind_privileged() else 0):
        ca = CaProcess.start(host=host, port=port, state_dir=state_dir,
                             log_path=tmp_path / f"ca-{len(started)}.log")
        started.append(ca)
        return ca

    yield start
    for ca in started:
        ca.stop()


def test_fifty_clients_some_hanging_up(ca_processes, tmp_path):
    state = tmp_path / "state"
    ca = ca_processes(state, fresh_loopback())
    idle_fds, idle_threads = ca.open_fds(), ca.threads()
    log = RunLog()
    run_clients(ca, log)

    assert not log.errors, log.errors[:5]
    assert len(log.answers) == CLIENTS * REQUESTS_PER_CLIENT
    # a Request sent whole and followed by a FIN is served although nobody reads the
    # reply (after an RST the kernel may drop it unread: those are only never doubled)
    assert _wait_until(lambda: set(log.hung_up) <= {r.csr for r in read_store(state)}, 20), \
        "a Request sent whole before a FIN was never stored"
    # every connection, including the hung-up ones, is let go
    assert _wait_until(lambda: ca.open_fds() <= idle_fds and ca.threads() <= idle_threads, 20), \
        f"fds {ca.open_fds()} (idle {idle_fds}), threads {ca.threads()} (idle {idle_threads})"
    rows = read_store(state)
    assert_store_consistent(rows, log)
    stored = {row.csr for row in rows}
    print(f"{len(log.answers)} answers; {len(rows)} rows; stored after FIN {len(set(log.hung_up) & stored)}"
          f"/{len(log.hung_up)}, after RST {len(set(log.reset) & stored)}/{len(log.reset)}")
    new = assert_serves_new_enrollment(ca, rows)
    assert_store_consistent(read_store(state), dataclasses.replace(log, answers=log.answers + [new]))
    assert ca.proc.poll() is None, "the CA exited"


def test_sigkill_mid_run_then_restart(ca_processes, tmp_path):
    state, host = tmp_path / "state", fresh_loopback()
    ca = ca_processes(state, host)
    log = RunLog()
    killed_at = run_clients(ca, log, kill_after=KILL_AFTER_ANSWERS)

    before_kill = [e for e in log.errors if e[0] < killed_at]
    assert not before_kill, before_kill[:5]
    assert log.errors, "the kill interrupted no client: it did not land mid-run"
    assert len(log.answers) < CLIENTS * REQUESTS_PER_CLIENT
    rows = read_store(state)  # the file exactly as SIGKILL left it
    assert_store_consistent(rows, log)
    print(f"killed after {len(log.answers)} answers; {len(rows)} rows stored; "
          f"{len(log.errors)} clients cut off")

    restarted = ca_processes(state, host, ca.activation_port)  # where the clients knew it
    new = assert_serves_new_enrollment(restarted, rows)
    # what the clients were told is what the restarted CA tells them back
    with contextlib.closing(_open_session(restarted)) as session:
        for answer in log.answers[::7]:
            again = session.call(methods.retrieve(CA_NAME, answer.request_id)).response
            assert again.pdwDisposition == Disposition.ISSUED, answer.request_id
            assert bytes(again.pctbEncodedCert.valueof("pb")) == answer.certificate
    assert_store_consistent(read_store(state), dataclasses.replace(log, answers=log.answers + [new]))
