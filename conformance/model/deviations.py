"""Deviations: known, accepted failures of a target, each with a reason and an expiry.

``[[deviation]] case = "wcce/2.1/..." (or a prefix ending in "*"), reason = "...",
expires = 2027-06-30``.  A failing case covered by a deviation that has not expired
is shown as a deviation; once it expires the case is a FAIL again.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

from conformance.model.tomlfile import read_toml

__all__ = ["DeviationError", "Deviation", "load_deviations", "parse_deviations", "find_deviation"]


class DeviationError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Deviation:
    case: str
    reason: str
    expires: datetime.date

    def covers(self, case_id: str) -> bool:
        if self.case.endswith("*"):
            return case_id.startswith(self.case[:-1])
        return case_id == self.case

    def expired(self, today: datetime.date | None = None) -> bool:
        return (today or datetime.date.today()) > self.expires


def load_deviations(path: pathlib.Path) -> list[Deviation]:
    data = read_toml(path, "deviations file", DeviationError)
    unknown = set(data) - {"deviation"}
    if unknown:
        raise DeviationError(f"deviations file {path}: unknown key(s) {', '.join(sorted(unknown))} "
                             f"(entries are [[deviation]] tables)")
    return parse_deviations(data.get("deviation", []), f"{path}: deviation")


def parse_deviations(entries: object, where: str) -> list[Deviation]:
    """``[[deviation]]`` tables (also a target profile's ``[[quirk]]`` tables)."""
    if not isinstance(entries, list):
        raise DeviationError(f"{where}: write each entry as a [[table]] with case, reason and expires")
    out = []
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or set(entry) != {"case", "reason", "expires"}:
            raise DeviationError(f"{where} #{index}: needs exactly case, reason and expires")
        if not isinstance(entry["expires"], datetime.date) or isinstance(entry["expires"], datetime.datetime):
            raise DeviationError(f"{where} #{index}: expires must be a TOML date (2027-06-30)")
        if not str(entry["reason"]).strip():
            raise DeviationError(f"{where} #{index}: reason is empty")
        out.append(Deviation(case=str(entry["case"]), reason=str(entry["reason"]),
                             expires=entry["expires"]))
    return out


def find_deviation(deviations: list[Deviation], case_id: str) -> Deviation | None:
    return next((d for d in deviations if d.covers(case_id)), None)
