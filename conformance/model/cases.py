"""Conformance cases from TOML tables (``cases/*.toml``), matrices expanded, every key checked.

A table entry names its requirements, what the client does (kind, method, client
settings, parameters), the expected outcome as data (:mod:`conformance.model.outcomes`)
and the wire checks to apply.  ``matrix = { provider = [...], level = [...] }`` expands
one entry into the product of its values; ``{name}`` in any string is replaced by the
row's value (a string that is exactly ``"{name}"`` takes the value's own type).

Every key of every entry is checked here against the declared schema below, ``params``
included (its words per kind are :data:`KIND_PARAMS`): a misspelt key or value is one
:class:`CaseError` naming the file, the case and the key, never a case that quietly
tests something else.  The ``client`` table is checked by the judge
(:func:`conformance.judge.tables.load_cases`), which can build client settings.
"""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from conformance.model import outcomes
from conformance.model.catalogue import Requirement, check_names
from conformance.model.ledger import Situation, contradictions, shipped_ledger
from conformance.model.profile import CLAIMS
from conformance.model.tomlfile import read_toml_text
from conformance.model.verdicts import Side
from conformance.model.shipped import CASES_DIR as _SHIPPED_CASES

__all__ = ["CaseError", "Case", "Params", "ClientCase", "parse_cases", "load_client_cases", "case_files",
           "CASES_DIR", "CLIENT_CASES_DIR", "KINDS", "METHODS", "INTERFACES", "TRANSFER_SYNTAXES",
           "RAW_ACTIONS", "CREDENTIALS", "KIND_PARAMS", "KERBEROS_PROVIDERS", "APPLIES"]

#: The suite's tables: ``cases/`` of the checkout, or the copy an installed wheel carries
#: (conformance.model.shipped).
CASES_DIR = _SHIPPED_CASES
CLIENT_CASES_DIR = CASES_DIR / "client"

# -- the declared vocabulary --------------------------------------------------------------

