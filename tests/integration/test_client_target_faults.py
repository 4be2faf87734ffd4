"""The client at the socket edge, against a loopback server that misbehaves: a reset, an
EOF, half a header or bytes that stop framing are what the connection observed (an
outcome), not exceptions; a reply to another call is a ``TargetFault``."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

import pytest

from conformance.client.errors import TargetFault
from conformance.client.rpc import RpcConnection
from conformance.judge import flows
from conformance.judge.outcome import of_reply
from conformance.model import outcomes
from conformance.wire import wcce
from tests.support.recorded import read

REPLIES = [p.raw for p in read("replies").pdus if p.direction.value == "s2c"]


def framed(pdu: bytes) -> bytes:
    out = bytearray(pdu)
    struct.pack_into("<H", out, 8, len(out))
    return bytes(out)


@contextlib.contextmanager
def server(answer):
    """A loopback server that reads the client's first bytes and then does ``answer(conn)``."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(timeout=5)
        listener.close()


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("answer, observed", [
    (lambda c: c.sendall(b"\x05\x00\x0c\x03\x10\x00\x00\x00\x08\x00"), "drop"),  # half a header, then EOF
    (lambda c: c.sendall(b"GET / HTTP/1.1\r\n\r\n"), "malformed PDU"),  # bytes that are not PDUs
    (reset, "drop"),
    (lambda c: None, "drop"),  # EOF
])
def test_what_the_server_did_is_the_outcome(answer, observed):
    with server(answer) as port, RpcConnection("127.0.0.1", port, timeout=2) as conn:
        outcome = conn.bind(wcce.IID_ICERTREQUESTD)
        assert of_reply(outcome).startswith(observed)
        conn.send(b"\x05\x00\x00\x03" + bytes(12))  # after the server went: noted, not raised
        assert conn.closed_by_peer


def test_a_reply_to_another_call_is_a_target_fault():
    """C706 12.6.4: a request is answered by a response or fault with its own call_id."""
    fault = bytearray(next(p for p in REPLIES if p[2] == 3))

    def answer(conn):
        conn.recv(65536)
        struct.pack_into("<I", fault, 12, 0x4242)
        conn.sendall(bytes(fault))

    with server(lambda c: c.sendall(framed(next(p for p in REPLIES if p[2] == 12))) or answer(c)) as port, \
            RpcConnection("127.0.0.1", port, timeout=2) as conn:
        conn.bind(wcce.IID_ICERTREQUESTD)
        conn.contexts.setdefault(wcce.IID_ICERTREQUESTD, 0)
        with pytest.raises(TargetFault, match="reply to another call"):
            conn.call(wcce.IID_ICERTREQUESTD, 5, b"")


@pytest.mark.parametrize("wait, seen_to_drop", [(0.02, False), (1.0, True)])
def test_a_close_counts_when_it_comes_within_the_targets_drop_wait(wait, seen_to_drop):
    """The judge looks for the server's close for the target's ``drop_wait`` after the answer:
    a server that answers and closes 0.3 s later has dropped the connection for a 1 s wait and
    kept it for a 20 ms one."""
    fault = framed(next(p for p in REPLIES if p[2] == 3))
    status = struct.unpack_from("<I", fault, 24)[0]

    def fault_then_close_later(conn):
        conn.sendall(fault)
        time.sleep(0.3)

    with server(fault_then_close_later) as port, RpcConnection("127.0.0.1", port, timeout=2) as conn:
        conn.send(conn.request_pdu(0, b"", cont_id=0))
        assert flows.answer(conn, wait) == (outcomes.fault(status), seen_to_drop)


@pytest.mark.parametrize("tapped", [False, True])
def test_the_client_sends_each_pdu_when_it_is_written(tapped):
    """TCP_NODELAY: no PDU waits behind an unanswered one for the server's delayed ACK."""
    from conformance.capture.tap import Tap

    with server(lambda c: None) as port, \
            RpcConnection("127.0.0.1", port, timeout=2, tap=Tap() if tapped else None) as conn:
        sock = conn.sock._sock if tapped else conn.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
