"""Loopback addresses for test servers: one fresh 127.x.y.z per CA instance.

Each reference CA gets its own address, so all of them can use the well-known
activation port 135 (certipy cannot use another) without colliding, also across
pytest-xdist workers (the second and third octets come from the process id).
"""

from __future__ import annotations

import itertools
import os

_counter = itertools.count(1)


def fresh_loopback() -> str:
    pid = os.getpid()
    n = next(_counter)
    # .200-.254 of the same /24 belong to conformance.targets.embedded's CAs
    return f"127.{(pid >> 8) & 0xFF}.{pid & 0xFF}.{(n % 199) + 1}"


def can_bind_privileged() -> bool:
    return os.geteuid() == 0
