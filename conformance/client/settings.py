"""Every knob of the driven client, in one frozen value that a case can write as data.

``ClientSettings.from_mapping({...})`` reads the TOML form of a case's client
table; every problem is a :class:`SettingsError` naming the key, in one line.
Passwords are never part of the mapping: a mapping names the environment
variable that holds one (``password_env``).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib
import uuid
from collections.abc import Mapping
from typing import Any

from scapy.layers.dcerpc import RPC_C_AUTHN, RPC_C_AUTHN_LEVEL, RPC_C_IMP_LEVEL

from conformance.client.rpc import Credentials, Security
from conformance.wire import wcce

__all__ = ["Provider", "SettingsError", "ClientSettings"]


class SettingsError(ValueError):
    """A client setting that cannot be used, explained in one line."""


class Provider(enum.Enum):
    """Security provider, as RPC auth_type and mechanism ([MS-RPCE] 2.2.1.1.7)."""

    SPNEGO_NTLM = "spnego-ntlm"
    SPNEGO_KERBEROS = "spnego-kerberos"
    NTLM = "ntlm"
    KERBEROS = "kerberos"
    NONE = "none"

    @property
    def auth_type(self) -> int:
        return {Provider.SPNEGO_NTLM: RPC_C_AUTHN.GSS_NEGOTIATE, Provider.SPNEGO_KERBEROS: RPC_C_AUTHN.GSS_NEGOTIATE,
                Provider.NTLM: RPC_C_AUTHN.WINNT, Provider.KERBEROS: RPC_C_AUTHN.GSS_KERBEROS,
                Provider.NONE: RPC_C_AUTHN.NONE}[self]


_IIDS = {"ICertRequestD": wcce.IID_ICERTREQUESTD, "ICertRequestD2": wcce.IID_ICERTREQUESTD2}


def _version(text: str) -> int:
    """``"1.0"`` -> the wire if_version (minor << 16 | major)."""
    major, _, minor = str(text).partition(".")
    return (int(minor or 0) << 16) | int(major)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    host: str
    port: int = 135
    provider: Provider = Provider.SPNEGO_NTLM
    level: int = RPC_C_AUTHN_LEVEL.PKT_PRIVACY
    impersonation: int = RPC_C_IMP_LEVEL.IMPERSONATE
    user: str | None = None
    domain: str = ""
    password: str | None = dataclasses.field(default=None, repr=False)
    anonymous: bool = False
    clsid: uuid.UUID = wcce.CLSID_CCERTREQUESTD
    iids: tuple[uuid.UUID, ...] = (wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2)
    if_version: int = 0
    header_signing: bool = True
    server_alive2: bool = True
    orpc_version: tuple[int, int] = (5, 7)
    orpc_flags: int = 0
    activation_level: int | None = None  # None: the call level, at least PKT_INTEGRITY
    object_uuid: bool = True  # PFC_OBJECT_UUID with the IPID on every ORPC
    resolve_oxid_level: int | None = None  # also call ResolveOxid2 at this level after activating
    ntlm_clear_flags: int = 0  # NTLM NEGOTIATE flags to withhold (client mutants)
    spnego_auth3: bool = False  # SPNEGO's third leg in rpc_auth3 (a client mutant)
    tamper_mech_list_mic: bool = False  # flip a bit of SPNEGO's mechListMIC (a security negative)
    auth_pad_alignment: int = 16  # the stub padding before the sec_trailer (a client mutant: 8)
    #: max_recv_frag the client binds the exporter with; C706 12.6.3.1: at least 1432.  Below
    #: a response's size, the server sends it in several fragments
    max_recv_frag: int = 5840
    # Kerberos: the KDC ("host:port"), the realm, and the CA's DNS name that SPNs are made of
    kdc: str | None = None
    realm: str | None = None
    service_host: str | None = None
    activation_spn: str | None = None  # default RPCSS/<service_host> ([MS-DCOM] 3.2.4.1.1.2)
    kerberos_flags_set: int = 0  # checksum flags put on the wire beyond the impersonation level's
    kerberos_flags_clear: int = 0  # (client mutants)
    tickets: object | None = dataclasses.field(default=None, repr=False, compare=False)  # a TicketCache
    #: the service tickets' PAC: "as-issued", "absent" (removed), or one of the changed PACs of
    #: conformance.wire.pac.ticket_with_changed_pac ("changed", "no-server-signature",
    #: "unkeyed-signature", "no-logon-info"); all but the first re-encrypt the ticket with the
    #: CA account's keys (``service_keytab``: the profile's [kerberos] keytab)
    ticket_pac: str = "as-issued"
    service_keytab: pathlib.Path | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 1432 <= self.max_recv_frag <= 0xFFFF:
            raise SettingsError(f"max_recv_frag {self.max_recv_frag}: C706 fragments are 1432 to 65535 bytes")
        if not RPC_C_AUTHN_LEVEL.NONE <= self.level <= RPC_C_AUTHN_LEVEL.PKT_PRIVACY:
            raise SettingsError(f"level {self.level} is not an RPC auth level (1-6)")
        if not RPC_C_IMP_LEVEL.ANONYMOUS <= self.impersonation <= RPC_C_IMP_LEVEL.DELEGATE:
            raise SettingsError(f"impersonation {self.impersonation} is not 1-4")
        if self.provider is Provider.NONE and self.level != RPC_C_AUTHN_LEVEL.NONE:
            raise SettingsError("provider 'none' goes with level 1")
        if self.provider is not Provider.NONE and self.level == RPC_C_AUTHN_LEVEL.NONE:
            raise SettingsError(f"level 1 means no provider, not {self.provider.value}")
        if self.provider is not Provider.NONE and not self.anonymous and not self.user:
            raise SettingsError("an authenticated provider needs user (or anonymous = true)")
        if self.ticket_pac not in _TICKET_PAC:
            raise SettingsError(f"ticket_pac {self.ticket_pac!r}: one of {', '.join(_TICKET_PAC)}")
        if self.kerberos:
            self._kerberos_checks()

    @property
    def kerberos(self) -> bool:
        return self.provider in (Provider.SPNEGO_KERBEROS, Provider.KERBEROS)

    def _kerberos_checks(self) -> None:
        if self.anonymous:
            raise SettingsError(f"provider {self.provider.value} cannot be anonymous")
        if self.ticket_pac != "as-issued" and self.service_keytab is None:
            raise SettingsError(f"ticket_pac {self.ticket_pac!r} needs the CA account's keys (the target "
                                f"profile's [kerberos] keytab)")
        if self.tickets is not None:
            return
        if not self.kdc or not self.realm:
            raise SettingsError(f"provider {self.provider.value} needs a KDC and a realm (the target "
                                f"profile's [kerberos] kdc and realm)")
        from conformance.client.kerberos import TicketCache

        host, _, port = self.kdc.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"kdc {self.kdc!r} is not host:port")
        object.__setattr__(self, "tickets", TicketCache(kdc_host=host, kdc_port=int(port), realm=self.realm,
                                                        user=self.user or "", password=self.password or ""))

    def kerberos_initiator(self):
        if not self.kerberos:
            return None
        from conformance.client.kerberos import KerberosInitiator

        server = self.service_host or self.host
        return KerberosInitiator(tickets=self.tickets, activation_spn=self.activation_spn or f"RPCSS/{server}",
                                 fallback_spn=f"host/{server}", wire_flags_set=self.kerberos_flags_set,
                                 wire_flags_clear=self.kerberos_flags_clear, ticket_pac=self.ticket_pac,
                                 service_keytab=self.service_keytab)

    # -- what the connections use ------------------------------------------------------

    def credentials(self) -> Credentials | None:
        if self.provider is Provider.NONE:
            return None
        return Credentials(user=self.user or "", domain=self.domain, password=self.password,
                           anonymous=self.anonymous)

    def security(self) -> Security:
        if self.provider is Provider.NONE:
            return Security()
        return Security(auth_type=self.provider.auth_type, level=self.level,
                        impersonation=self.impersonation, credentials=self.credentials(),
                        header_sign=self.header_signing, ntlm_clear_flags=self.ntlm_clear_flags,
                        spnego_auth3=self.spnego_auth3, tamper_mech_list_mic=self.tamper_mech_list_mic,
                        auth_pad_alignment=self.auth_pad_alignment,
                        kerberos=self.kerberos_initiator())

    def activation_security(self) -> Security:
        level = self.activation_level
        if level is None:
            level = max(self.level, RPC_C_AUTHN_LEVEL.PKT_INTEGRITY) \
                if self.provider is not Provider.NONE else RPC_C_AUTHN_LEVEL.NONE
        if level == RPC_C_AUTHN_LEVEL.NONE:
            return Security()
        return dataclasses.replace(self.security(), level=level)

    # -- data form -----------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
                     **fixed: Any) -> "ClientSettings":
        """Settings from a case table; ``fixed`` supplies what the target profile knows
        (host, port, user, domain, password)."""
        environ = os.environ if environ is None else environ
        known = {f.name for f in dataclasses.fields(cls)} | {"password_env", "version"}
        unknown = set(data) - known
        if unknown:
            raise SettingsError(f"unknown client setting(s): {', '.join(sorted(unknown))}")
        if "password" in data:
            raise SettingsError("client settings name a password_env, never a password")
        values: dict[str, Any] = dict(fixed)
        for key, value in data.items():
            try:
                values.update(_convert(key, value, environ))
            except (ValueError, TypeError, KeyError) as exc:
                raise SettingsError(f"client setting {key} = {value!r}: {exc}") from None
        return cls(**values)


_TICKET_PAC = ("as-issued", "absent", "changed", "no-server-signature", "unkeyed-signature", "no-logon-info")


def _convert(key: str, value: Any, environ: Mapping[str, str]) -> dict[str, Any]:
    if key == "provider":
        return {"provider": Provider(value)}
    if key == "password_env":
        if value not in environ:
            raise KeyError(f"environment variable {value} is not set")
        return {"password": environ[value]}
    if key == "version":
        return {"if_version": _version(value)}
    if key == "iids":
        return {"iids": tuple(_IIDS.get(v) or uuid.UUID(v) for v in value)}
    if key == "clsid":
        return {"clsid": uuid.UUID(value)}
    if key == "orpc_version":
        major, _, minor = str(value).partition(".")
        return {"orpc_version": (int(major), int(minor))}
    return {key: value}
