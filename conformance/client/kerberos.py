"""The driven client's Kerberos: tickets from a KDC, and the initiator SSP.

scapy's KerberosSSP talks to a KDC on port 88 only, so tickets are fetched here
(``krb_as_req`` / ``krb_tgs_req`` take a port) and handed to it as ST + session
key.  The TGT and each service ticket are cached for the cache's lifetime: a case
matrix then costs one AS and one TGS exchange per SPN, not one per case.

The RFC 4121 checksum flags follow the impersonation level ([MS-KILE] 3.2.5.2):
IDENTIFY at IDENTIFY and ANONYMOUS.  At DELEGATE Windows sets GSS_C_DELEG_FLAG only
when the service ticket is ok-as-delegate; this lab's CA principal is not, and
scapy cannot build the KRB-CRED delegation needs, so the flag is not sent then.

SPNEGO over Kerberos goes through :class:`MicAnsweringSPNEGOSSP`, which answers an
acceptor's mechListMIC with the initiator's own (RFC 4178 section 5; see the class).
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from scapy.layers.gssapi import GSS_C_FLAGS, GSS_S_BAD_MIC, GSS_S_COMPLETE
from scapy.layers.kerberos import EncryptionType, KerberosSSP
from scapy.layers.spnego import SPNEGO_MechListMIC, SPNEGO_negTokenResp, SPNEGOSSP
from scapy.libs.rfc3961 import Key
from scapy.packet import Packet

from conformance.wire.scapymemo import built_as_is

__all__ = ["KerberosError", "TicketCache", "KerberosInitiator", "FlagKerberosSSP", "MicAnsweringSPNEGOSSP"]


class KerberosError(Exception):
    """No ticket: the KDC refused (wrong password, unknown principal, skew) or is down."""


@dataclasses.dataclass
class TicketCache:
    kdc_host: str
    kdc_port: int
    realm: str
    user: str
    password: str = dataclasses.field(repr=False)
    timeout: float = 5.0
    _tgt: object = dataclasses.field(default=None, repr=False)
    _tickets: dict = dataclasses.field(default_factory=dict, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    @property
    def upn(self) -> str:
        return f"{self.user}@{self.realm}"

    def _quiet(self):
        logging.getLogger("scapy.runtime").setLevel(logging.CRITICAL)

    def tgt(self):
        from scapy.layers.kerberos import krb_as_req

        with self._lock:
            if self._tgt is None:
                self._quiet()
                try:
                    result = krb_as_req(self.upn, ip=self.kdc_host, port=self.kdc_port, password=self.password,
                                        timeout=self.timeout, verbose=False)
                except OSError as exc:
                    raise KerberosError(f"KDC {self.kdc_host}:{self.kdc_port}: {exc}") from exc
                if result is None:
                    raise KerberosError(f"the KDC gave {self.upn} no TGT (password, pre-authentication or skew)")
                self._tgt = result
            return self._tgt

    def service_ticket(self, spn: str):
        """(ticket, session key) for ``spn``."""
        from scapy.layers.kerberos import krb_tgs_req

        key = spn.lower()
        if key in self._tickets:
            return self._tickets[key]
        tgt = self.tgt()
        self._quiet()
        try:
            result = krb_tgs_req(tgt.upn, spn, sessionkey=tgt.sessionkey, ticket=tgt.asrep.ticket,
                                 ip=self.kdc_host, port=self.kdc_port, timeout=self.timeout, verbose=False)
        except OSError as exc:
            raise KerberosError(f"KDC {self.kdc_host}:{self.kdc_port}: {exc}") from exc
        if result is None:
            raise KerberosError(f"the KDC gave no service ticket for {spn}")
        session = result.sessionkey
        self._tickets[key] = (result.tgsrep.ticket, _SessionKey(session.etype, key=session.key,
                                                                cksumtype=session.cksumtype))
        return self._tickets[key]


class _SessionKey(Key):
    """A service ticket's session key, which encrypts what scapy's initiator makes with it (the
    authenticator of each AP-REQ, the DCE-style AP-REP) as scapy builds a packet without first
    copying it (``scapymemo.built_as_is``: ~3 ms an authenticator); the ciphertext is scapy's."""

    def encrypt(self, keyusage, plaintext, confounder=None, **kwargs):
        if isinstance(plaintext, Packet):
            built_as_is(plaintext)
        return super().encrypt(keyusage, plaintext, confounder, **kwargs)


