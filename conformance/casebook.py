"""Conformance cases from TOML tables (``cases/*.toml``), matrices expanded.

A table entry names its requirements, what the client does (kind, method, client
settings, parameters), the expected outcome as data and the wire checks to
apply.  ``matrix = { provider = [...], level = [...] }`` expands one entry into
the product of its values; ``{name}`` in any string is replaced by the row's
value (a string that is exactly ``"{name}"`` takes the value's own type).

Expected outcomes are alternatives: ``"accept"``, ``"drop"``, or a table
``{ any = [...] }`` (``deny = [...]`` reads the same) of observed forms such as
``"fault 0x00000005"``, ``"hresult 0x80070005"``, ``"disposition 0x80094800"``,
``"bind_nak 9"``, ``"reject 1"``, ``"activation fault 0x00000005"``.
"""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from conformance.catalogue import Requirement
from conformance.tomlfile import read_toml_text
from conformance.wire.checks import CHECKS, Side

__all__ = ["CaseError", "Case", "load_cases", "case_files", "CASES_DIR", "KINDS", "METHODS"]

#: The suite's tables: ``cases/`` beside the package in a checkout (the suite runs
#: from its checkout; the README's set-up commands make one).
CASES_DIR = pathlib.Path(__file__).resolve().parent.parent / "cases"

