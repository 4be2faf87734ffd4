"""The ledger of Windows behaviour (``conformance/model/ledger.toml``) as typed values.

For every situation the suite puts a target in, Windows' answer in the outcome grammar,
whether the connection stays, the sources and a confidence.  Cases name their
situation; a case accepts every answer of ``windows`` and at most those of ``broader``
(:func:`contradictions`).  The reference CA takes its answers from here
(:func:`reference_answer`), so they are written once.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib.resources
import tomllib
from collections.abc import Iterable, Mapping

from conformance.model import outcomes

__all__ = ["Confidence", "Connection", "Situation", "Answer", "LedgerError", "load_ledger", "shipped_ledger",
           "reference_answer", "contradictions", "ledger_hash", "markdown_table"]


class LedgerError(ValueError):
    """A ledger entry that cannot be used, in one line."""


class Confidence(enum.Enum):
    CONFIRMED = "CONFIRMED"  # a Windows-validated test, a capture, a product-behaviour note
    INFERRED = "INFERRED"  # reasoned from confirmed facts or normative text
    UNKNOWN = "UNKNOWN"  # no source says what Windows does; every documented answer is listed


class Connection(enum.Enum):
    STAYS = "stays"
    DROPS = "drops"
    UNKNOWN = "unknown"

    @property
    def drops(self) -> bool | None:
        return {Connection.STAYS: False, Connection.DROPS: True}.get(self)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Situation:
    id: str
    what: str
    windows: tuple[str, ...]
    connection: Connection
    confidence: Confidence
    sources: tuple[str, ...]
    broader: tuple[str, ...] = ()
    broader_why: str = ""
    note: str = ""
    samba: str = ""  # how Samba's DCE/RPC server answers where it differs from Windows, and the source
    reference: str
    reference_connection: Connection

    @property
    def layer(self) -> str:
        """rpc, dcom or wcce: the first part of the ID."""
        return self.id.split("/", 1)[0]

    def is_windows(self, outcome: str) -> bool:
        return outcome in self.windows


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """The reference CA's answer to a situation, parsed: ``kind`` is ``accept``, ``drop``,
    ``fault``, ``hresult``, ``disposition``, ``bind_nak`` or ``reject`` (``code`` its number),
    and whether the connection is then closed."""

    kind: str
    code: int | None
    drops: bool | None


_FIELDS = {"id", "what", "windows", "connection", "confidence", "sources", "broader", "broader_why", "note",
           "samba", "reference", "reference_connection"}


def _outcomes(where: str, key: str, values: object) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise LedgerError(f"{where}: {key} must be a non-empty list of outcomes")
    try:
        parsed = outcomes.parse_expectation({"any": values})
    except ValueError as exc:
        raise LedgerError(f"{where}: {key}: {exc}") from None
    return parsed


def _situation(entry: Mapping) -> Situation:
    where = f"ledger situation {entry.get('id', '?')}"
    unknown = set(entry) - _FIELDS
    if unknown:
        raise LedgerError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        situation = Situation(
            id=entry["id"], what=entry["what"], windows=_outcomes(where, "windows", entry.get("windows")),
            connection=Connection(entry["connection"]), confidence=Confidence(entry["confidence"]),
            sources=tuple(entry["sources"]),
            broader=_outcomes(where, "broader", entry["broader"]) if "broader" in entry else (),
            broader_why=entry.get("broader_why", ""), note=entry.get("note", ""), samba=entry.get("samba", ""),
            reference=_outcomes(where, "reference", [entry["reference"]])[0],
            reference_connection=Connection(entry["reference_connection"]))
    except KeyError as exc:
        raise LedgerError(f"{where}: {exc.args[0]} is required") from None
    except ValueError as exc:
        raise LedgerError(f"{where}: {exc}") from None
    if situation.layer not in ("rpc", "dcom", "wcce"):
        raise LedgerError(f"{where}: the ID starts with rpc/, dcom/ or wcce/")
    if not situation.sources:
        raise LedgerError(f"{where}: every answer needs a source")
    if situation.broader and not situation.broader_why:
        raise LedgerError(f"{where}: broader answers need broader_why")
    if set(situation.broader) & set(situation.windows):
        raise LedgerError(f"{where}: an answer is both windows and broader")
    if situation.reference not in situation.windows + situation.broader:
        raise LedgerError(f"{where}: the reference CA's answer {situation.reference!r} is neither Windows' "
                          f"nor an accepted broader one")
    if situation.confidence is Confidence.CONFIRMED and (
            situation.reference not in situation.windows
            or situation.reference_connection is not situation.connection):
        raise LedgerError(f"{where}: CONFIRMED: the reference CA must answer as Windows does "
                          f"({list(situation.windows)}, connection {situation.connection.value})")
    return situation


def _text() -> str:
    return importlib.resources.files("conformance.model").joinpath("ledger.toml").read_text("utf-8")


def ledger_hash() -> str:
    import hashlib

    return hashlib.sha256(_text().encode()).hexdigest()[:16]


def load_ledger(text: str | None = None) -> dict[str, Situation]:
    try:
        data = tomllib.loads(_text() if text is None else text)
    except tomllib.TOMLDecodeError as exc:
        raise LedgerError(f"ledger is not valid TOML: {exc}") from None
    unknown = set(data) - {"source", "situation"}
    if unknown:
        raise LedgerError(f"ledger: unknown section(s) {', '.join(sorted(unknown))}")
    ledger: dict[str, Situation] = {}
    for entry in data.get("situation", []):
        situation = _situation(entry)
        if situation.id in ledger:
            raise LedgerError(f"ledger situation {situation.id} defined twice")
        ledger[situation.id] = situation
    return ledger


@functools.cache
def shipped_ledger() -> Mapping[str, Situation]:
    return load_ledger()


def reference_answer(situation_id: str) -> Answer:
    """The reference CA's answer to ``situation_id`` (a KeyError names a situation the ledger lacks)."""
    situation = shipped_ledger()[situation_id]
    text = situation.reference.removeprefix("activation ")
    kind, _, code = text.partition(" ")
    return Answer(kind=kind, code=int(code, 0) if code else None, drops=situation.reference_connection.drops)


