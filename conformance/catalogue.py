"""The requirement catalogue (``conformance/requirements.toml``) as typed values."""

from __future__ import annotations

import dataclasses
import importlib.resources
import tomllib

from conformance.wire.checks import CHECKS, Level

__all__ = ["Requirement", "CatalogueError", "load_catalogue", "catalogue_hash", "spec_revisions"]


class CatalogueError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    id: str
    section: str
    level: Level
    binds: str
    text: str
    checks: tuple[str, ...]


def _text() -> str:
    return importlib.resources.files("conformance").joinpath("requirements.toml").read_text("utf-8")


def catalogue_hash() -> str:
    import hashlib

    return hashlib.sha256(_text().encode()).hexdigest()[:16]


def spec_revisions() -> dict[str, str]:
    return dict(tomllib.loads(_text()).get("spec", {}))


def load_catalogue() -> dict[str, Requirement]:
    raw = tomllib.loads(_text())
    catalogue: dict[str, Requirement] = {}
    for entry in raw.get("requirement", []):
        try:
            req = Requirement(id=entry["id"], section=entry["section"], level=Level(entry["level"]),
                              binds=entry["binds"], text=entry["text"],
                              checks=tuple(entry.get("checks", ())))
        except (KeyError, ValueError) as exc:
            raise CatalogueError(f"requirement {entry.get('id', '?')}: {exc}") from None
        if req.binds not in ("client", "server", "both"):
            raise CatalogueError(f"requirement {req.id}: binds must be client, server or both")
        unknown = set(req.checks) - set(CHECKS)
        if unknown:
            raise CatalogueError(f"requirement {req.id}: unknown check(s) {sorted(unknown)}")
        if req.id in catalogue:
            raise CatalogueError(f"requirement {req.id} defined twice")
        catalogue[req.id] = req
    return catalogue
