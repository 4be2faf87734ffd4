"""What every fuzz generator shares: the kinds of input, the ports, and the
:class:`Chooser` that one generator draws from, whether hypothesis drives it
(it then shrinks) or a seeded ``random.Random`` does (the long run)."""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from typing import Protocol

__all__ = ["Kind", "Port", "Chooser", "RandomChooser", "DrawChooser", "pick", "weighted"]


class Kind(enum.Enum):
    RAW = "raw"
    PDU = "pdu"
    FRAGMENTS = "fragments"
    NDR = "ndr"


class Port(enum.Enum):
    ACTIVATION = "activation"
    EXPORTER = "exporter"

class Chooser(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...
    def binary(self, lo: int, hi: int) -> bytes: ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self._rng.randint(lo, hi)

    def binary(self, lo: int, hi: int) -> bytes:
        return self._rng.randbytes(self._rng.randint(lo, hi))


class DrawChooser:
    def __init__(self, draw) -> None:
        from hypothesis import strategies as st

        self._draw, self._st = draw, st

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(self._st.integers(lo, hi))

    def binary(self, lo: int, hi: int) -> bytes:
        return self._draw(self._st.binary(min_size=lo, max_size=hi))


def pick(choose: Chooser, items: Sequence):
    return items[choose.integer(0, len(items) - 1)]


def weighted(choose: Chooser, table: Sequence[tuple[object, int]]):
    point = choose.integer(0, sum(w for _, w in table) - 1)
    for item, weight in table:
        if point < weight:
            return item
        point -= weight
    raise AssertionError("unreachable")