def contradictions(situation: Situation, expect: Iterable[str], connection_drops: bool | None) -> list[str]:
    """How a case's expectation contradicts its situation: a Windows answer it would FAIL,
    an answer it accepts that the ledger does not, or the opposite connection rule."""
    expect = tuple(expect)
    problems = [f"refuses Windows' answer {answer!r} ({situation.confidence.value})"
                for answer in situation.windows if answer not in expect]
    problems += [f"accepts {answer!r}, which the ledger lists neither as Windows' answer nor as broader"
                 for answer in expect if answer not in situation.windows + situation.broader]
    wanted = situation.connection.drops
    if connection_drops is not None and wanted is not None and connection_drops != wanted:
        problems.append(f"says the connection {'drops' if connection_drops else 'stays'}; on Windows it "
                        f"{situation.connection.value}")
    return problems


def markdown_table(ledger: Mapping[str, Situation] | None = None) -> str:
    """The ledger as the README shows it (tests/unit/model/test_ledger.py keeps them equal)."""
    ledger = shipped_ledger() if ledger is None else ledger
    rows = ["| Situation | Windows answers | Connection | Confidence | Reference CA |",
            "| --- | --- | --- | --- | --- |"]
    for s in ledger.values():
        reference = s.reference if s.reference_connection is s.connection or s.reference_connection is \
            Connection.UNKNOWN else f"{s.reference} ({s.reference_connection.value})"
        rows.append(f"| `{s.id}` | {' / '.join(s.windows)} | {s.connection.value} | {s.confidence.value} | "
                    f"{reference}{' (Samba: ' + s.samba.split(':')[0] + ')' if s.samba else ''} |")
    return "\n".join(rows)