#: What a case does: activate only, bind on the exporter, call a WCCE method, a
#: pending -> retrieve flow, or a named raw negative.
KINDS = frozenset({"activation", "bind", "call", "flow", "raw"})
METHODS = frozenset({"Request", "Request2", "GetCACert", "Ping", "Ping2", "GetCAProperty", "GetCAPropertyInfo"})
INTERFACES = frozenset({"ICertRequestD", "ICertRequestD2", "IRemUnknown2"})
TRANSFER_SYNTAXES = frozenset({"NDR", "NDR64"})
KERBEROS_PROVIDERS = frozenset({"spnego-kerberos", "kerberos"})
#: Samba-style negatives on the object exporter (conformance.judge.raw implements each).
RAW_ACTIONS = frozenset({
    "pfc-maybe", "pfc-conc-mpx", "pfc-reserved",
    "fragments-in-order", "fragments-middle-without-first", "fragments-last-without-first",
    "fragments-new-call-inside",
    "auth-pad-overflow", "trailer-level-changed", "trailer-auth-type-changed", "trailer-unknown-context",
    "trailer-auth-type-changed-signed",
    "tamper-signature", "replay", "missing-verifier", "downgrade-signed", "second-context", "foreign-ipid",
    "opnum-out-of-range", "unknown-context", "unknown-assoc-group", "request-before-bind",
    "alter-change-level", "alter-change-auth-type", "alter-change-transfer-syntax",
    "responses-one-context", "responses-two-contexts",
})
#: The levels ``bind-auth-none-l{level}`` binds at: the valid 2-6 and the invalid 0, 1, 7, 255.
AUTH_NONE_BIND_LEVELS = (0, 1, 2, 3, 4, 5, 6, 7, 255)
RAW_ACTIONS = RAW_ACTIONS | {f"bind-auth-none-l{level}" for level in AUTH_NONE_BIND_LEVELS}
#: Whose credentials a case authenticates with: the target's account, a fault in them
#: (security negatives), or the profile's second account.
CREDENTIALS = frozenset({"target", "wrong-password", "unknown-user", "second"})
#: The CA name a call carries: the target's, another one, the target's in lower case,
#: empty, or a NULL pointer.
CA_NAMES = frozenset({"target", "wrong", "lower", "empty", "null"})
#: The template a Request asks for: the profile's issuing one, its pending one, or one
#: the CA does not publish.
TEMPLATES = frozenset({"issue", "pending", "unknown"})
#: The IPID an ORPC is addressed to: the one activation returned, or a made-up one.
IPIDS = frozenset({"activated", "unknown"})
APPLIES = ("always", "when-exercised")  # client cases: must the client exercise it?
#: Kinds an RPC-layer case (situation rpc/...) can have to run on a plain DCE/RPC endpoint:
#: the bind, or a raw negative, is made on the endpoint's interface.
RPC_LAYER_KINDS = frozenset({"bind", "raw"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    """A case's ``params``, typed; the defaults are the valid, ordinary case."""

    credentials: str = "target"
    fresh_activation: bool = False  # activate anew instead of reusing an activation of the same settings
    ca_name: str = "target"
    template: str = "issue"
    interface: str = "ICertRequestD"  # bind: the interface presented
    transfer_syntaxes: tuple[str, ...] = ("NDR",)  # bind: the transfer syntaxes proposed
    ipid: str = "activated"


_PARAM_VALUES: dict[str, frozenset[str]] = {
    "credentials": CREDENTIALS, "ca_name": CA_NAMES, "template": TEMPLATES, "interface": INTERFACES,
    "transfer_syntaxes": TRANSFER_SYNTAXES, "ipid": IPIDS,
}
_ACTIVATING = {"credentials", "fresh_activation"}
#: The params each kind reads; any other key is an error.
KIND_PARAMS: dict[str, frozenset[str]] = {
    "activation": frozenset({"credentials"}),
    "bind": frozenset(_ACTIVATING | {"interface", "transfer_syntaxes"}),
    "call": frozenset(_ACTIVATING | {"ca_name", "template", "ipid"}),
    "flow": frozenset(_ACTIVATING | {"ca_name", "template"}),
    "raw": frozenset(_ACTIVATING | {"ca_name", "template"}),
}
assert set(KIND_PARAMS) == KINDS and set().union(*KIND_PARAMS.values()) == {
    f.name for f in dataclasses.fields(Params)}

_FIELDS = {"id", "title", "requirements", "claims", "kind", "method", "client", "params", "matrix",
           "expect", "checks", "side", "action", "connection_drops", "situation"}
_CLIENT_CASE_FIELDS = {"id", "title", "requirements", "checks", "applies"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


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
    params: Params
    action: str | None
    expect: tuple[str, ...]
    connection_drops: bool | None  # True: must drop; False: must stay; None: not checked
    checks: tuple[str, ...]
    side: Side
    situation: Situation | None = None  # what Windows answers here (conformance/model/ledger.toml)
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


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientCase:
    """A client-side case (``cases/client/*.toml``, probe-client): checks over what the
    client under test sent."""

    case: Case
    applies: str  # "always" | "when-exercised"


# -- reading ----------------------------------------------------------------------------------


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


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _params(where: str, kind: str, raw: Any) -> Params:
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: params must be a table")
    allowed = KIND_PARAMS[kind]
    for key in sorted(raw):
        if key not in allowed:
            raise CaseError(f"{where}: params.{key} is not a parameter of kind {kind!r} "
                            f"(it takes {', '.join(sorted(allowed))})")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "fresh_activation":
            if not isinstance(value, bool):
                raise CaseError(f"{where}: params.fresh_activation must be true or false")
            values[key] = value
            continue
        words = _PARAM_VALUES[key]
        items = value if key == "transfer_syntaxes" else [value]
        if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
            raise CaseError(f"{where}: params.{key} must be " + (
                "a non-empty list of strings" if key == "transfer_syntaxes" else "a string"))
        wrong = [v for v in items if v not in words]
        if wrong:
            raise CaseError(f"{where}: params.{key} = {wrong[0]!r} is not one of {sorted(words)}")
        values[key] = tuple(items) if key == "transfer_syntaxes" else value
    return Params(**values)


def _situation(where: str, raw: Any, expect: tuple[str, ...], drops: bool | None) -> Situation | None:
    """The case's ledger situation; its expectation may not contradict Windows' answer.
    (Every shipped case names one: tests/unit/model/test_ledger.py.)"""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise CaseError(f"{where}: situation must name a ledger entry (conformance/model/ledger.toml)")
    situation = shipped_ledger().get(raw)
    if situation is None:
        raise CaseError(f"{where}: situation {raw!r} is not in the ledger")
    problems = contradictions(situation, expect, drops)
    if problems:
        raise CaseError(f"{where}: contradicts the ledger's {raw}: {'; '.join(problems)}")
    return situation


def _expand(entry: Any, source: str, defaults: dict, catalogue: Mapping[str, Requirement],
            line: int = 0) -> list[Case]:
    if not isinstance(entry, dict):
        raise CaseError(f"{source}: every [[case]] must be a table")
    where = f"{source}: case {entry.get('id', '?')}"
    unknown = (set(entry) | set(defaults)) - _FIELDS
    if unknown:
        raise CaseError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    matrix = entry.get("matrix", {})
    if not isinstance(matrix, dict) or not all(isinstance(v, list) and v for v in matrix.values()):
        raise CaseError(f"{where}: matrix must be a table of non-empty lists")
    names = list(matrix)
    rows = [dict(zip(names, values)) for values in itertools.product(*(matrix[n] for n in names))]
    known_checks = check_names(catalogue)
    cases = []
    for row in rows or [{}]:
        merged = {**defaults, **_substitute({k: v for k, v in entry.items() if k != "matrix"}, row)}
        cid = merged.get("id", "")
        here = f"{source}: case {cid}"
        if not isinstance(cid, str) or not cid or _PLACEHOLDER.search(cid):
            raise CaseError(f"{here}: id missing or with an unknown placeholder")
        kind = merged.get("kind", "call")
        if kind not in KINDS:
            raise CaseError(f"{here}: kind {kind!r} is not one of {sorted(KINDS)}")
        method = merged.get("method")
        if kind in ("call", "flow"):
            if method not in METHODS:
                raise CaseError(f"{here}: method {method!r} is not one of {sorted(METHODS)}")
        elif method is not None:
            raise CaseError(f"{here}: method is for kinds call and flow, not {kind!r}")
        requirements = _strings(here, "requirements", merged.get("requirements", []))
        missing = [r for r in requirements if r not in catalogue]
        if not requirements or missing:
            raise CaseError(f"{here}: requirements {missing or 'missing'} not in the catalogue")
        checks = _strings(here, "checks", merged.get("checks", []))
        bad_checks = sorted(set(checks) - known_checks)
        if bad_checks:
            raise CaseError(f"{here}: unknown check(s) {bad_checks}")
        if "expect" not in merged:
            raise CaseError(f"{here}: expect is required")
        try:
            expect = outcomes.parse_expectation(merged["expect"])
        except ValueError as exc:
            raise CaseError(f"{here}: {exc}") from None
        client = merged.get("client", {})
        if not isinstance(client, dict):
            raise CaseError(f"{here}: client must be a table")
        action = merged.get("action")
        if (kind == "raw") != (action is not None):
            raise CaseError(f"{here}: kind 'raw' and action go together")
        if action is not None and action not in RAW_ACTIONS:
            raise CaseError(f"{here}: action {action!r} is not one of {sorted(RAW_ACTIONS)}")
        params = _params(here, kind, merged.get("params", {}))
        claims = _strings(here, "claims", merged.get("claims", []))
        if unknown_claims := sorted(set(claims) - CLAIMS):
            raise CaseError(f"{here}: claim(s) {unknown_claims} are not claims a profile makes "
                            f"({', '.join(sorted(CLAIMS))})")
        if params.credentials == "second" and "second_identity" not in claims:
            claims += ("second_identity",)  # the target profile must name a second account
        if client.get("provider") in KERBEROS_PROVIDERS and "kerberos" not in claims:
            claims += ("kerberos",)  # a Kerberos case needs a target that says where its realm is
        drops = merged.get("connection_drops")
        if drops is not None and not isinstance(drops, bool):
            raise CaseError(f"{here}: connection_drops must be true or false")
        try:
            side = Side(merged.get("side", "server"))
        except ValueError:
            raise CaseError(f"{here}: side must be one of {[s.value for s in Side]}") from None
        title = merged.get("title", cid)
        if not isinstance(title, str):
            raise CaseError(f"{here}: title must be a string")
        situation = _situation(here, merged.get("situation"), expect, drops)
        if not (situation is not None and situation.layer == "rpc" and kind in RPC_LAYER_KINDS
                and params.interface == "ICertRequestD") and "dcom" not in claims:
            claims += ("dcom",)  # runs only on a CA reached over DCOM, not on a plain RPC endpoint
        cases.append(Case(
            id=cid, title=title, source=source, requirements=requirements, claims=claims, kind=kind,
            method=method, client=dict(client), params=params, action=action, expect=expect,
            connection_drops=drops, checks=checks, side=side, situation=situation, line=line))
    return cases


def case_files(directory: pathlib.Path = CASES_DIR) -> list[pathlib.Path]:
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise CaseError(f"no case tables (*.toml) in {directory}")
    return files


def _line_of(lines: list[str], raw_id: object) -> int:
    """Where the entry's id is written (tomllib keeps no positions)."""
    needle = f'"{raw_id}"'
    return next((n for n, text in enumerate(lines) if needle in text and "id" in text), 0)


def _table(path: pathlib.Path, what: str) -> tuple[list[str], dict, list]:
    text, data = read_toml_text(path, what, CaseError)
    unknown = set(data) - {"defaults", "case"}
    if unknown:
        raise CaseError(f"{path.name}: unknown section(s) {', '.join(sorted(unknown))} (use [defaults] "
                        f"and [[case]])")
    defaults, entries = data.get("defaults", {}), data.get("case", [])
    if not isinstance(defaults, dict) or not isinstance(entries, list):
        raise CaseError(f"{path.name}: [defaults] is a table and [[case]] an array of tables")
    return text.splitlines(), defaults, entries


def parse_cases(paths: list[pathlib.Path], catalogue: Mapping[str, Requirement]) -> list[Case]:
    """Every case of the tables, checked against the schema (all but the client settings)."""
    cases: list[Case] = []
    for path in sorted(paths):
        lines, defaults, entries = _table(path, "case table")
        for entry in entries:
            line = _line_of(lines, entry.get("id")) if isinstance(entry, dict) else 0
            cases.extend(_expand(entry, path.name, defaults, catalogue, line))
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CaseError(f"{case.source}: case id {case.id} is not unique")
        seen.add(case.id)
    return cases


def load_client_cases(catalogue: Mapping[str, Requirement],
                      directory: pathlib.Path = CLIENT_CASES_DIR) -> list[ClientCase]:
    """The client-side cases: id, title, requirements, checks, applies."""
    known_checks = check_names(catalogue)
    cases: list[ClientCase] = []
    for path in sorted(directory.glob("*.toml")):
        _, defaults, entries = _table(path, "client case table")
        for entry in entries:
            merged = {**defaults, **entry}
            where = f"{path.name}: case {merged.get('id', '?')}"
            unknown = set(merged) - _CLIENT_CASE_FIELDS
            if unknown:
                raise CaseError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
            requirements = _strings(where, "requirements", merged.get("requirements", []))
            checks = _strings(where, "checks", merged.get("checks", []))
            if not merged.get("id") or not requirements or not checks:
                raise CaseError(f"{where}: id, requirements and checks are required")
            if missing := [r for r in requirements if r not in catalogue]:
                raise CaseError(f"{where}: requirements {missing} not in the catalogue")
            if bad := sorted(set(checks) - known_checks):
                raise CaseError(f"{where}: unknown check(s) {bad}")
            if merged.get("applies", "always") not in APPLIES:
                raise CaseError(f"{where}: applies must be one of {list(APPLIES)}")
            case = Case(id=str(merged["id"]), title=str(merged.get("title", merged["id"])), source=str(path),
                        requirements=requirements, claims=(), kind="client", method=None, client={},
                        params=Params(), action=None, expect=("client conformant",), connection_drops=None,
                        checks=checks, side=Side.CLIENT)
            cases.append(ClientCase(case=case, applies=merged.get("applies", "always")))
    ids = [c.case.id for c in cases]
    if len(set(ids)) != len(ids):
        raise CaseError("client case IDs are not unique")
    return cases
