"""Target profiles: what the suite talks to and what the target claims.

A profile is TOML (``examples/*.toml``); the password is named by an environment
variable, never written.  Every problem is a :class:`ProfileError` in one line.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from conformance.model.deviations import Deviation, DeviationError, parse_deviations
from conformance.model.tomlfile import read_toml

__all__ = ["ProfileError", "Claims", "CLAIMS", "Account", "KerberosTarget", "Target", "load_profile", "DEFAULT_DROP_WAIT"]


class ProfileError(ValueError):
    """A target profile problem, in one line."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """What the target says about itself; None: unknown (its cases are N/A)."""

    enforce_privacy: bool | None = None  # IF_ENFORCEENCRYPTICERTREQUEST or the CVE-2022-37976 update
    hardened_activation: bool | None = None  # KB5004442: activation below PKT_INTEGRITY refused
    pending_template: bool = False  # a template that takes requests under submission
    kerberos: bool | None = None  # the target accepts Kerberos (a [kerberos] section says where the KDC is)
    second_identity: bool | None = None  # a second account ([second_credentials]) for cross-client cases
    #: [MS-RPCE] 3.3.1.5.4: the target acknowledges security context multiplexing at bind time
    security_context_multiplexing: bool | None = None
    #: the target is a CA reached over DCOM (activation, object exporter); a plain DCE/RPC
    #: endpoint (kind "rpc", e.g. Samba's DC for calibration) runs only the RPC-layer cases
    dcom: bool | None = None
    #: nobody but this run submits requests to the target while it runs (a lab CA kept for
    #: the suite; every embedded CA): a request the CA numbered between the refusal-effect
    #: markers is then the refused one, entered
    sole_requester: bool | None = None
    #: the target is a member of an Active Directory domain whose Kerberos tickets carry a PAC,
    #: and the profile's [kerberos] keytab holds its account's keys, so the suite can present a
    #: ticket without a PAC or with a changed one ([MS-KILE] 3.4.5.3)
    pac: bool | None = None

    def holds(self, claim: str) -> bool | None:
        if claim not in CLAIMS:  # case tables are checked against CLAIMS; this is a bug
            raise KeyError(f"{claim!r} is not a claim")
        return getattr(self, claim)


#: The claims a profile can make (case tables name only these).
CLAIMS = frozenset(f.name for f in dataclasses.fields(Claims))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KerberosTarget:
    """Where the target's realm is: the KDC, the realm, and the CA's DNS name SPNs are made
    of; with the CA's keytab (lab CAs) the suite also reads sealed Kerberos stubs."""

    realm: str
    kdc_host: str
    kdc_port: int = 88
    service_host: str
    keytab: pathlib.Path | None = None

    @property
    def kdc(self) -> str:
        return f"{self.kdc_host}:{self.kdc_port}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    user: str
    domain: str
    password: str = dataclasses.field(repr=False)


#: Target kinds: a CA over DCOM, or a plain DCE/RPC endpoint serving one interface.
KINDS = ("ca", "rpc")
#: The interfaces a plain DCE/RPC target can be driven through: a valid call of each
#: (conformance.judge.endpoints) is the "call" of the RPC-layer cases.
RPC_INTERFACES = frozenset({"mgmt"})
#: a server closes a connection in the step that answers (Windows, Samba, the reference CA: the
#: close follows the answer on the wire); 0.2 s leaves a remote target's scheduling room
DEFAULT_DROP_WAIT = 0.2


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    host: str
    activation_port: int = 135  # kind "rpc": the endpoint's port
    kind: str = "ca"
    interface: str | None = None  # kind "rpc": which of RPC_INTERFACES
    ca_name: str = ""
    user: str
    domain: str
    password: str = dataclasses.field(repr=False)
    templates: Mapping[str, str] = dataclasses.field(default_factory=dict)
    claims: Claims = dataclasses.field(default_factory=Claims)
    quirks: tuple[Deviation, ...] = ()  # known deviations of this target, with reason and expiry
    kerberos: KerberosTarget | None = None
    second: Account | None = None  # another account: an IPID of one client used by the other
    description: str = ""
    #: seconds after its answer within which the target's close of the connection is seen; a
    #: connection open after it has stayed (Samba's raw tests wait 0.01-0.1 s for a silence)
    drop_wait: float = DEFAULT_DROP_WAIT

    @property
    def issue_template(self) -> str:
        return self.templates.get("issue", "User")


_SECTIONS = {
    "target": {"host", "activation_port", "ca_name", "description", "kind", "interface", "drop_wait"},
    "credentials": {"user", "domain", "password_env"},
    "second_credentials": {"user", "domain", "password_env"},
    "templates": {"issue", "pending"},
    "claims": {"enforce_privacy", "hardened_activation", "security_context_multiplexing", "sole_requester", "pac"},
    "kerberos": {"realm", "kdc", "service_host", "keytab"},
}
_LISTS = {"quirk"}  # [[quirk]] case = ..., reason = ..., expires = ... (as in a deviations file)


