"""In-process tap: records every byte of every TCP connection our client opens.

No privileges needed: the client's sockets are wrapped, so what is recorded is
exactly what went to and came from the kernel, in order, with timestamps.  The
reference CA's listeners record into a Tap too (``accepted``/``record``/``closed``):
that is how ``probe-client`` sees a client that is not ours.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping

from conformance.wire.transcript import (
    Chunk, Connection, Direction, Endpoint, Transcript, build_transcript,
)

__all__ = ["Tap", "TappedSocket"]


class Tap:
    def __init__(self, *, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._chunks: list[Chunk] = []
        self._connections: dict[int, Connection] = {}
        self._next = 0

    def connect(self, host: str, port: int, *, timeout: float | None = None) -> "TappedSocket":
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the client's own (client.rpc._connect)
        local, remote = sock.getsockname(), sock.getpeername()
        with self._lock:
            self._next += 1
            conn = self._next
            self._connections[conn] = Connection(
                conn=conn, client=Endpoint(local[0], local[1]), server=Endpoint(remote[0], remote[1]),
                opened=self._clock())
        return TappedSocket(sock, self, conn)

    def accepted(self, sock: socket.socket, peer) -> int:
        """A connection a server accepted: its peer is the client."""
        local = sock.getsockname()
        with self._lock:
            self._next += 1
            self._connections[self._next] = Connection(
                conn=self._next, client=Endpoint(peer[0], peer[1]), server=Endpoint(local[0], local[1]),
                opened=self._clock())
            return self._next

    def record(self, conn: int, direction: Direction, data: bytes) -> None:
        self._record(conn, direction, bytes(data))

    def closed(self, conn: int, by: Direction) -> None:
        self._closed(conn, by)

    def _record(self, conn: int, direction: Direction, data: bytes) -> None:
        with self._lock:
            self._chunks.append(Chunk(conn=conn, direction=direction, time=self._clock(), data=data))

    def _closed(self, conn: int, by: Direction, *, reset: bool = False) -> None:
        import dataclasses

        with self._lock:
            current = self._connections[conn]
            if current.closed is None:
                self._connections[conn] = dataclasses.replace(
                    current, closed=self._clock(), closed_by=by, reset=reset)

    @property
    def chunks(self) -> list[Chunk]:
        with self._lock:
            return list(self._chunks)

    @property
    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections.values())

    def transcript(self, identities: Mapping[str, bytes] | None = None, service_keys=None) -> Transcript:
        return build_transcript(self.chunks, self.connections, identities=identities,
                                service_keys=service_keys)


class TappedSocket:
    """The subset of the socket API our client uses, recording as it goes."""

    def __init__(self, sock: socket.socket, tap: Tap, conn: int) -> None:
        self._sock = sock
        self._tap = tap
        self.conn = conn

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self._tap._record(self.conn, Direction.TO_SERVER, bytes(data))

    def recv(self, size: int) -> bytes:
        try:
            data = self._sock.recv(size)
        except ConnectionResetError:
            self._tap._closed(self.conn, Direction.TO_CLIENT, reset=True)
            raise
        if data:
            self._tap._record(self.conn, Direction.TO_CLIENT, data)
        else:
            self._tap._closed(self.conn, Direction.TO_CLIENT)
        return data

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._tap._closed(self.conn, Direction.TO_SERVER)
        self._sock.close()

    def getsockname(self):
        return self._sock.getsockname()

    def getpeername(self):
        return self._sock.getpeername()
