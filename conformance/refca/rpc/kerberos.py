"""The reference CA's Kerberos acceptor: scapy's KerberosSSP with a keytab.

scapy's acceptor holds one key and checks neither the ticket's lifetime, nor the
authenticator's time, nor that authenticator and ticket name the same client.
This one picks the key of the ticket's principal and encryption type from the
keytab and does those checks ([RFC 4120] 3.2.3: KRB_AP_ERR_TKT_EXPIRED,
KRB_AP_ERR_SKEW, KRB_AP_ERR_BADMATCH), so a stale or forged ticket gets no context.
Acceptor subkeys are AES256, as Windows issues them.

In an Active Directory domain (``require_pac``) the requester is who the ticket's PAC names
([MS-PAC] 2.5 LOGON_INFO: ``LAB\\alice``), and a ticket is refused when its PAC's server
signature does not verify with the service key ([MS-KILE] 3.4.5.3 MUST) or when it carries no
PAC (what Windows does, by Samba's tests run against it: ledger ``rpc/auth/kerberos-pac-absent``).
A PAC without LOGON_INFO outside a domain (MIT's minimal PAC) names nobody: the ticket's
client name does.
"""

from __future__ import annotations

import dataclasses
import datetime

from scapy.layers.gssapi import GSS_S_DEFECTIVE_CREDENTIAL, GSS_S_DEFECTIVE_TOKEN
from scapy.layers.kerberos import KRB_AP_REP, EncryptionType, KerberosSSP

from conformance.wire.kerberos import ServiceKeys, find_ap_req, open_ap_req
from conformance.wire.pac import (
    SERVER_CHECKSUM, PacError, buffers, find_pac, read_pac, server_signature_verifies,
)

__all__ = ["KeytabKerberosSSP", "KerberosBehaviour", "CLOCK_SKEW"]

CLOCK_SKEW = datetime.timedelta(minutes=5)  # [MS-KILE] 3.1.1.4, the Windows default


def _when(value) -> datetime.datetime | None:
    moment = getattr(value, "datetime", None)
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _name(principal) -> str:
    return "/".join(s.val.decode() for s in principal.nameString)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KerberosBehaviour:
    """The Kerberos acceptor's rules where a mutant may differ (see the module)."""

    #: a domain member refuses a ticket without a PAC (when the CA is configured as one)
    require_pac: bool = True
    #: [MS-KILE] 3.4.5.3: the server MUST verify the PAC's server signature
    verify_pac_signature: bool = True
    #: [MS-PAC] 2.8: the server signature is keyed (HMAC with the service key); an unkeyed
    #: checksum (CRC32) anyone can compute is no signature (MS14-068)
    keyed_pac_signature_only: bool = True
    #: [MS-PAC] 2.8: a PAC without a server-signature buffer (ulType 6) fails verification
    require_pac_server_signature: bool = True
    #: the signature is verified even when LOGON_INFO names the ticket's own client
    verify_pac_when_names_agree: bool = True
    #: a domain member refuses a ticket with no authorization data at all as carrying no PAC
    require_pac_without_authorization_data: bool = True
    #: a domain member refuses a PAC it cannot read a LOGON_INFO from (no fallback to cname)
    refuse_pac_without_logon_info: bool = True


