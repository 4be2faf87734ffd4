"""Flow helpers shared by the engine and the raw actions: read the server's answer to
what was just sent, and whether it then closed the connection (Samba's
``assertNotConnected()`` as an observation, not an assert)."""

from __future__ import annotations

from conformance.client.rpc import Outcome, RpcConnection
from conformance.judge.outcome import of_reply
from conformance.model import outcomes
from conformance.model.cases import Case
from conformance.wire.framing import CommonHeader
from conformance.wire.rpc import PfcFlag

__all__ = ["answer", "dropped"]


def dropped(case: Case, conn: RpcConnection, wait: float) -> bool | None:
    """Whether the server closed the connection within ``wait`` seconds (the target's
    ``drop_wait``); only waited for when the case asks."""
    return None if case.connection_drops is None else not conn.is_connected(wait)


def answer(conn: RpcConnection, wait: float) -> tuple[str, bool]:
    """The server's answer to the PDUs just sent, and whether it then closed the connection
    (within ``wait`` seconds of it)."""
    pdu = conn.recv_pdu()
    text = of_reply(Outcome(pdus=(pdu,) if pdu else (), closed=conn.closed_by_peer, malformed=conn.malformed))
    if text == outcomes.ACCEPT:
        # a whole response: drain its fragments
        while pdu is not None and not CommonHeader.parse(pdu).pfc_flags & PfcFlag.LAST_FRAG:
            pdu = conn.recv_pdu()
    return text, not conn.is_connected(wait)
