"""TCP accept loop for the reference CA: framing on ``frag_len``, one thread per connection.

The I/O edge of the RPC server: bytes from the socket go through
:class:`~conformance.wire.framing.PduFramer` into a sans-IO
:class:`~conformance.refca.rpc.association.Association`, and what it returns is
written back.  Bad input never escapes a connection: a framing error, a
:class:`DropConnection` or a bug in a handler closes that connection only.
Connections are bounded in number and in idle time.
"""

from __future__ import annotations

import logging
import socket
import threading
import traceback
from collections.abc import Callable

from conformance.refca.rpc.association import Association, DropConnection
from conformance.refca.rpc.calls import ConnectionInfo
from conformance.wire.framing import FramingError, PduFramer
from conformance.wire.transcript import Direction

__all__ = ["Listener", "PortInUse"]

log = logging.getLogger("conformance.refca")

_RECV = 65536
_TO_SERVER, _TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT


class PortInUse(Exception):
    """The listening address cannot be bound."""


class Listener:
    def __init__(self, *, name: str, host: str, port: int,
                 make_association: Callable[[ConnectionInfo], Association],
                 max_connections: int = 256, idle_timeout: float = 300.0, recorder=None) -> None:
        self.name = name
        self._recorder = recorder  # a capture.tap.Tap in recording mode (probe-client)
        self.host = host
        self._make_association = make_association
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)

    def start(self) -> "Listener":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread.ident is not None:
            self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return
            with self._lock:
                if len(self._connections) >= self._max_connections:
                    conn.close()
                    log.warning("%s: connection limit reached, refused %s", self.name, peer)
                    continue
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True,
                             name=f"{self.name}-{peer[1]}").start()

    def _serve(self, conn: socket.socket, peer) -> None:
        # each PDU leaves when written: a response's fragments are not held back for the
        # client's delayed ACK (Nagle's rule)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local = conn.getsockname()
        info = ConnectionInfo(local_host=local[0], local_port=local[1], peer_host=peer[0],
                              peer_port=peer[1])
        association = self._make_association(info)
        framer = PduFramer()
        recording = self._recorder.accepted(conn, peer) if self._recorder is not None else None
        conn.settimeout(self._idle_timeout)
        reason = "closed by peer"
        try:
            while True:
                data = conn.recv(_RECV)
                if not data:
                    break
                if recording is not None:
                    self._recorder.record(recording, _TO_SERVER, data)
                for pdu in framer.feed(data):
                    out = association.receive(pdu)
                    if out:
                        conn.sendall(b"".join(out))
                        if recording is not None:
                            self._recorder.record(recording, _TO_CLIENT, b"".join(out))
                if framer.broken is not None:
                    raise framer.broken
        except DropConnection as drop:
            reason = f"dropped: {drop.reason}"
            if drop.final:
                try:
                    conn.sendall(b"".join(drop.final))
                    if recording is not None:
                        self._recorder.record(recording, _TO_CLIENT, b"".join(drop.final))
                except OSError:
                    pass
        except FramingError as exc:
            reason = f"dropped: {exc}"
        except socket.timeout:
            reason = "idle timeout"
        except OSError as exc:
            reason = f"socket error: {exc}"
        except Exception:  # a bug in a handler must not take the server down
            reason = "internal error"
            log.error("%s: internal error serving %s:%s\n%s", self.name, peer[0], peer[1],
                      traceback.format_exc())
        finally:
            association.close()
            if recording is not None:
                self._recorder.closed(recording, _TO_SERVER if reason == "closed by peer" else _TO_CLIENT)
            with self._lock:
                self._connections.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
            log.debug("%s: %s:%s %s", self.name, peer[0], peer[1], reason)