class KeytabKerberosSSP(KerberosSSP):
    def __init__(self, keys: ServiceKeys, *, domain_member: bool = False,
                 behaviour: KerberosBehaviour | None = None, **kwargs) -> None:
        kwargs.setdefault("SKEY_TYPE", EncryptionType.AES256_CTS_HMAC_SHA1_96)
        super().__init__(**kwargs)
        self.service_keys = keys
        self.domain_member = domain_member
        self.behaviour = behaviour or KerberosBehaviour()
        self.client_principal: str | None = None
        self.client_identity: str | None = None  # DOMAIN\account from the PAC
        self.refusal: str | None = None

    def GSS_Accept_sec_context(self, Context, input_token=None, **kwargs):
        first = Context is None or Context.state == self.STATE.INIT
        if first:
            # the AP-REQ scapy's acceptor reads below, so that the one admitted is the one accepted
            # (and its decryptions are made once: open_ap_req)
            ap_req = find_ap_req(bytes(input_token), input_token) if input_token is not None else None
            if ap_req is None:
                self.refusal = "no AP-REQ in the token"
                return Context, None, GSS_S_DEFECTIVE_TOKEN
            refusal = self._admit(ap_req)
            if refusal is not None:
                self.refusal = refusal
                return Context, None, GSS_S_DEFECTIVE_CREDENTIAL
        Context, token, status = super().GSS_Accept_sec_context(Context, input_token, **kwargs)
        if first and isinstance(token, KRB_AP_REP):
            token = self._with_sequence_number(Context, token)
        return Context, token, status

    @staticmethod
    def _with_sequence_number(Context, ap_rep):
        """The AP-REP with the acceptor's initial sequence number (RFC 4121 4.1: the AP-REP
        carries it; Windows', MIT's and Heimdal's acceptors send it, and impacket's initiator
        reads it, so certipy -k and impacket fail without it; scapy 2.8 leaves it out).  It is
        the number this acceptor's first token uses (scapy starts its SendSeqNum at 0)."""
        part = ap_rep.encPart.decrypt(Context.STSessionKey)  # key usage 12, EncAPRepPart
        part.seqNumber = Context.SendSeqNum
        ap_rep.encPart.encrypt(Context.STSessionKey, part)
        return ap_rep

    def _admit(self, ap_req) -> str | None:
        """Choose the key; refuse what RFC 4120 3.2.3 makes the server refuse."""
        ticket = ap_req.ticket
        sname = "/".join(s.val.decode() for s in ticket.sname.nameString)
        etype = int(ticket.encPart.etype.val)
        key = self.service_keys.find(sname, etype)
        if key is None:
            return f"no key for {sname} (etype {etype})"
        try:
            enc, authenticator = open_ap_req(ap_req, key)
        except Exception as exc:
            return f"ticket or authenticator does not decrypt: {exc}"
        now = datetime.datetime.now(datetime.timezone.utc)
        end, start = _when(enc.endtime), _when(enc.starttime) or _when(enc.authtime)
        if end is not None and now > end + CLOCK_SKEW:
            return "ticket expired"
        if start is not None and start - CLOCK_SKEW > now:
            return "ticket not yet valid"
        ctime = _when(authenticator.ctime)
        if ctime is None or abs(now - ctime) > CLOCK_SKEW:
            return "authenticator outside the clock skew"
        ticket_client = (_name(enc.cname), enc.crealm.val)
        if (_name(authenticator.cname), authenticator.crealm.val) != ticket_client:
            return "authenticator and ticket name different clients"
        refusal = self._read_pac(enc, key)
        if refusal is not None:
            return refusal
        self.SPN, self.KEY = sname, key
        self.client_principal = f"{ticket_client[0]}@{ticket_client[1].decode()}"
        return None

    def _read_pac(self, enc, key) -> str | None:
        """Who the PAC names, or why the ticket is refused for its PAC."""
        pac = find_pac(enc)
        if pac is None:
            if not self.behaviour.require_pac_without_authorization_data and not getattr(
                    enc.authorizationData, "seq", None):
                return None  # mutant: the PAC is looked for only inside authorization data that is present
            return "the ticket carries no PAC" if self.domain_member and self.behaviour.require_pac else None
        signature_checked = False
        try:
            if self._checks_pac_signature(pac, enc) and not server_signature_verifies(
                    pac, key, keyed_only=self.behaviour.keyed_pac_signature_only):
                return "the PAC's server signature does not verify"
            signature_checked = True
            self.client_identity = read_pac(pac).identity
        except PacError as exc:
            if self.domain_member and (self.behaviour.refuse_pac_without_logon_info or not signature_checked):
                return f"the PAC does not parse: {exc}"
            # mutant (refuse_pac_without_logon_info off): a PAC without readable LOGON_INFO falls back to cname
        return None

    def _checks_pac_signature(self, pac: bytes, enc) -> bool:
        """Whether the PAC's server signature is verified (always, unless a mutant says otherwise)."""
        if not self.behaviour.verify_pac_signature:
            return False
        if not self.behaviour.require_pac_server_signature and not _has_server_signature(pac):
            return False  # mutant: a PAC without a server-signature buffer is taken as nothing to verify
        if not self.behaviour.verify_pac_when_names_agree and _names_ticket_client(pac, enc):
            return False  # mutant: the signature is checked only when LOGON_INFO names another user than cname
        return True


def _has_server_signature(pac: bytes) -> bool:
    try:
        return any(kind == SERVER_CHECKSUM for kind, _, _ in buffers(pac))
    except PacError:
        return True  # a malformed PAC: let the verification refuse it


def _names_ticket_client(pac: bytes, enc) -> bool:
    try:
        return read_pac(pac).account.lower() == _name(enc.cname).lower()
    except PacError:
        return False
