"""Interface capture with scapy (root) for clients that are not ours (certipy, impacket).

Frames are captured on an interface (``lo`` for the lab), filtered to the CA's
address with BPF (libpcap), and reassembled into the same Chunks and
Connections the in-process tap produces.  The loopback interface shows every
frame twice; duplicates (same flow, sequence number and payload) are dropped, as
are retransmissions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import time
from collections.abc import Iterable

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.sendrecv import AsyncSniffer
from scapy.utils import PcapNgWriter, rdpcap

from conformance.wire.transcript import Chunk, Connection, Direction, Endpoint

__all__ = ["Sniffer", "reassemble", "read_capture"]

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10


def _l3(pkt):
    return pkt[IP] if IP in pkt else (pkt[IPv6] if IPv6 in pkt else None)


@dataclasses.dataclass
class _Flow:
    conn: int
    client: Endpoint
    server: Endpoint
    opened: float
    next_seq: dict = dataclasses.field(default_factory=dict)
    pending: dict = dataclasses.field(default_factory=dict)
    closed: float | None = None
    closed_by: Direction | None = None
    reset: bool = False


def reassemble(frames: Iterable) -> tuple[list[Chunk], list[Connection]]:
    """TCP streams of ``frames`` (scapy packets with ``.time``) as Chunks/Connections."""
    flows: dict[frozenset, _Flow] = {}
    seen: set[tuple] = set()
    chunks: list[Chunk] = []
    for pkt in sorted(frames, key=lambda p: float(p.time)):
        ip = _l3(pkt)
        if ip is None or TCP not in pkt:
            continue
        tcp = pkt[TCP]
        src, dst = Endpoint(ip.src, int(tcp.sport)), Endpoint(ip.dst, int(tcp.dport))
        payload = bytes(tcp.payload)
        flags = int(tcp.flags)
        key = (src, dst, int(tcp.seq), flags, hashlib.blake2s(payload).digest())
        if key in seen:
            continue  # the loopback copy of a frame already taken
        seen.add(key)
        flow_key = frozenset((src, dst))
        flow = flows.get(flow_key)
        when = float(pkt.time)
        if flow is None:
            if flags & _SYN and not flags & _ACK:
                client, server = src, dst
            elif flags & _SYN:
                client, server = dst, src
            else:  # the handshake was missed: the well-known/lower port is the server's
                client, server = (src, dst) if src.port > dst.port else (dst, src)
            flow = flows[flow_key] = _Flow(conn=len(flows) + 1, client=client, server=server,
                                           opened=when)
        direction = Direction.TO_SERVER if src == flow.client else Direction.TO_CLIENT
        seq = int(tcp.seq)
        if flags & _SYN:
            flow.next_seq[direction] = seq + 1
        if payload:
            expected = flow.next_seq.setdefault(direction, seq)
            flow.pending.setdefault(direction, {})[seq] = (when, payload)
            while expected in flow.pending[direction]:
                stamp, data = flow.pending[direction].pop(expected)
                chunks.append(Chunk(conn=flow.conn, direction=direction, time=stamp, data=data))
                expected += len(data)
            # drop what a retransmission already delivered
            for old in [s for s in flow.pending[direction] if s < expected]:
                stamp, data = flow.pending[direction].pop(old)
                if old + len(data) > expected:
                    chunks.append(Chunk(conn=flow.conn, direction=direction, time=stamp,
                                        data=data[expected - old:]))
                    expected = old + len(data)
            flow.next_seq[direction] = expected
        if flags & (_FIN | _RST) and flow.closed is None:
            flow.closed, flow.closed_by, flow.reset = when, direction, bool(flags & _RST)
    connections = [Connection(conn=f.conn, client=f.client, server=f.server, opened=f.opened,
                              closed=f.closed, closed_by=f.closed_by, reset=f.reset)
                   for f in flows.values()]
    return chunks, connections


def read_capture(path: pathlib.Path) -> tuple[list[Chunk], list[Connection]]:
    return reassemble(rdpcap(str(path)))


class Sniffer:
    """``with Sniffer(host="127.0.0.5") as s: ...; s.chunks, s.connections``."""

    def __init__(self, *, host: str, iface: str = "lo", settle: float = 0.3) -> None:
        self.host = host
        self._settle = settle
        self._sniffer = AsyncSniffer(iface=iface, filter=f"tcp and host {host}", store=True)
        self.frames: list = []
        self.chunks: list[Chunk] = []
        self.connections: list[Connection] = []

    def start(self) -> "Sniffer":
        self._sniffer.start()
        time.sleep(self._settle)  # the socket is open once start() returns; let BPF attach
        return self

    def stop(self) -> "Sniffer":
        time.sleep(self._settle)
        self.frames = list(self._sniffer.stop() or [])
        self.chunks, self.connections = reassemble(self.frames)
        return self

    def write_pcapng(self, path: pathlib.Path) -> None:
        """The frames as captured (the pcapng of an external client's run)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with PcapNgWriter(str(path)) as writer:
            for frame in self.frames:
                writer.write(frame)

    def __enter__(self) -> "Sniffer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
