"""The requirement catalogue (``conformance/model/requirements.toml``) as typed values.

It is also the home of the wire checks' names: each check verifies exactly one
requirement, the one whose ``checks`` list names it, and takes that requirement's ID
and level from here (:func:`check_requirements`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import tomllib
from collections.abc import Mapping

from conformance.model.verdicts import Level

__all__ = ["Requirement", "CatalogueError", "load_catalogue", "catalogue_hash", "spec_revisions",
           "check_names", "check_requirements", "shipped_catalogue"]


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
    return importlib.resources.files("conformance.model").joinpath("requirements.toml").read_text("utf-8")


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
        for check in req.checks:
            owner = next((r.id for r in catalogue.values() if check in r.checks), None)
            if owner is not None:
                raise CatalogueError(f"check {check} verifies {owner} and {req.id}: a check verifies one requirement")
        if req.id in catalogue:
            raise CatalogueError(f"requirement {req.id} defined twice")
        catalogue[req.id] = req
    return catalogue


def check_names(catalogue: Mapping[str, Requirement]) -> frozenset[str]:
    """Every wire check the catalogue names (the judge implements exactly these)."""
    return frozenset(check for r in catalogue.values() for check in r.checks)


def check_requirements(catalogue: Mapping[str, Requirement]) -> dict[str, Requirement]:
    """Each check's requirement (the one requirement that lists it)."""
    return {check: r for r in catalogue.values() for check in r.checks}


@functools.cache
def shipped_catalogue() -> Mapping[str, Requirement]:
    """The shipped catalogue, read once per process (the checks look their requirement up)."""
    return load_catalogue()
