"""The I/O edge of the fuzzer: sends one :mod:`conformance.testkit.fuzz` input to a CA over
real TCP and returns the judge's :class:`~conformance.testkit.fuzz.Answer`.

Every input but NDR gets a connection of its own.  After the input the client
half-closes its side, so an input that leaves the CA waiting for more bytes still
ends: the CA reads EOF and must close.  A CA that neither answers nor closes
within ``timeout`` seconds hangs (``TIMEOUT``).  NDR inputs go, one after the
other, through an activated, authenticated and sealed (PKT_PRIVACY, SPNEGO/NTLM)
session of the project's client, reopened whenever the CA drops it.

:class:`CrashWatch` counts what the CA logs at ERROR (an exception in a
connection's thread is logged there by the listener) and uncaught thread
exceptions: a CA that "answers" by crashing a thread has not answered.
"""

from __future__ import annotations

import dataclasses
import logging
import select
import socket
import threading
import time
import uuid

from scapy.layers.dcerpc import RPC_C_AUTHN

from conformance.testkit import fuzz
from conformance.client import methods
from conformance.client.rpc import Credentials, RpcConnection, Security
from conformance.client.session import WcceSession
from conformance.testkit.fuzz.fragments import alloc_hints, plain_fragments
from conformance.wire import wcce
from conformance.wire.dcom import IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR, IID_IREMUNKNOWN2
from conformance.wire.protection import ProtectionError
from conformance.wire.rpc import PfcFlag, PType

__all__ = ["FuzzTarget", "FuzzRunner", "CrashWatch"]

_RECV = 65536
_SPNEGO, _NTLM = RPC_C_AUTHN.GSS_NEGOTIATE, RPC_C_AUTHN.WINNT


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FuzzTarget:
    host: str
    activation_port: int
    user: str
    password: str
    domain: str = "lab.test"
    ca_name: str = fuzz.CA_NAME
    timeout: float = 2.0  # the bound on every answer

    def security(self, auth_type: int = _SPNEGO) -> Security:
        return Security(auth_type=auth_type, level=6, credentials=Credentials(
            user=self.user, domain=self.domain, password=self.password))


class _TargetSent(Exception):
    """The mutated PDU is on the wire: stop playing the valid exchange."""


class _Intercepting(RpcConnection):
    """Our client, playing a valid exchange, with one outgoing PDU type mutated and
    the exchange stopped after the PDU type ``stop_after`` is sent."""

    def __init__(self, *args, mutate: dict[int, fuzz.Mutation], stop_after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._mutate, self._stop_after = dict(mutate), stop_after

    def send(self, data: bytes) -> None:
        ptype = data[2] if len(data) > 2 else None
        mutation = self._mutate.pop(ptype, None)
        super().send(mutation.apply(data) if mutation is not None else data)
        if ptype == self._stop_after:
            raise _TargetSent


def _drain(sock: socket.socket, deadline: float) -> tuple[bytes, bool, bool]:
    """Read until EOF or ``deadline``: (bytes, closed by the CA, timed out)."""
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), False, True
        sock.settimeout(left)
        try:
            chunk = sock.recv(_RECV)
        except socket.timeout:
            return bytes(data), False, True
        except OSError:  # a reset: the CA closed with our bytes unread
            return bytes(data), True, False
        if not chunk:
            return bytes(data), True, False
        data += chunk


def _half_close_and_drain(sock: socket.socket, timeout: float) -> tuple[bytes, bool, bool]:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    return _drain(sock, time.monotonic() + timeout)


