"""Reading the suite's TOML files (profiles, deviations, cases, CA configuration) with
one-line errors in the caller's error class."""

from __future__ import annotations

import pathlib
import tomllib
from typing import Any

__all__ = ["read_toml", "read_toml_text"]


def read_toml_text(path: pathlib.Path, what: str, error: type[Exception]) -> tuple[str, dict[str, Any]]:
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from None


def read_toml(path: pathlib.Path, what: str, error: type[Exception]) -> dict[str, Any]:
    return read_toml_text(path, what, error)[1]
