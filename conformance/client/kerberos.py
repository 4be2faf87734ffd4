"""The driven client's Kerberos: tickets from a KDC, and the initiator SSP.

scapy's KerberosSSP talks to a KDC on port 88 only, so tickets are fetched here
(``krb_as_req`` / ``krb_tgs_req`` take a port) and handed to it as ST + session
key.  The TGT and each service ticket are cached for the cache's lifetime: a case
matrix then costs one AS and one TGS exchange per SPN, not one per case.

The RFC 4121 checksum flags follow the impersonation level ([MS-KILE] 3.2.5.2):
IDENTIFY at IDENTIFY and ANONYMOUS.  At DELEGATE Windows sets GSS_C_DELEG_FLAG only
when the service ticket is ok-as-delegate; this lab's CA principal is not, and
scapy cannot build the KRB-CRED delegation needs, so the flag is not sent then.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from scapy.layers.gssapi import GSS_C_FLAGS
from scapy.layers.kerberos import EncryptionType, KerberosSSP

__all__ = ["KerberosError", "TicketCache", "KerberosInitiator", "FlagKerberosSSP"]


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
        self._tickets[key] = (result.tgsrep.ticket, result.sessionkey)
        return self._tickets[key]


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

    def ssp(self, spn: str) -> KerberosSSP:
        ticket, session_key = self.tickets.service_ticket(spn)
        return FlagKerberosSSP(UPN=self.tickets.upn, ST=ticket, KEY=session_key, SPN=spn,
                               SKEY_TYPE=EncryptionType.AES256_CTS_HMAC_SHA1_96,
                               wire_flags_set=self.wire_flags_set, wire_flags_clear=self.wire_flags_clear)
