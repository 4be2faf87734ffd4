"""A transcript's bytes as a pcapng that Wireshark/tshark open, with the real endpoints.

Chunks recorded by the tap carry no TCP headers; they are laid out here as a
TCP conversation (handshake, data with consistent sequence numbers, FIN or RST)
between the connection's real addresses and ports.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter

from conformance.wire.transcript import Chunk, Connection, Direction

__all__ = ["write_pcapng"]

_MSS = 65000


def _ip(src: str, dst: str):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def write_pcapng(path: pathlib.Path, chunks: Iterable[Chunk], connections: Iterable[Connection]) -> int:
    """Write the packets; return how many."""
    chunks = sorted(chunks, key=lambda c: c.time)
    packets = []
    for conn in sorted(connections, key=lambda c: c.opened):
        c, s = conn.client, conn.server
        seq = {Direction.TO_SERVER: 1000, Direction.TO_CLIENT: 5000}

        def segment(direction: Direction, flags: str, payload: bytes, when: float):
            src, dst = (c, s) if direction is Direction.TO_SERVER else (s, c)
            other = Direction.TO_CLIENT if direction is Direction.TO_SERVER else Direction.TO_SERVER
            pkt = Ether() / _ip(src.host, dst.host) / TCP(
                sport=src.port, dport=dst.port, flags=flags, seq=seq[direction],
                ack=seq[other] if "A" in flags else 0)
            if payload:
                pkt = pkt / Raw(payload)
            pkt.time = when
            packets.append(pkt)
            seq[direction] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

        segment(Direction.TO_SERVER, "S", b"", conn.opened)
        segment(Direction.TO_CLIENT, "SA", b"", conn.opened)
        segment(Direction.TO_SERVER, "A", b"", conn.opened)
        for chunk in (ch for ch in chunks if ch.conn == conn.conn):
            for i in range(0, len(chunk.data), _MSS):
                segment(chunk.direction, "PA", chunk.data[i:i + _MSS], chunk.time)
        if conn.closed is not None and conn.closed_by is not None:
            segment(conn.closed_by, "R" if conn.reset else "FA", b"", conn.closed)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with PcapNgWriter(str(path)) as writer:
        for pkt in sorted(packets, key=lambda p: p.time):
            writer.write(pkt)
    return len(packets)