class FlagKerberosSSP(KerberosSSP):
    """KerberosSSP that can put other checksum flags on the wire than it acts on (client
    mutants); and that never asks for delegation it cannot perform (see the module)."""

    def __init__(self, *, wire_flags_set: int = 0, wire_flags_clear: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.wire_flags_set = wire_flags_set
        self.wire_flags_clear = wire_flags_clear

    def GSS_Init_sec_context(self, Context, input_token=None, target_name=None, req_flags=None, **kwargs):
        if Context is None and req_flags is not None:
            local = GSS_C_FLAGS(int(req_flags) & ~GSS_C_FLAGS.GSS_C_DELEG_FLAG)
            wire = GSS_C_FLAGS((int(local) | self.wire_flags_set) & ~self.wire_flags_clear)
            Context, token, status = super().GSS_Init_sec_context(Context, input_token, target_name=target_name,
                                                                  req_flags=wire, **kwargs)
            Context.flags = local  # sealing and the number of legs follow what was really asked
            return Context, token, status
        return super().GSS_Init_sec_context(Context, input_token, target_name=target_name, req_flags=req_flags,
                                            **kwargs)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KerberosInitiator:
    """What a connection needs for Kerberos: the ticket cache and the SPNs to ask for."""

    tickets: TicketCache
    activation_spn: str  # RPCSS/<server> ([MS-DCOM] 3.2.4.1.1.2)
    fallback_spn: str  # for ORPCs when the SECURITYBINDING names no principal
    wire_flags_set: int = 0
    wire_flags_clear: int = 0
    ticket_pac: str = "as-issued"  # "absent" / "changed": see ClientSettings.ticket_pac
    service_keytab: object | None = None  # pathlib.Path of the CA account's keys

    def ssp(self, spn: str) -> KerberosSSP:
        ticket, session_key = self.tickets.service_ticket(spn)
        if self.ticket_pac != "as-issued":
            ticket = self._edited(ticket)
        return FlagKerberosSSP(UPN=self.tickets.upn, ST=ticket, KEY=session_key, SPN=spn,
                               SKEY_TYPE=EncryptionType.AES256_CTS_HMAC_SHA1_96,
                               wire_flags_set=self.wire_flags_set, wire_flags_clear=self.wire_flags_clear)


    def _edited(self, ticket):
        """The ticket no KDC issues: without its PAC, or with a PAC changed after signing."""
        from conformance.wire.kerberos import ServiceKeys
        from conformance.wire.pac import PacError, ticket_with_changed_pac, ticket_without_pac

        keys = ServiceKeys.from_keytab(self.service_keytab)
        key = keys.find("/".join(s.val.decode() for s in ticket.sname.nameString), int(ticket.encPart.etype.val))
        if key is None:
            raise KerberosError("the keytab has no key for the service ticket (ticket_pac needs the CA account's)")
        try:
            return ticket_without_pac(ticket, key) if self.ticket_pac == "absent" else \
                ticket_with_changed_pac(ticket, key, self.ticket_pac)
        except PacError as exc:
            raise KerberosError(f"cannot change the ticket's PAC: {exc}") from exc


#: RFC 4178 4.2.2 NegState accept-completed
_ACCEPT_COMPLETED = 0


def _neg_token_resp(token) -> SPNEGO_negTokenResp | None:
    """The NegTokenResp inside a parsed SPNEGO token (bare or GSSAPI-wrapped), if any."""
    inner = getattr(token, "innerToken", token)
    resp = getattr(inner, "token", None)
    return resp if isinstance(resp, SPNEGO_negTokenResp) else None


class MicAnsweringSPNEGOSSP(SPNEGOSSP):
    """SPNEGO initiator that answers the acceptor's mechListMIC with its own.

    The gap in scapy 2.8's ``SPNEGOSSP.GSS_Init_sec_context``: the initiator sends a
    mechListMIC only when it decided on its own that the negotiation needs one
    (``CONTEXT.require_mic``: the selected mechanism was not the first choice, or NTLM with
    a MIC in its AUTHENTICATE).  Kerberos as the first choice never needs one, so when the
    acceptor includes a mechListMIC anyway, scapy verifies it and then answers with an
    empty NegTokenResp.  RFC 4178 section 5 makes the MIC exchange OPTIONAL when the
    accepted mechanism is both sides' preferred one, not forbidden: either side may start
    it, and a MIC received is answered with one (MIT's and Heimdal's SPNEGO: "If we got a
    MIC, we must send a MIC").  Samba 4.17 does so
    for every AES (RFC 4121 CFX) Kerberos context with integrity (RPC levels 4 to 6; at
    CONNECT it exchanges no MIC): on the DCE-style third leg
    ([MS-KILE] 3.4.5.1: the client's own AP-REP) it completes the mechanism and answers
    accept-incomplete with its mechListMIC, then checks the initiator's in the next leg
    (``gensec_spnego_server_negTokenTarg_start``): an empty one fails to verify
    (NT_STATUS_ACCESS_DENIED), and the alter_context gets fault 0x721
    (rpc_s_sec_pkg_error).

    Here, when the acceptor's NegTokenResp carries a mechListMIC that verified, the
    initiator has not sent one, and the acceptor has not already said accept-completed,
    the answer carries the initiator's mechListMIC: GSS_GetMIC of the mechanism context
    (for Kerberos the RFC 4121 MIC token under the acceptor subkey from the AP-REP, with
    the initiator's sequence number) over the DER of the initiator's mechTypes, exactly as
    scapy computes it when ``require_mic`` is set.  A mechListMIC that does not verify
    comes back as ``GSS_S_BAD_MIC`` instead of scapy's bare ``ValueError``.
    """

    def GSS_Init_sec_context(self, Context, input_token=None, **kwargs):
        resp = _neg_token_resp(input_token)
        acceptor_mic = resp is not None and resp.mechListMIC is not None
        already_sent = Context is not None and Context.state == SPNEGOSSP.STATE.MICONLY
        try:
            Context, token, status = super().GSS_Init_sec_context(Context, input_token, **kwargs)
        except ValueError:  # scapy's KerberosSSP.GSS_VerifyMICEx: "Checksums don't match"
            if not acceptor_mic:
                raise
            return Context, None, GSS_S_BAD_MIC
        if (acceptor_mic and not already_sent and not Context.raw and Context.verified_mic
                and status == GSS_S_COMPLETE and isinstance(_neg_token_resp(token), SPNEGO_negTokenResp)
                and resp.negState != _ACCEPT_COMPLETED):
            token.token.mechListMIC = SPNEGO_MechListMIC(
                value=Context.ssp.GetMechListMIC(Context.ssp_context, Context.get_mechListMIC()))
            Context.state = SPNEGOSSP.STATE.MICONLY  # an accept-completed ends it; anything else is BAD_MIC
        return Context, token, status
