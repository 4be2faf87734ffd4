"""Passive view of one security context: what the tokens say, and keys to read PDUs.

Fed the GSS tokens of a bind/alter/auth3 exchange in wire order, it records the
facts checks need (SPNEGO mechanisms, NTLM negotiate flags, the user, whether
the exchange was anonymous) and, when the lab credentials are known, derives
one :class:`ProtectionContext` per direction to verify and unseal PDUs.

NTLM messages are found by their signature inside raw (auth_type 10) or
SPNEGO-wrapped (9) tokens, so the facts survive a token that is otherwise
malformed.  A Kerberos AP-REQ (raw, 16, or in SPNEGO) is found by its tag; its
ticket names the service in clear, and with the service's keys the ticket, the
authenticator (client, checksum flags) and then every protected PDU open.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from scapy.layers.dcerpc import RPC_C_AUTHN
from scapy.layers.gssapi import GSS_S_COMPLETE, GSSAPI_BLOB
from scapy.layers.ntlm import NTLM_Header, NTLMSSP, RC4Init

from conformance.model.verdicts import Direction
from conformance.wire.gss import ReceivedBytesNTLMSSP, dissected, mechanism_token, negotiation_token, token_packet
from conformance.wire.kerberos import ApReqFacts, ServiceKeys, find_ap_req, inspect_ap_req
from conformance.wire.protection import ProtectionContext

__all__ = ["Direction", "NtlmFlag", "SecurityFacts", "PassiveContext", "MECH_NAMES"]

_SIGNATURE = b"NTLMSSP\x00"
NTLM_OID = "1.3.6.1.4.1.311.2.2.10"

MECH_NAMES = {
    "1.3.6.1.4.1.311.2.2.10": "NTLM",
    "1.2.840.48018.1.2.2": "Kerberos (MS)",
    "1.2.840.113554.1.2.2": "Kerberos",
    "1.3.6.1.4.1.311.2.2.30": "NEGOEX",
}


class NtlmFlag(enum.IntFlag):
    """[MS-NLMP] 2.2.2.5 NegotiateFlags we reason about."""

    UNICODE = 0x00000001
    REQUEST_TARGET = 0x00000004
    SIGN = 0x00000010
    SEAL = 0x00000020
    ANONYMOUS = 0x00000800
    ALWAYS_SIGN = 0x00008000
    EXTENDED_SESSIONSECURITY = 0x00080000
    IDENTIFY = 0x00100000
    VERSION = 0x02000000
    N128 = 0x20000000
    KEY_EXCH = 0x40000000
    N56 = 0x80000000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SecurityFacts:
    """What the authentication tokens of one security context showed."""

    mechanisms_offered: tuple[str, ...] = ()  # SPNEGO mechTypes of the client, as OIDs
    mechanism_chosen: str | None = None  # supportedMech of the server, or the raw mechanism
    ntlm_negotiate_flags: int | None = None
    ntlm_authenticate_flags: int | None = None
    ntlm_user: str | None = None  # "DOMAIN\\user", "" when anonymous
    ntlm_anonymous: bool = False  # empty user and empty NT response
    mech_list_mic: tuple[bool, bool] = (False, False)  # (from client, from server)
    kerberos: ApReqFacts | None = None  # the AP-REQ of a Kerberos context
    complete: bool = False
    keys: bool = False  # the credentials were known: PDUs can be verified and read

    @property
    def is_kerberos(self) -> bool:
        return self.kerberos is not None


def _payload(pkt, name: str):
    """A payload field of an NTLM message; scapy raises for one that is empty."""
    try:
        return getattr(pkt, name) or ""
    except (AttributeError, ValueError):
        return ""


def _ntlm_messages(token: bytes) -> list[bytes]:
    found, at = [], token.find(_SIGNATURE)
    while at >= 0:
        found.append(token[at:])
        at = token.find(_SIGNATURE, at + 8)
    return found


KERBEROS_OID = "1.2.840.113554.1.2.2"


class PassiveContext:
    def __init__(self, *, auth_type: int, identities: Mapping[str, bytes],
                 service_keys: ServiceKeys | None = None) -> None:
        self.auth_type = auth_type
        self._ntlm = ReceivedBytesNTLMSSP(IDENTITIES=dict(identities)) if identities else None
        self._service_keys = service_keys
        self._kerberos = None  # the passive KerberosSSP (or SPNEGO around it), once an AP-REQ is seen
        self._ctx = None
        self._facts: dict = {}
        self._protection: dict[Direction, ProtectionContext] = {}
        self._header_sign = False

    # -- feeding ---------------------------------------------------------------------

    def feed(self, token: bytes, direction: Direction, *, header_sign: bool = False) -> None:
        if header_sign:
            self._header_sign = True
        inner, blob = (self._spnego(token, direction) if self.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE
                       else (token, None))  # the SSP takes the same dissection (token_packet's GSSAPI_BLOB)
        ap_req = None
        if self.auth_type == RPC_C_AUTHN.GSS_KERBEROS or self._kerberos is not None or (
                direction is Direction.TO_SERVER and "kerberos" not in self._facts
                and (ap_req := find_ap_req(token, blob)) is not None):
            self._kerberos_token(token, direction, blob, ap_req)
            return
        if inner is not None:
            self._ntlm_token(inner, direction)
        elif self.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE:
            # SPNEGO that does not parse: still read the NTLM facts it carries
            for message in _ntlm_messages(token):
                self._ntlm_token(message, direction, facts_only=True)

    def _spnego(self, token: bytes, direction: Direction):
        """Record the SPNEGO facts; return the inner mechanism token (bytes or packet) and the
        token's dissection (None for both when it does not dissect)."""
        try:
            blob = dissected(GSSAPI_BLOB, token)  # the receiver's dissection of these bytes
            body = negotiation_token(blob)
        except Exception:  # garbage: nothing to learn
            return None, None
        mech_types = getattr(body, "mechTypes", None)
        if direction is Direction.TO_SERVER and mech_types:
            self._facts["mechanisms_offered"] = tuple(str(m.oid.val) for m in mech_types)
        supported = getattr(body, "supportedMech", None)
        if direction is Direction.TO_CLIENT and supported is not None:
            self._facts["mechanism_chosen"] = str(supported.oid.val)
        if getattr(body, "mechListMIC", None) is not None:
            mics = list(self._facts.get("mech_list_mic", (False, False)))
            mics[0 if direction is Direction.TO_SERVER else 1] = True
            self._facts["mech_list_mic"] = tuple(mics)
        return mechanism_token(body), blob

    def _ntlm_token(self, message, direction: Direction, *, facts_only: bool = False) -> None:
        """``message``: the exact NTLM message (bytes or scapy's dissection of it)."""
        try:
            pkt = message if not isinstance(message, bytes) else dissected(NTLM_Header, message)
            kind = int(pkt.MessageType)
            if kind == 1 and direction is Direction.TO_SERVER:
                self._facts["ntlm_negotiate_flags"] = int(pkt.NegotiateFlags)
                if self.auth_type == RPC_C_AUTHN.WINNT:
                    self._facts.setdefault("mechanism_chosen", NTLM_OID)
            elif kind == 3 and direction is Direction.TO_SERVER:
                user, domain = _payload(pkt, "UserName"), _payload(pkt, "DomainName")
                self._facts["ntlm_authenticate_flags"] = int(pkt.NegotiateFlags)
                self._facts["ntlm_user"] = f"{domain}\\{user}" if domain else user
                self._facts["ntlm_anonymous"] = not user and not pkt.NtChallengeResponseLen
            elif kind != 2 or direction is not Direction.TO_CLIENT:
                return
            if not facts_only:
                self._passive(pkt)
        except Exception:  # a malformed message: keep what was read so far
            return

    def _kerberos_token(self, token: bytes, direction: Direction, blob=None, ap_req=None) -> None:
        """``blob``: the token's SPNEGO dissection; ``ap_req``: its AP-REQ, when already found."""
        from scapy.layers.gssapi import GSS_C_FLAGS, GSS_S_FLAGS
        from scapy.layers.kerberos import KerberosSSP
        from scapy.layers.spnego import SPNEGOSSP

        packet = None
        if "kerberos" not in self._facts:
            if ap_req is None and direction is Direction.TO_SERVER:
                if blob is None:  # raw Kerberos: the SSP takes this dissection too
                    try:
                        packet = token_packet(self.auth_type, token)
                    except Exception:  # not a token scapy dissects: the bytes are searched
                        packet = None
                ap_req = find_ap_req(token, blob if blob is not None else packet)
            if ap_req is None:
                return
            facts = inspect_ap_req(ap_req, self._service_keys)
            self._facts["kerberos"] = facts
            if self.auth_type == RPC_C_AUTHN.GSS_KERBEROS:
                self._facts.setdefault("mechanism_chosen", KERBEROS_OID)
            key = self._service_keys.find(facts.sname, facts.ticket_etype) if self._service_keys else None
            if key is None:
                return
            inner = KerberosSSP(SPN=facts.sname, KEY=key)
            self._kerberos = SPNEGOSSP([inner]) if self.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE else inner
        if self._kerberos is None:
            return
        flags = GSS_S_FLAGS.GSS_S_ALLOW_MISSING_BINDINGS | GSS_C_FLAGS.GSS_C_DCE_STYLE
        try:
            if packet is None:
                packet = blob if blob is not None else token_packet(self.auth_type, token)
            self._ctx, status = self._kerberos.GSS_Passive(self._ctx, packet, req_flags=flags)
        except Exception:  # a token scapy cannot follow: no keys for this context
            self._kerberos = None
            return
        inner_ctx = getattr(self._ctx, "ssp_context", None) or self._ctx
        if getattr(inner_ctx, "KrbSessionKey", None) is not None and direction is Direction.TO_CLIENT:
            self._facts["complete"] = True
            self._facts["keys"] = True

    def _passive(self, pkt) -> None:
        if self._ntlm is None:
            return
        self._ctx, status = self._ntlm.GSS_Passive(self._ctx, pkt)
        if status == GSS_S_COMPLETE and self._ctx is not None and self._ctx.SessionKey:
            self._facts["complete"] = True
            self._facts["keys"] = True

    # -- reading ---------------------------------------------------------------------

    @property
    def facts(self) -> SecurityFacts:
        return SecurityFacts(**self._facts)

    def protection(self, direction: Direction) -> ProtectionContext | None:
        """Verifier/unsealer for PDUs travelling in ``direction`` (None without keys)."""
        if not self._facts.get("keys"):
            return None
        if self._kerberos is not None:
            if direction not in self._protection:
                self._protection[direction] = _PassiveKerberosProtection(
                    ssp=self._kerberos, context=self._ctx, header_sign=self._header_sign,
                    sender_is_server=direction is Direction.TO_CLIENT)
            return self._protection[direction]
        if direction not in self._protection:
            ctx = self._ctx if direction is Direction.TO_SERVER else self._reverse(self._ctx)
            mics = self._facts.get("mech_list_mic", (False, False))
            # a mechListMIC consumed sequence number 0 in the direction it travelled
            first = int(mics[0 if direction is Direction.TO_SERVER else 1])
            self._protection[direction] = ProtectionContext(
                ssp=self._ntlm, context=ctx, header_sign=self._header_sign, recv_seq=first)
        return self._protection[direction]

    @staticmethod
    def _reverse(acceptor):
        """A context whose receive side is the acceptor's send side (server -> client)."""
        ctx = NTLMSSP.CONTEXT(IsAcceptor=False)
        ctx.flags = acceptor.flags
        ctx.SessionKey = acceptor.SessionKey
        ctx.RecvSignKey, ctx.RecvSealKey = acceptor.SendSignKey, acceptor.SendSealKey
        ctx.RecvSealHandle = RC4Init(acceptor.SendSealKey)
        ctx.SendSignKey, ctx.SendSealKey = acceptor.RecvSignKey, acceptor.RecvSealKey
        ctx.SendSealHandle = RC4Init(acceptor.RecvSealKey)
        return ctx


class _PassiveKerberosProtection(ProtectionContext):
    """One passive Kerberos context reads both directions: it is turned toward the
    sender before each PDU."""

    def __init__(self, *, sender_is_server: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self._sender_is_server = sender_is_server

    def unprotect(self, pdu, header, trailer, *, privacy):
        self.ssp.GSS_Passive_set_Direction(self.context, IsAcceptor=self._sender_is_server)
        return super().unprotect(pdu, header, trailer, privacy=privacy)