class FuzzRunner:
    """Sends inputs to one CA; keeps the sealed NDR sessions between inputs."""

    def __init__(self, target: FuzzTarget) -> None:
        self.target = target
        self._exporter: WcceSession | None = None
        self._activation: RpcConnection | None = None
        self._exporter_port: int | None = None
        #: sealed sessions the CA closed after answering an NDR input: none should be
        self.late_drops = 0

    def close(self) -> None:
        for holder in ("_exporter", "_activation"):
            session = getattr(self, holder)
            if session is not None:
                session.close()
            setattr(self, holder, None)

    def __enter__(self) -> "FuzzRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- checks -------------------------------------------------------------------------

    def enroll(self) -> int | None:
        """A fresh valid client's full Request at PKT_PRIVACY: its disposition (3 = issued)."""
        t = self.target
        with WcceSession(t.host, t.activation_port, security=t.security(), timeout=10) as session:
            _, activation = session.activate()
            if activation is None or activation.status != 0:
                return None
            session.connect_exporter()
            self._exporter_port = session.exporter_address()[1]
            result = session.call(methods.request(t.ca_name, methods.new_pkcs10("fuzz-check")))
        return None if result.response is None else int(result.response.pdwDisposition)

    def port(self, port: fuzz.Port) -> int:
        if port is fuzz.Port.ACTIVATION:
            return self.target.activation_port
        if self._exporter_port is None:
            self.enroll()
        assert self._exporter_port is not None, "the CA did not activate"
        return self._exporter_port

    # -- inputs ---------------------------------------------------------------------------

    def send(self, item: fuzz.FuzzInput) -> fuzz.Answer:
        if isinstance(item, fuzz.RawInput):
            return self._one_connection(self.port(item.port), (), item.data)
        if isinstance(item, fuzz.PduInput):
            if not item.exchange.authenticated:
                prefix, pdu = fuzz.plain_exchange(item.exchange)
                return self._one_connection(self.target.activation_port, prefix, item.mutation.apply(pdu))
            return self._authenticated_exchange(item)
        if isinstance(item, fuzz.FragmentInput):
            if not item.sealed:
                bind = fuzz.plain_exchange(fuzz.Exchange.BIND)[1]
                return self._one_connection(self.target.activation_port, (bind,),
                                            b"".join(plain_fragments(item)))
            return self._sealed_fragments(item)
        return self._ndr(item)

    def _one_connection(self, port: int, prefix, payload: bytes) -> fuzz.Answer:
        timeout = self.target.timeout
        with socket.create_connection((self.target.host, port), timeout=timeout) as sock:
            try:
                for pdu in prefix:  # each answered before the next, as a client would wait
                    sock.sendall(pdu)
                    _read_one_pdu(sock, time.monotonic() + timeout)
                sock.sendall(payload)
            except OSError:
                pass  # the CA closed early: what it sent before still tells
            return _classify_drain(sock, timeout)

    def _authenticated_exchange(self, item: fuzz.PduInput) -> fuzz.Answer:
        t, exchange = self.target, item.exchange
        auth_type = _NTLM if exchange is fuzz.Exchange.NTLM_AUTH3 else _SPNEGO
        # raw NTLM's auth3 is answered by nothing: a sealed call after it shows what it did
        stop_after = PType.REQUEST if exchange in (fuzz.Exchange.NTLM_AUTH3,
                                                   fuzz.Exchange.SEALED_REQUEST) else exchange.target
        conn = _Intercepting(t.host, t.activation_port, security=t.security(auth_type),
                             timeout=t.timeout, mutate={exchange.target: item.mutation},
                             stop_after=stop_after)
        with conn:
            try:
                conn.bind(IID_IOBJECT_EXPORTER)
                if IID_IOBJECT_EXPORTER in conn.contexts:
                    conn.call(IID_IOBJECT_EXPORTER, 1, fuzz.simple_ping_stub())
            except (_TargetSent, OSError):
                pass
            except Exception:  # noqa: BLE001 - our client gave up on a reply it cannot use
                pass  # (a GSS error, a reply scapy cannot parse): the CA's bytes still tell
            return _classify_drain(conn.sock, t.timeout)

    def _sealed_fragments(self, item: fuzz.FragmentInput) -> fuzz.Answer:
        t = self.target
        with RpcConnection(t.host, t.activation_port, security=t.security(), timeout=t.timeout) as conn:
            conn.bind(IID_IOBJECT_EXPORTER)
            cont_id = conn.contexts[IID_IOBJECT_EXPORTER]
            try:
                for frag, hint in zip(item.fragments, alloc_hints(item)):
                    conn.send(conn.request_pdu(item.opnum if frag.opnum is None else frag.opnum,
                                               frag.piece, cont_id=cont_id, call_id=100 + frag.call,
                                               pfc_flags=frag.flags, alloc_hint=hint))
            except OSError:
                pass
            return _classify_drain(conn.sock, t.timeout)

    # -- NDR, in sealed sessions ------------------------------------------------------------

    def _session_for(self, spec: fuzz.NdrTarget) -> tuple[RpcConnection, uuid.UUID | None]:
        t = self.target
        if spec.port is fuzz.Port.ACTIVATION:
            if self._activation is None:
                conn = RpcConnection(t.host, t.activation_port, security=t.security(), timeout=t.timeout)
                conn.bind(IID_IREMOTE_SCM_ACTIVATOR)
                conn.bind(IID_IOBJECT_EXPORTER)
                self._activation = conn
            return self._activation, None
        if self._exporter is None:
            session = WcceSession(t.host, t.activation_port, security=t.security(), timeout=t.timeout)
            session.activate()
            session.connect_exporter()
            for interface in (wcce.IID_ICERTREQUESTD2, IID_IREMUNKNOWN2):
                session.exporter.bind(interface)
            self._exporter_port = session.exporter.port
            self._exporter = session
        activation = self._exporter.activation
        ipid = {"d": activation.ipid(wcce.IID_ICERTREQUESTD), "d2": activation.ipid(wcce.IID_ICERTREQUESTD2),
                "remunknown": activation.ipid_remunknown}[spec.object_ipid]
        return self._exporter.exporter, ipid

    def _ndr(self, item: fuzz.NdrInput) -> fuzz.Answer:
        spec = item.spec
        conn, _ = self._session_for(spec)
        if not _still_open(conn.sock):  # the CA hung up after answering the previous input
            self.late_drops += 1
            self._drop(spec.port)
        conn, ipid = self._session_for(spec)
        try:
            conn.send(conn.request_pdu(spec.opnum, item.stub, cont_id=conn.contexts[spec.interface],
                                       object_uuid=ipid))
        except OSError:
            pass
        pdus, closed, timed_out, verified = [], False, False, True
        deadline = time.monotonic() + self.target.timeout
        while True:
            pdu = conn.recv_pdu(timeout=max(deadline - time.monotonic(), 0.001))
            if pdu is None:
                closed, timed_out = conn.closed_by_peer, not conn.closed_by_peer
                break
            pdus.append(pdu)
            if pdu[2] == PType.RESPONSE:
                try:
                    conn.response_stub(pdu)
                except ProtectionError:
                    verified = False
            if pdu[3] & PfcFlag.LAST_FRAG:
                break
        if closed or timed_out or not verified:
            self._drop(spec.port)  # the next NDR input starts a new session
        stream = b"".join(pdus)
        if pdus:
            closed = timed_out = False  # judged by the answer; the drop is noticed next time
        return fuzz.classify(stream, closed=closed, timed_out=timed_out, verified=verified)

    def _drop(self, port: fuzz.Port) -> None:
        holder = "_activation" if port is fuzz.Port.ACTIVATION else "_exporter"
        session = getattr(self, holder)
        if session is not None:
            session.close()
        setattr(self, holder, None)


