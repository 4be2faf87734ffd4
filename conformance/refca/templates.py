"""Certificate templates of the reference CA, read from TOML data."""

from __future__ import annotations

import dataclasses
import enum
import importlib.resources
import pathlib
import tomllib

from conformance.refca.config import ConfigError

__all__ = ["IssuePolicy", "Template", "load_templates", "templates_property"]


class IssuePolicy(enum.Enum):
    ISSUE = "issue"
    PENDING = "pending"
    DENY = "deny"


_KEY_USAGES = {
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign",
}
_FIELDS = {"name", "oid", "schema", "display_name", "eku", "key_usage", "subject", "san",
           "validity_days", "policy"}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    name: str
    oid: str
    schema: int
    display_name: str
    eku: tuple[str, ...]
    key_usage: frozenset[str]
    subject: str  # "requester" | "request"
    san: tuple[str, ...]  # "upn" | "dns" | "request"
    validity_days: int
    policy: IssuePolicy


def _template(index: int, raw: dict) -> Template:
    where = f"template #{index + 1} ({raw.get('name', '?')})"
    extra = set(raw) - _FIELDS
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    missing = _FIELDS - set(raw)
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    if raw["subject"] not in ("requester", "request"):
        raise ConfigError(f"{where}: subject must be 'requester' or 'request'")
    if not set(raw["key_usage"]) <= _KEY_USAGES:
        raise ConfigError(f"{where}: unknown key usage in {raw['key_usage']}")
    if not set(raw["san"]) <= {"upn", "dns", "request"}:
        raise ConfigError(f"{where}: san entries are 'upn', 'dns' or 'request'")
    try:
        policy = IssuePolicy(raw["policy"])
    except ValueError:
        raise ConfigError(f"{where}: policy must be issue, pending or deny") from None
    return Template(
        name=raw["name"], oid=raw["oid"], schema=int(raw["schema"]),
        display_name=raw["display_name"], eku=tuple(raw["eku"]),
        key_usage=frozenset(raw["key_usage"]), subject=raw["subject"], san=tuple(raw["san"]),
        validity_days=int(raw["validity_days"]), policy=policy,
    )


def load_templates(path: pathlib.Path | None = None) -> dict[str, Template]:
    """Templates by lower-case name (template names compare case-insensitively)."""
    if path is None:
        text = importlib.resources.files("conformance.refca").joinpath(
            "data/templates.toml").read_text(encoding="utf-8")
    else:
        try:
            text = pathlib.Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read templates {path}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"templates file is not valid TOML: {exc}") from None
    templates = [_template(i, t) for i, t in enumerate(raw.get("template", []))]
    return {t.name.lower(): t for t in templates}


def templates_property(templates: dict[str, Template]) -> str:
    """CR_PROP_TEMPLATES: ``"name1\\nOID1\\n...nameN\\nOIDN\\n"`` ([MS-WCCE] 3.2.1.4.3.2.29,
    errata 2023-02-14: a trailing newline; the NUL is added by the string encoding)."""
    return "".join(f"{t.name}\n{t.oid}\n" for t in templates.values())