KINDS = {"call", "activation", "bind", "raw", "flow"}
KERBEROS_PROVIDERS = {"spnego-kerberos", "kerberos"}
METHODS = {"Request", "Request2", "GetCACert", "Ping", "Ping2", "GetCAProperty", "GetCAPropertyInfo"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_FIELDS = {"id", "title", "requirements", "claims", "kind", "method", "client", "params", "matrix",
           "expect", "checks", "side", "action", "connection_drops"}
_OUTCOME = re.compile(r"^(activation )?(accept|drop|(fault|hresult) 0x[0-9a-f]{8}|"
                      r"disposition (0x[0-9a-f]{8}|\d)|bind_nak \d+|reject \d+)$")


#: whose credentials a case authenticates with: the target's account, a fault in them
#: (security negatives), or the profile's second account
CREDENTIALS = frozenset({"target", "wrong-password", "unknown-user", "second"})


class CaseError(ValueError):
    """A case table problem, in one line naming the file and case."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    id: str
    title: str
    source: str
    requirements: tuple[str, ...]
    claims: tuple[str, ...]
    kind: str
    method: str | None
    client: Mapping[str, Any]
    params: Mapping[str, Any]
    action: str | None
    expect: tuple[str, ...]
    connection_drops: bool | None  # True: must drop; False: must stay; None: not checked
    checks: tuple[str, ...]
    side: Side
    line: int = 0  # 0-based line of the table entry's id in its file (for reports)

    def matches(self, prefixes: tuple[str, ...]) -> bool:
        """Selection by ID prefix; a pattern ending in ``$`` is one exact ID."""
        return not prefixes or any(self.id == p[:-1] if p.endswith("$") else self.id.startswith(p)
                                   for p in prefixes)

    @property
    def variant(self) -> dict[str, Any]:
        """Provider x level x impersonation, with the client's defaults filled in."""
        return {"provider": self.client.get("provider", "spnego-ntlm"), "level": self.client.get("level", 6),
                "impersonation": self.client.get("impersonation", 3)}


def _substitute(value: Any, row: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in row:
            return row[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(row.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [_substitute(v, row) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, row) for k, v in value.items()}
    return value


def _expectation(where: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        values = [raw]
    elif isinstance(raw, dict) and len(raw) == 1 and set(raw) <= {"any", "deny"}:
        values = list(next(iter(raw.values())))
    else:
        raise CaseError(f"{where}: expect is 'accept', 'drop' or {{ any = [...] }}")
    normalized = [v.strip().lower() for v in values]
    for value in normalized:
        if not _OUTCOME.match(value):
            raise CaseError(f"{where}: expected outcome {value!r} is not a known form")
    return tuple(normalized)


def _expand(entry: dict, source: str, defaults: dict, catalogue: Mapping[str, Requirement],
            line: int = 0) -> list[Case]:
    where = f"{source}: case {entry.get('id', '?')}"
    unknown = set(entry) - _FIELDS
    if unknown:
        raise CaseError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    matrix = entry.get("matrix", {})
    names = list(matrix)
    rows = [dict(zip(names, values)) for values in itertools.product(*(matrix[n] for n in names))]
    cases = []
    for row in rows or [{}]:
        e = _substitute({k: v for k, v in entry.items() if k != "matrix"}, row)
        merged = {**defaults, **e}
        cid = str(merged.get("id", ""))
        here = f"{source}: case {cid}"
        if not cid or _PLACEHOLDER.search(cid):
            raise CaseError(f"{here}: id missing or with an unknown placeholder")
        kind = merged.get("kind", "call")
        if kind not in KINDS:
            raise CaseError(f"{here}: kind {kind!r} is not one of {sorted(KINDS)}")
        method = merged.get("method")
        if kind in ("call", "flow") and method not in METHODS:
            raise CaseError(f"{here}: method {method!r} is not one of {sorted(METHODS)}")
        requirements = tuple(merged.get("requirements", ()))
        missing = [r for r in requirements if r not in catalogue]
        if not requirements or missing:
            raise CaseError(f"{here}: requirements {missing or 'missing'} not in the catalogue")
        checks = tuple(merged.get("checks", ()))
        bad_checks = set(checks) - set(CHECKS)
        if bad_checks:
            raise CaseError(f"{here}: unknown check(s) {sorted(bad_checks)}")
        if "expect" not in merged:
            raise CaseError(f"{here}: expect is required")
        client = dict(merged.get("client", {}))
        _validate_client(here, client)
        action = merged.get("action")
        if (kind == "raw") != (action is not None):
            raise CaseError(f"{here}: kind 'raw' and action go together")
        if action is not None:
            from conformance.rawcases import RAW_ACTIONS

            if action not in RAW_ACTIONS:
                raise CaseError(f"{here}: action {action!r} is not one of {sorted(RAW_ACTIONS)}")
        params = dict(merged.get("params", {}))
        if params.get("credentials", "target") not in CREDENTIALS:
            raise CaseError(f"{here}: params.credentials {params['credentials']!r} is not one of {sorted(CREDENTIALS)}")
        claims = tuple(merged.get("claims", ()))
        if params.get("credentials") == "second" and "second_identity" not in claims:
            claims += ("second_identity",)  # the target profile must name a second account
        if client.get("provider") in KERBEROS_PROVIDERS and "kerberos" not in claims:
            claims += ("kerberos",)  # a Kerberos case needs a target that says where its realm is
        cases.append(Case(
            id=cid, title=str(merged.get("title", cid)), source=source, requirements=requirements,
            claims=claims, kind=kind, method=method,
            client=client, params=params,
            action=action, expect=_expectation(here, merged["expect"]),
            connection_drops=merged.get("connection_drops"), checks=checks,
            side=Side(merged.get("side", "server")), line=line))
    return cases


def _validate_client(where: str, client: dict) -> None:
    """The client settings must make a ClientSettings (target fields filled in as the engine does)."""
    from conformance.client.settings import ClientSettings, SettingsError

    fixed: dict[str, Any] = {"host": "127.0.0.1", "port": 135}
    if client.get("provider", "spnego-ntlm") != "none":
        fixed.update(user="u", domain="d", password="p")
    if client.get("provider") in KERBEROS_PROVIDERS:
        fixed.update(kdc="127.0.0.1:88", realm="LAB.TEST", service_host="ca.lab.test", tickets=object())
    try:
        ClientSettings.from_mapping(client, environ={}, **fixed)
    except SettingsError as exc:
        raise CaseError(f"{where}: client: {exc}") from None


def case_files(directory: pathlib.Path = CASES_DIR) -> list[pathlib.Path]:
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise CaseError(f"no case tables (*.toml) in {directory}")
    return files


def _line_of(lines: list[str], raw_id: object) -> int:
    """Where the entry's id is written (tomllib keeps no positions)."""
    needle = f'"{raw_id}"'
    return next((n for n, text in enumerate(lines) if needle in text and "id" in text), 0)


def load_cases(paths: list[pathlib.Path], catalogue: Mapping[str, Requirement]) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(paths):
        text, data = read_toml_text(path, "case table", CaseError)
        lines = text.splitlines()
        defaults = data.get("defaults", {})
        for entry in data.get("case", []):
            cases.extend(_expand(entry, path.name, defaults, catalogue, _line_of(lines, entry.get("id"))))
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CaseError(f"{case.source}: case id {case.id} is not unique")
        seen.add(case.id)
    return cases
