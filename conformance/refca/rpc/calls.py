"""Values exchanged between the RPC association and the interfaces it serves.

The association (``association.py``) knows PDUs and security; a dispatcher
knows interfaces and methods.  They meet only through these small immutable
values, so a dispatcher can be driven by tests without sockets.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Protocol

from scapy.layers.dcerpc import RPC_C_AUTHN, RPC_C_AUTHN_LEVEL

__all__ = ["ConnectionInfo", "CallAuth", "Call", "Reply", "Fault", "Dispatcher", "AssocGroups"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """The TCP endpoints of one connection, as the server saw them."""

    local_host: str
    local_port: int
    peer_host: str
    peer_port: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallAuth:
    """How a call was authenticated: from its sec_trailer and security context."""

    auth_type: int = RPC_C_AUTHN.NONE
    auth_level: int = RPC_C_AUTHN_LEVEL.NONE
    context_id: int | None = None
    user: str | None = None
    mechanism: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.auth_level >= RPC_C_AUTHN_LEVEL.CONNECT and self.user is not None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    connection: ConnectionInfo
    interface: uuid.UUID
    if_version: int
    opnum: int
    object_uuid: uuid.UUID | None
    stub: bytes
    little_endian: bool
    auth: CallAuth
    call_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """The NDR stub of a successful response."""

    stub: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """An rpc_fault with this status instead of a response."""

    status: int


class Dispatcher(Protocol):
    def supports_interface(self, if_uuid: uuid.UUID, if_version: int) -> bool: ...

    def dispatch(self, call: Call) -> Reply | Fault: ...


class AssocGroups:
    """Server-wide association groups (C706 assoc_group_id), shared by connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[int, int] = {}
        self._next = 0x5A00

    def new(self) -> int:
        with self._lock:
            self._next += 1
            self._members[self._next] = 1
            return self._next

    def join(self, group_id: int) -> bool:
        with self._lock:
            if group_id not in self._members:
                return False
            self._members[group_id] += 1
            return True

    def leave(self, group_id: int) -> None:
        with self._lock:
            left = self._members.get(group_id, 0) - 1
            if left <= 0:
                self._members.pop(group_id, None)
            else:
                self._members[group_id] = left