def _read_one_pdu(sock: socket.socket, deadline: float) -> bytes:
    """The answer to a prefix PDU (its bytes; not judged: the target's answer is)."""
    from conformance.wire.framing import FramingError, PduFramer

    framer, data = PduFramer(), b""
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = sock.recv(_RECV)
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk
        try:
            if framer.feed(chunk):
                return data
        except FramingError:
            return data
    return data


def _still_open(sock: socket.socket) -> bool:
    """False when the peer has closed (EOF or reset waiting), without consuming data."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


def _classify_drain(sock: socket.socket, timeout: float) -> fuzz.Answer:
    stream, closed, timed_out = _half_close_and_drain(sock, timeout)
    return fuzz.classify(stream, closed=closed, timed_out=timed_out)


class CrashWatch(logging.Handler):
    """Counts ERROR records of the CA's logger and uncaught exceptions in threads
    while installed (``with CrashWatch() as watch: ...; watch.records``)."""

    def __init__(self, logger: str = "conformance.refca") -> None:
        super().__init__(level=logging.ERROR)
        self._logger = logging.getLogger(logger)
        self.records: list[str] = []
        self._previous_hook = None

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())

    def _thread_hook(self, args) -> None:
        self.records.append(f"uncaught in {args.thread.name if args.thread else '?'}: "
                            f"{args.exc_type.__name__}: {args.exc_value}")

    def __enter__(self) -> "CrashWatch":
        self._logger.addHandler(self)
        self._previous_hook, threading.excepthook = threading.excepthook, self._thread_hook
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self)
        threading.excepthook = self._previous_hook
