"""TCP reassembly of sniffed frames: loopback duplicates, reordering, retransmission."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from conformance.capture.sniff import reassemble
from conformance.wire.transcript import Direction, Endpoint

C, S = ("127.0.0.1", 40000), ("127.0.0.5", 135)


def frame(src, dst, flags, seq, payload=b"", when=0.0):
    pkt = Ether() / IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq)
    if payload:
        pkt = pkt / Raw(payload)
    pkt.time = when
    return pkt


def conversation():
    return [
        frame(C, S, "S", 100, when=1.0),
        frame(S, C, "SA", 900, when=1.1),
        frame(C, S, "PA", 101, b"hello ", when=1.2),
        frame(C, S, "PA", 107, b"world", when=1.3),
        frame(S, C, "PA", 901, b"ok", when=1.4),
        frame(C, S, "FA", 112, when=1.5),
    ]


def test_plain_conversation():
    chunks, conns = reassemble(conversation())
    [conn] = conns
    assert (conn.client, conn.server) == (Endpoint(*C), Endpoint(*S))
    assert conn.closed_by is Direction.TO_SERVER and not conn.reset
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_SERVER) == b"hello world"
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_CLIENT) == b"ok"


def test_loopback_duplicates_are_dropped():
    frames = [f for f in conversation() for _ in range(2)]  # lo shows each frame twice
    chunks, _ = reassemble(frames)
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_SERVER) == b"hello world"


def test_out_of_order_and_retransmitted_segments():
    frames = conversation()
    frames[2].time, frames[3].time = 1.3, 1.2  # "world" arrives first
    frames.append(frame(C, S, "PA", 101, b"hello wo", when=1.35))  # a retransmission overlapping
    chunks, _ = reassemble(frames)
    assert b"".join(c.data for c in chunks if c.direction is Direction.TO_SERVER) == b"hello world"


def test_missing_handshake_guesses_the_server_by_port():
    chunks, conns = reassemble(conversation()[2:])
    assert conns[0].server == Endpoint(*S)
