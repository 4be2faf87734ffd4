"""What a bind case or a raw negative talks to: an interface on a port, a connection with
the case's security, and one valid call of that interface to change one thing in.

* :class:`DcomEndpoint` — a CA: its object exporter, ICertRequestD, and a Ping on the IPID
  the activation returned (the default target).
* :class:`RpcEndpoint` — a plain DCE/RPC endpoint (``[target] kind = "rpc"``): an interface
  served on a known port, with a call that needs no arguments.  This is how the RPC-layer
  cases run against an independent implementation (Samba's AD DC) to calibrate them.
"""

from __future__ import annotations

import dataclasses
import uuid

from conformance.client.rpc import RpcConnection, Security
from conformance.judge.errors import Inconclusive, Unreachable
from conformance.model.profile import RPC_INTERFACES
from conformance.wire import wcce

__all__ = ["Endpoint", "DcomEndpoint", "RpcEndpoint", "PlainInterface", "PLAIN_INTERFACES"]


@dataclasses.dataclass(frozen=True, slots=True)
class PlainInterface:
    uuid: uuid.UUID
    if_version: int  # on the wire: minor << 16 | major
    opnum: int  # a call that takes no [in] arguments
    stub: bytes = b""


#: Interfaces a plain DCE/RPC target is driven through (their names: model.profile.RPC_INTERFACES).
PLAIN_INTERFACES = {
    # DCE 1.1 mgmt, served on the endpoint mapper's port by Windows and Samba (the interface
    # Samba's raw-protocol tests use); opnum 0 rpc__mgmt_inq_if_ids takes no arguments
    "mgmt": PlainInterface(uuid.UUID("afa8bd80-7d8a-11c9-bef4-08002b102989"), 1, 0),
}
assert PLAIN_INTERFACES.keys() == RPC_INTERFACES


def _established(conn: RpcConnection, interface: uuid.UUID, outcome) -> None:
    """A negative is made on a working call: the interface bound, and the security context
    the case asked for established (else there is nothing to change one thing in)."""
    if interface not in conn.contexts:
        raise Inconclusive(f"the endpoint did not bind the interface at the case's settings "
                           f"(ptype {outcome.ptype}): nothing to test the negative on")
    if conn.security.auth_type and conn.protection is None:
        raise Inconclusive(f"the endpoint did not complete the case's security context "
                           f"(ptype {outcome.ptype}, status {outcome.fault_status}): nothing to test the negative on")


class Endpoint:
    """The interface under test.  ``bound()`` is the case's connection, bound once."""

    interface: uuid.UUID
    if_version: int
    opnum: int

    def address(self) -> tuple[str, int]:
        raise NotImplementedError

    def connection(self) -> RpcConnection:
        """A new connection with the case's security, not yet bound."""
        raise NotImplementedError

    def bound(self) -> tuple[RpcConnection, uuid.UUID | None, int]:
        """The case's connection bound to the interface: (connection, object UUID, context id)."""
        raise NotImplementedError

    def stub(self) -> bytes:
        """The request stub of the valid call (``opnum``)."""
        raise NotImplementedError

    def object_uuid(self) -> uuid.UUID | None:
        """The object UUID the valid call is addressed to (a DCOM IPID), or None."""
        return None


class DcomEndpoint(Endpoint):
    """A CA's object exporter: ICertRequestD, Ping addressed to the activated IPID."""

    interface = wcce.IID_ICERTREQUESTD
    opnum = wcce.Opnum.PING

    def __init__(self, session, ping_stub: bytes) -> None:
        self.session = session  # a WcceSession, activated (DCOM-only negatives use it)
        self.if_version = session.if_version
        self._stub = ping_stub

    def address(self) -> tuple[str, int]:
        return self.session.exporter_address()

    def connection(self) -> RpcConnection:
        return self.session.exporter_connection()

    def bound(self) -> tuple[RpcConnection, uuid.UUID | None, int]:
        outcome = self.session.connect_exporter()
        conn = self.session.exporter
        _established(conn, self.interface, outcome)
        return conn, self.object_uuid(), conn.contexts[self.interface]

    def stub(self) -> bytes:
        return self._stub

    def object_uuid(self) -> uuid.UUID | None:
        return self.session.activation.ipid(self.interface)


class RpcEndpoint(Endpoint):
    """A plain DCE/RPC interface on ``host:port``."""

    def __init__(self, host: str, port: int, interface: str, security: Security, *, tap=None,
                 timeout: float = 10.0) -> None:
        plain = PLAIN_INTERFACES[interface]
        self.host, self.port = host, port
        self.interface, self.if_version, self.opnum, self._stub = plain.uuid, plain.if_version, plain.opnum, plain.stub
        self.security, self.tap, self.timeout = security, tap, timeout
        self._conn: RpcConnection | None = None

    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def connection(self) -> RpcConnection:
        try:
            return RpcConnection(self.host, self.port, security=self.security, timeout=self.timeout, tap=self.tap)
        except OSError as exc:
            raise Unreachable(f"{self.host}:{self.port}: {exc}") from exc

    def bound(self) -> tuple[RpcConnection, uuid.UUID | None, int]:
        if self._conn is None:
            self._conn = self.connection()
            _established(self._conn, self.interface, self._conn.bind(self.interface, self.if_version))
        return self._conn, None, self._conn.contexts[self.interface]

    def stub(self) -> bytes:
        return self._stub

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
