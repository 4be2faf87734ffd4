"""Where the shipped case tables and example profiles are: ``cases/`` and ``examples/`` at
the top of a checkout (editable installs, the README's set-up commands), or
``conformance/_shipped/`` inside an installed wheel (setup.py copies them there).  Standard
library only."""

from __future__ import annotations

import pathlib

__all__ = ["DATA_ROOT", "CASES_DIR", "EXAMPLES_DIR", "installed"]

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
_CHECKOUT = _PACKAGE.parent


def installed() -> bool:
    """True when running from a wheel (no checkout around the package)."""
    return not (_CHECKOUT / "cases").is_dir() and (_PACKAGE / "_shipped" / "cases").is_dir()


DATA_ROOT = _PACKAGE / "_shipped" if installed() else _CHECKOUT
CASES_DIR = DATA_ROOT / "cases"
EXAMPLES_DIR = DATA_ROOT / "examples"
