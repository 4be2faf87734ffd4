"""Acceptor-side security contexts of one association ([MS-RPCE] 3.3.1.5.2).

An association may carry several security contexts, told apart by
``auth_context_id`` (impacket's ``alter_ctx`` authenticates a second one on the
same connection).  Each context is served with the SSP the client asked for by
``auth_type`` and keeps its own level, header-signing choice and protection state,
so responses carry exactly the auth_type that was negotiated.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL
from scapy.layers.gssapi import GSS_C_FLAGS, GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED, SSP

from conformance.wire.gss import ntlm_user_of, token_packet
from conformance.wire.protection import Mechanism, ProtectionContext, mechanism_of
from conformance.wire.scapymemo import built_as_is

__all__ = ["ContextState", "SecurityContext", "AcceptorFactory", "SecurityContexts", "GssFailure"]

#: auth_type -> a function returning the acceptor SSP for that auth_type.
AcceptorFactory = Mapping[int, Callable[[], SSP]]


class ContextState(enum.Enum):
    ESTABLISHING = "establishing"
    ESTABLISHED = "established"
    FAILED = "failed"


@dataclasses.dataclass(slots=True)
class SecurityContext:
    context_id: int
    auth_type: int
    auth_level: int
    ssp: SSP
    header_sign: bool
    gss_context: object = None
    state: ContextState = ContextState.ESTABLISHING
    user: str | None = None
    protection: ProtectionContext | None = None
    legs: int = 0
    #: the ledger situation a call on this context is answered as, once it has FAILED
    #: for a reason the ledger names (None: the generic authentication failure)
    refused_as: str | None = None

    @property
    def mechanism(self) -> Mechanism:
        return mechanism_of(self.ssp, self.gss_context)

    def accept(self, token: bytes) -> tuple[bytes | None, bool]:
        """Feed one token to the SSP.

        Returns ``(output token or None, complete)``; raises :class:`GssFailure`.
        """
        self.legs += 1
        try:
            packet = token_packet(self.ssp.auth_type, token)
            self.gss_context, output, status = self.ssp.GSS_Accept_sec_context(self.gss_context, packet)
        except Exception as exc:  # scapy raises on tokens it cannot parse
            self.state = ContextState.FAILED
            raise GssFailure(f"{type(exc).__name__}: {exc}") from exc
        if status not in (GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED):
            self.state = ContextState.FAILED
            why = next((s.refusal for s in _mechanisms(self.ssp) if getattr(s, "refusal", None)), None)
            raise GssFailure(f"GSS status 0x{status:08x}" + (f": {why}" if why else ""))
        user = ntlm_user_of(packet) or _kerberos_user(self.ssp)
        if user is not None:
            self.user = user
        out = bytes(built_as_is(output)) if output is not None else None
        if status == GSS_S_COMPLETE:
            flags = int(getattr(getattr(self.gss_context, "ssp_context", None) or self.gss_context, "flags", 0) or 0)
            if (self.mechanism is Mechanism.KERBEROS and self.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY
                    and not flags & GSS_C_FLAGS.GSS_C_CONF_FLAG):
                # [MS-RPCE] 3.3.1.5.2.2: PKT_PRIVACY needs a context that provides confidentiality
                self.state = ContextState.FAILED
                raise GssFailure("PKT_PRIVACY on a Kerberos context without GSS_C_CONF_FLAG")
            self.state = ContextState.ESTABLISHED
            self.protection = ProtectionContext(
                ssp=self.ssp, context=self.gss_context, header_sign=self.header_sign
            )
        return out, status == GSS_S_COMPLETE


def _mechanisms(ssp: SSP) -> list[SSP]:
    return list(getattr(ssp, "ssps", None) or [ssp])


def _kerberos_user(ssp: SSP) -> str | None:
    """``LAB\\alice`` for ``alice@LAB.TEST``: the first label of the realm stands for the
    NetBIOS domain, as in the lab's naming (LAB / lab.test)."""
    for mech in _mechanisms(ssp):
        identity = getattr(mech, "client_identity", None)
        if identity:  # the PAC's
            return identity
        principal = getattr(mech, "client_principal", None)
        if principal:
            name, _, realm = principal.partition("@")
            return f"{realm.split('.')[0]}\\{name}" if realm else name
    return None


class GssFailure(Exception):
    """The SSP rejected a token (bad credentials, malformed token, wrong state)."""


class SecurityContexts:
    """The security contexts of one association, keyed by auth_context_id."""

    def __init__(self, acceptors: AcceptorFactory, *, limit: int = 16) -> None:
        self._acceptors = acceptors
        self._limit = limit
        self._by_id: dict[int, SecurityContext] = {}

    def supports(self, auth_type: int) -> bool:
        return auth_type in self._acceptors

    def get(self, context_id: int) -> SecurityContext | None:
        return self._by_id.get(context_id)

    def full(self) -> bool:
        return len(self._by_id) >= self._limit

    def create(self, *, context_id: int, auth_type: int, auth_level: int,
               header_sign: bool) -> SecurityContext:
        ctx = SecurityContext(
            context_id=context_id,
            auth_type=auth_type,
            auth_level=auth_level,
            ssp=self._acceptors[auth_type](),
            header_sign=header_sign,
        )
        self._by_id[context_id] = ctx
        return ctx

    def discard(self, context_id: int) -> None:
        self._by_id.pop(context_id, None)

    def all(self) -> list[SecurityContext]:
        return list(self._by_id.values())

    def established(self) -> list[SecurityContext]:
        return [c for c in self._by_id.values() if c.state is ContextState.ESTABLISHED]
