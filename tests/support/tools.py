"""Locating external tools the interop tests run (certipy, tshark).

Outside CI a missing tool skips its tests with the reason; under CI (``CI`` set)
it fails them, because .ci/run installs every tool and a skip would hide that.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from conformance.commands.probe_client import certipy_path


def require(path: str | None, what: str, install_hint: str) -> str:
    if path and pathlib.Path(path).exists():
        return path
    message = f"{what} not found ({install_hint})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def certipy() -> str:
    return require(certipy_path(), "certipy", "bash .ci/install creates .venv-certipy")


def tshark() -> str:
    return require(shutil.which("tshark"), "tshark", "apt-get install tshark")