def load_profile(path: pathlib.Path, *, environ: Mapping[str, str] | None = None) -> Target:
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = read_toml(path, "target profile", ProfileError)
    unknown = set(data) - set(_SECTIONS) - _LISTS
    if unknown:
        raise ProfileError(f"unknown section(s) in target profile: {', '.join(sorted(unknown))}")
    for section, allowed in _SECTIONS.items():
        if not isinstance(data.get(section, {}), dict):
            raise ProfileError(f"[{section}] must be a table")
        extra = set(data.get(section, {})) - allowed
        if extra:
            raise ProfileError(f"unknown key(s) in [{section}]: {', '.join(sorted(extra))}")
    target, creds = data.get("target", {}), data.get("credentials", {})
    kind = target.get("kind", "ca")
    if kind not in KINDS:
        raise ProfileError(f"[target] kind {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "rpc":
        if target.get("interface") not in RPC_INTERFACES:
            raise ProfileError(f"[target] kind \"rpc\" needs interface, one of {', '.join(sorted(RPC_INTERFACES))}")
        if "ca_name" in target or set(data) & {"templates", "second_credentials"}:
            raise ProfileError("[target] kind \"rpc\" is a plain DCE/RPC endpoint: no ca_name, templates or "
                               "second_credentials")
    elif "interface" in target:
        raise ProfileError("[target] interface is for kind \"rpc\"")
    required = (("target", "host"), ("credentials", "user"), ("credentials", "password_env"))
    for section, key in required + ((("target", "ca_name"),) if kind == "ca" else ()):
        if key not in data.get(section, {}):
            raise ProfileError(f"[{section}] {key} is required")
    for section, key in (("target", "host"), ("target", "ca_name"), ("target", "description"),
                         ("credentials", "user"), ("credentials", "domain"), ("credentials", "password_env"),
                         ("templates", "issue"), ("templates", "pending")):
        value = data.get(section, {}).get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ProfileError(f"[{section}] {key} must be a non-empty string")
    variable = creds["password_env"]
    if variable not in environ:
        raise ProfileError(f"environment variable {variable} (credentials.password_env) is not set")
    second = _account(data["second_credentials"], environ) if "second_credentials" in data else None
    port = target.get("activation_port", 135)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ProfileError(f"target.activation_port {port!r} is not a TCP port")
    drop_wait = target.get("drop_wait", DEFAULT_DROP_WAIT)
    if not isinstance(drop_wait, (int, float)) or isinstance(drop_wait, bool) or not 0.01 <= drop_wait <= 10:
        raise ProfileError(f"target.drop_wait {drop_wait!r}: seconds, 0.01 to 10")
    claims = data.get("claims", {})
    for key, value in claims.items():
        if not isinstance(value, bool):
            raise ProfileError(f"claims.{key} must be true or false (leave it out when unknown)")
    templates = dict(data.get("templates", {}))
    kerberos = _kerberos(data.get("kerberos"), pathlib.Path(path).resolve().parent) if "kerberos" in data else None
    if claims.get("pac") and (kerberos is None or kerberos.keytab is None):
        raise ProfileError("claims.pac needs [kerberos] keytab (the CA account's keys: the PAC cases build "
                           "their tickets with them)")
    try:
        quirks = tuple(parse_deviations(data.get("quirk", []), "target profile: quirk"))
    except DeviationError as exc:
        raise ProfileError(str(exc)) from None
    return Target(
        host=str(target["host"]), activation_port=port, kind=kind, interface=target.get("interface"),
        ca_name=str(target.get("ca_name", "")),
        description=str(target.get("description", "")), user=str(creds["user"]),
        domain=str(creds.get("domain", "")), password=environ[variable], templates=templates,
        claims=Claims(enforce_privacy=claims.get("enforce_privacy"),
                      hardened_activation=claims.get("hardened_activation"),
                      security_context_multiplexing=claims.get("security_context_multiplexing"),
                      sole_requester=claims.get("sole_requester"), pac=claims.get("pac"),
                      pending_template="pending" in templates,
                      kerberos=True if kerberos is not None else None,
                      second_identity=True if second is not None else None, dcom=kind == "ca"),
        quirks=quirks, kerberos=kerberos, second=second, drop_wait=float(drop_wait),
    )


def _account(section: Mapping[str, Any], environ: Mapping[str, str]) -> Account:
    for key in ("user", "password_env"):
        if not isinstance(section.get(key), str) or not section[key].strip():
            raise ProfileError(f"[second_credentials] {key} is required (a non-empty string)")
    if section["password_env"] not in environ:
        raise ProfileError(f"environment variable {section['password_env']} (second_credentials.password_env) "
                           "is not set")
    return Account(user=section["user"], domain=str(section.get("domain", "")),
                   password=environ[section["password_env"]])


def _kerberos(section: Mapping[str, Any], base: pathlib.Path) -> KerberosTarget:
    for key in ("realm", "kdc", "service_host"):
        if not isinstance(section.get(key), str) or not section[key].strip():
            raise ProfileError(f"[kerberos] {key} is required (a non-empty string)")
    host, sep, port = section["kdc"].rpartition(":")
    if not sep:
        host, port = section["kdc"], "88"
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ProfileError(f"[kerberos] kdc {section['kdc']!r} is not host or host:port")
    keytab = None
    if "keytab" in section:
        keytab = base / section["keytab"]
        if not keytab.is_file():
            raise ProfileError(f"[kerberos] keytab {keytab} is not a file")
    return KerberosTarget(realm=section["realm"], kdc_host=host, kdc_port=int(port),
                          service_host=section["service_host"], keytab=keytab)
