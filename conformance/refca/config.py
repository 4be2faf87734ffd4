"""Configuration of the embedded reference CA: a TOML file plus command-line overrides.

Secrets never sit in the file in clear: a user is an NT hash (``"nt:<32 hex>"``)
or the name of an environment variable holding the password
(``{ password_env = "LAB_ALICE_PASSWORD" }``), hashed at load time.

Every problem is a :class:`ConfigError` whose message is one line naming the key.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL

from conformance.model.tomlfile import read_toml
from conformance.wire.gss import nt_hash
from conformance.wire.wcce import CAType, InterfaceFlag

__all__ = ["ConfigError", "RequestDenial", "Policy", "ListenConfig", "CAConfig", "load_config",
           "nt_hash"]


class ConfigError(ValueError):
    """A configuration problem, explained in one line."""


class RequestDenial(enum.Enum):
    """How a certificate-request operation below PKT_PRIVACY is refused.

    [MS-WCCE] 2.1 only says "refuse ... by returning a nonzero error"; the carrier on
    a real CA is UNCONFIRMED (wcce-wire.md section 4), so every documented
    alternative can be served.  See README "Reference CA choices" for the default.
    """

    FAULT_ACCESS_DENIED = "fault-access-denied"  # rpc_fault, status 0x00000005
    HRESULT_E_ACCESSDENIED = "hresult-e-accessdenied"  # method returns 0x80070005
    HRESULT_LEGACY = "hresult-legacy-accessdenied"  # method returns 0x80000009 ([MS-ICPR])
    DISPOSITION = "disposition-e-accessdenied"  # Request returns 0, disposition 0x80070005


#: Windows Server 2012 and later defaults ([MS-WCCE] 2.1 note <7>).
DEFAULT_INTERFACE_FLAGS = (
    InterfaceFlag.ENFORCEENCRYPTICERTREQUEST | InterfaceFlag.ENFORCEENCRYPTICERTADMIN
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    interface_flags: InterfaceFlag = DEFAULT_INTERFACE_FLAGS
    request_denial: RequestDenial = RequestDenial.FAULT_ACCESS_DENIED
    #: KB5004442 DCOM hardening: activation below PKT_INTEGRITY is refused.
    activation_min_level: int = RPC_C_AUTHN_LEVEL.PKT_INTEGRITY
    #: Calls to the object exporter below this level get access denied
    #: ([MS-DCOM] 3.1.1.5.4).  CONNECT: any authenticated caller.
    exporter_min_level: int = RPC_C_AUTHN_LEVEL.CONNECT

    @property
    def enforce_privacy(self) -> bool:
        return bool(self.interface_flags & InterfaceFlag.ENFORCEENCRYPTICERTREQUEST)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ListenConfig:
    host: str = "127.0.0.1"
    activation_port: int = 135
    exporter_port: int = 0  # 0: a dynamic port, as Windows' exporter uses


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CAConfig:
    ca_name: str = "WCCE-LAB-CA"
    dns_name: str = "ca01.lab.test"
    ca_type: CAType = CAType.ENTERPRISE_ROOT
    state_dir: pathlib.Path = pathlib.Path("state")
    #: NetBIOS domain and DNS domain the NTLM acceptor announces.
    domain: str = "LAB"
    dns_domain: str = "lab.test"
    computer: str = "CA01"
    users: Mapping[str, bytes] = dataclasses.field(default_factory=dict)  # name -> NT hash
    listen: ListenConfig = dataclasses.field(default_factory=ListenConfig)
    policy: Policy = dataclasses.field(default_factory=Policy)
    templates_file: pathlib.Path | None = None  # None: the packaged templates
    key_algorithm: str = "rsa-2048"
    #: Kerberos: the keytab of the CA's service principals (None: NTLM only), and the
    #: principal name the exporter's SECURITYBINDINGs announce for ORPCs.
    kerberos_keytab: pathlib.Path | None = None
    kerberos_principal: str | None = None
    #: a member of an Active Directory domain: the requester is who the ticket's PAC names,
    #: and a ticket must carry a PAC (see conformance.refca.rpc.kerberos)
    kerberos_domain_member: bool = False

    @property
    def orpc_principal(self) -> str:
        return self.kerberos_principal or f"host/{self.dns_name}"

    def __post_init__(self) -> None:
        if not self.ca_name.strip():
            raise ConfigError("ca.name must not be empty")
        if len(self.ca_name) > 64:
            raise ConfigError("ca.name must be at most 64 characters (an X.509 CN)")
        _check_loopback(self.listen.host)
        for port_name in ("activation_port", "exporter_port"):
            port = getattr(self.listen, port_name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"listen.{port_name} {port} is not a TCP port")
        if self.key_algorithm not in ("rsa-2048", "rsa-3072", "ec-p256"):
            raise ConfigError(f"ca.key_algorithm {self.key_algorithm!r}: use rsa-2048, rsa-3072 or ec-p256")


def _check_loopback(host: str) -> None:
    # The reference CA is a lab target: it serves loopback only (DEVELOPERS.md).
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"listen.host {host!r} is not an IP address") from None
    if not address.is_loopback:
        raise ConfigError(f"listen.host {host} is not a loopback address (127.0.0.0/8 or ::1)")


def _parse_user(name: str, value: Any, environ: Mapping[str, str]) -> bytes:
    if isinstance(value, str) and value.lower().startswith("nt:"):
        try:
            digest = bytes.fromhex(value[3:])
        except ValueError:
            digest = b""
        if len(digest) != 16:
            raise ConfigError(f"users.{name}: an NT hash is 32 hex digits after 'nt:'")
        return digest
    if isinstance(value, Mapping) and set(value) == {"password_env"}:
        var = value["password_env"]
        if var not in environ:
            raise ConfigError(f"users.{name}: environment variable {var} is not set")
        return nt_hash(environ[var])
    raise ConfigError(
        f"users.{name}: give 'nt:<32 hex digits>' or {{ password_env = \"VAR\" }} "
        "(clear-text passwords are not stored in configuration)"
    )


_TOP_KEYS = {"ca", "listen", "ntlm", "users", "policy", "kerberos"}
_SECTION_KEYS = {
    "ca": {"name", "dns_name", "type", "state_dir", "templates_file", "key_algorithm"},
    "listen": {"host", "activation_port", "exporter_port"},
    "ntlm": {"domain", "dns_domain", "computer"},
    "policy": {"interface_flags", "request_denial", "activation_min_level", "exporter_min_level"},
    "kerberos": {"keytab", "principal", "domain_member"},
}


def _level(section: str, key: str, value: Any) -> int:
    if isinstance(value, int) and RPC_C_AUTHN_LEVEL.NONE <= value <= RPC_C_AUTHN_LEVEL.PKT_PRIVACY:
        return value
    if isinstance(value, str) and value.upper() in RPC_C_AUTHN_LEVEL.__members__:
        return int(RPC_C_AUTHN_LEVEL[value.upper()])
    raise ConfigError(f"{section}.{key}: {value!r} is not an RPC auth level (1-6 or a name)")


def _enum(section: str, key: str, value: Any, cls: type[enum.Enum]):
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in cls)
        raise ConfigError(f"{section}.{key}: {value!r} is not one of {choices}") from None


def load_config(path: pathlib.Path | None = None, *, environ: Mapping[str, str] | None = None,
                **overrides: Any) -> CAConfig:
    """Read ``path`` (if given), apply keyword ``overrides`` (CLI), validate."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    base = pathlib.Path.cwd()
    if path is not None:
        data = read_toml(path, "configuration", ConfigError)
        base = pathlib.Path(path).resolve().parent
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown configuration section(s): {', '.join(sorted(unknown))}")
    for section, allowed in _SECTION_KEYS.items():
        extra = set(data.get(section, {})) - allowed
        if extra:
            raise ConfigError(f"unknown key(s) in [{section}]: {', '.join(sorted(extra))}")
    ca, listen, ntlm, pol = (data.get(k, {}) for k in ("ca", "listen", "ntlm", "policy"))
    users = {name: _parse_user(name, value, environ) for name, value in data.get("users", {}).items()}
    users.update(overrides.pop("users", {}) or {})
    flags = DEFAULT_INTERFACE_FLAGS
    if "interface_flags" in pol:
        flags = InterfaceFlag(0)
        for name in pol["interface_flags"]:
            try:
                flags |= InterfaceFlag[str(name).upper().removeprefix("IF_")]
            except KeyError:
                raise ConfigError(f"policy.interface_flags: unknown flag {name!r}") from None
    policy = Policy(
        interface_flags=overrides.pop("interface_flags", flags),
        request_denial=_enum("policy", "request_denial",
                             pol.get("request_denial", RequestDenial.FAULT_ACCESS_DENIED.value),
                             RequestDenial),
        activation_min_level=_level("policy", "activation_min_level",
                                    pol.get("activation_min_level", "PKT_INTEGRITY")),
        exporter_min_level=_level("policy", "exporter_min_level",
                                  pol.get("exporter_min_level", "CONNECT")),
    )
    listen_cfg = ListenConfig(
        host=overrides.pop("host", None) or listen.get("host", "127.0.0.1"),
        activation_port=_port(overrides.pop("port", None), listen.get("activation_port", 135)),
        exporter_port=_port(overrides.pop("exporter_port", None), listen.get("exporter_port", 0)),
    )
    state_dir = overrides.pop("state_dir", None) or (base / ca.get("state_dir", "state"))
    templates = ca.get("templates_file")
    try:
        ca_type = CAType[str(ca.get("type", "enterprise_root")).upper().replace("-", "_")]
    except KeyError:
        raise ConfigError(f"ca.type: unknown CA type {ca.get('type')!r}") from None
    ca_name = overrides.pop("ca_name", None) or ca.get("name", "WCCE-LAB-CA")
    kerberos = data.get("kerberos", {})
    keytab = overrides.pop("kerberos_keytab", None) or (base / kerberos["keytab"] if "keytab" in kerberos else None)
    domain_member = overrides.pop("kerberos_domain_member", None)
    domain_member = kerberos.get("domain_member", False) if domain_member is None else domain_member
    if not isinstance(domain_member, bool):
        raise ConfigError(f"kerberos.domain_member: {domain_member!r} is not true or false")
    if keytab is not None and not pathlib.Path(keytab).is_file():
        raise ConfigError(f"kerberos.keytab: {keytab} is not a file")
    if overrides:
        raise ConfigError(f"unknown override(s): {', '.join(sorted(overrides))}")
    return CAConfig(
        ca_name=ca_name,
        dns_name=ca.get("dns_name", "ca01.lab.test"),
        ca_type=ca_type,
        state_dir=pathlib.Path(state_dir),
        domain=ntlm.get("domain", "LAB"),
        dns_domain=ntlm.get("dns_domain", "lab.test"),
        computer=ntlm.get("computer", "CA01"),
        users=users,
        listen=listen_cfg,
        policy=policy,
        templates_file=(base / templates) if templates else None,
        key_algorithm=ca.get("key_algorithm", "rsa-2048"),
        kerberos_keytab=pathlib.Path(keytab) if keytab is not None else None,
        kerberos_principal=kerberos.get("principal"),
        kerberos_domain_member=domain_member,
    )


def _port(override: int | None, value: Any) -> int:
    port = override if override is not None else value
    if not isinstance(port, int) or isinstance(port, bool):
        raise ConfigError(f"listen port {port!r} is not an integer")
    return port
