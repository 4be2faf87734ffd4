"""An association driven in this process, PDU by PDU, by the suite's own client.

:class:`LoopbackSocket` stands where :class:`~conformance.client.rpc.RpcConnection` expects
a socket: every PDU the client writes goes to :meth:`Association.receive`, and what the
association answers (or sends before it drops the connection) is what the client reads.
No sockets, no threads: the client's NTLM/SPNEGO handshake, signing and sealing run
against the association on bytes.
"""

from __future__ import annotations

import dataclasses
import socket

from scapy.layers.dcerpc import DceRpc5
from scapy.layers.spnego import SPNEGOSSP

from conformance.client.rpc import Credentials, RpcConnection, Security
from conformance.refca.rpc.association import Association, DropConnection
from conformance.refca.rpc.calls import ConnectionInfo
from conformance.refca.rpc.ntlm import NtlmAcceptor, NtlmBehaviour
from conformance.wire.framing import PduFramer
from conformance.wire.gss import nt_hash
from conformance.wire.rpc import PType

CONN = ConnectionInfo(local_host="127.0.0.1", local_port=135, peer_host="127.0.0.1", peer_port=5000)
PASSWORD = "Alice-Passw0rd!"
USERS = {"alice": nt_hash(PASSWORD)}


def ntlm_acceptors() -> dict[int, object]:
    """auth_type -> acceptor factory: raw NTLM (10) and SPNEGO over NTLM (9), as the CA's."""
    def ntlm():
        return NtlmAcceptor(behaviour=NtlmBehaviour(), IDENTITIES=dict(USERS), DOMAIN_NB_NAME="LAB",
                            DOMAIN_FQDN="lab.test", COMPUTER_NB_NAME="CA01")
    return {9: lambda: SPNEGOSSP([ntlm()]), 10: ntlm}


def security(auth_type: int, level: int, **kwargs) -> Security:
    return Security(auth_type=auth_type, level=level,
                    credentials=Credentials(user="alice", domain="lab.test", password=PASSWORD), **kwargs)


class LoopbackSocket:
    """The client's socket, with an :class:`Association` as its peer."""

    def __init__(self, association: Association) -> None:
        self.association = association
        self._framer = PduFramer()
        self._out = bytearray()
        self.dropped: str | None = None  # DropConnection's reason, once the peer closed

    def sendall(self, data: bytes) -> None:
        if self.dropped is not None:
            raise BrokenPipeError(self.dropped)
        for pdu in self._framer.feed(data):
            try:
                for reply in self.association.receive(pdu):
                    self._out += reply
            except DropConnection as drop:
                for reply in drop.final:
                    self._out += reply
                self.dropped = drop.reason
                return

    def recv(self, size: int) -> bytes:
        if self._out:
            chunk = bytes(self._out[:size])
            del self._out[:size]
            return chunk
        if self.dropped is not None:
            return b""
        raise socket.timeout("the association has nothing to say")

    def settimeout(self, timeout) -> None:
        pass

    def close(self) -> None:
        pass


@dataclasses.dataclass
class _Tap:
    sock: LoopbackSocket

    def connect(self, host, port, timeout=None) -> LoopbackSocket:
        return self.sock


def client(association: Association, sec: Security | None = None) -> RpcConnection:
    """The suite's client, connected to ``association``."""
    return RpcConnection(CONN.local_host, CONN.local_port, security=sec, tap=_Tap(LoopbackSocket(association)))


def dropped(conn: RpcConnection) -> bool:
    return conn.sock.dropped is not None


@dataclasses.dataclass(frozen=True)
class Observed:
    """An answer in the ledger's terms: kind, code, and whether the connection dropped."""

    kind: str
    code: int | None
    drops: bool


def observe(conn: RpcConnection, pdu: bytes | None = None) -> Observed:
    """Send ``pdu`` (if given) and read the one answer, as the ledger words answers."""
    if pdu is not None:
        conn.send(pdu)
    answer = conn.recv_pdu(timeout=0)
    gone = dropped(conn)
    if answer is None:
        return Observed("drop" if gone else "silent", None, gone)
    pkt = DceRpc5(answer)
    if pkt.ptype == PType.FAULT:
        return Observed("fault", int(pkt.status), gone)
    if pkt.ptype == PType.BIND_NAK:
        return Observed("bind_nak", int(pkt.provider_reject_reason), gone)
    return Observed("accept", None, gone)
