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

from conformance.deviations import Deviation, DeviationError, parse_deviations
from conformance.tomlfile import read_toml

__all__ = ["ProfileError", "Claims", "Target", "load_profile"]


class ProfileError(ValueError):
    """A target profile problem, in one line."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """What the target says about itself; None: unknown (its cases are N/A)."""

    enforce_privacy: bool | None = None  # IF_ENFORCEENCRYPTICERTREQUEST or the CVE-2022-37976 update
    hardened_activation: bool | None = None  # KB5004442: activation below PKT_INTEGRITY refused
    pending_template: bool = False  # a template that takes requests under submission

    def holds(self, claim: str) -> bool | None:
        return getattr(self, claim, None)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    host: str
    activation_port: int = 135
    ca_name: str
    user: str
    domain: str
    password: str = dataclasses.field(repr=False)
    templates: Mapping[str, str] = dataclasses.field(default_factory=dict)
    claims: Claims = dataclasses.field(default_factory=Claims)
    quirks: tuple[Deviation, ...] = ()  # known deviations of this target, with reason and expiry
    description: str = ""

    @property
    def issue_template(self) -> str:
        return self.templates.get("issue", "User")


_SECTIONS = {
    "target": {"host", "activation_port", "ca_name", "description"},
    "credentials": {"user", "domain", "password_env"},
    "templates": {"issue", "pending"},
    "claims": {"enforce_privacy", "hardened_activation"},
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
    for section, key in (("target", "host"), ("target", "ca_name"), ("credentials", "user"),
                         ("credentials", "password_env")):
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
    port = target.get("activation_port", 135)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ProfileError(f"target.activation_port {port!r} is not a TCP port")
    claims = data.get("claims", {})
    for key, value in claims.items():
        if not isinstance(value, bool):
            raise ProfileError(f"claims.{key} must be true or false (leave it out when unknown)")
    templates = dict(data.get("templates", {}))
    try:
        quirks = tuple(parse_deviations(data.get("quirk", []), "target profile: quirk"))
    except DeviationError as exc:
        raise ProfileError(str(exc)) from None
    return Target(
        host=str(target["host"]), activation_port=port, ca_name=str(target["ca_name"]),
        description=str(target.get("description", "")), user=str(creds["user"]),
        domain=str(creds.get("domain", "")), password=environ[variable], templates=templates,
        claims=Claims(enforce_privacy=claims.get("enforce_privacy"),
                      hardened_activation=claims.get("hardened_activation"),
                      pending_template="pending" in templates),
        quirks=quirks,
    )
