"""The outcome grammar: how what a target did is written, observed and expected alike.

A case's ``expect`` lists alternatives of these forms (Samba's ``nak_reason=`` /
``fault_status=`` as data); the judge writes what it observed with the same
constructors, so an expected and an observed outcome compare as strings:

    accept                      the call (bind, activation) succeeded
    drop                        the server closed the connection instead of answering
    fault 0x1c01000b            an rpc_fault PDU and its status
    hresult 0x80070005          the method (or activation) returned this HRESULT
    disposition 5               Request/Request2 returned 0 with this pdwDisposition
    disposition 0x80094800      (an HRESULT in pdwDisposition)
    bind_nak 9                  a bind_nak and its provider_reject_reason
    reject 1                    the presentation context was rejected with this reason
    activation <outcome>        the activation step, not the call, ended so

Observed outcomes can also be ones no case expects (``silent``, ``unverifiable
response``, ``ptype N``, ``submit <outcome>`` …): they never match, so the case
FAILs (or is judged INCONCLUSIVE by the judge) with the text as its actual outcome.
"""

from __future__ import annotations

import re

__all__ = ["ACCEPT", "DROP", "SILENT", "UNVERIFIABLE", "fault", "hresult", "disposition", "bind_nak",
           "reject", "ptype", "activation", "step", "parse_expectation", "EXPECTABLE"]

ACCEPT = "accept"
DROP = "drop"
SILENT = "silent"  # nothing came back and the connection stayed open
UNVERIFIABLE = "unverifiable response"  # a response whose protection did not verify

#: The forms a case may expect.
EXPECTABLE = re.compile(r"^(activation )?(accept|drop|(fault|hresult) 0x[0-9a-f]{8}|"
                        r"disposition (0x[0-9a-f]{8}|\d+)|bind_nak \d+|reject \d+)$")


def fault(status: int) -> str:
    return f"fault 0x{status:08x}"


def hresult(code: int) -> str:
    return f"hresult 0x{code:08x}"


def disposition(value: int) -> str:
    """Small dispositions (0-255: issued, pending, denied …) in decimal, HRESULTs in hex."""
    return f"disposition {value}" if value < 0x100 else f"disposition 0x{value:08x}"


def bind_nak(reason: int) -> str:
    return f"bind_nak {reason}"


def reject(reason: int) -> str:
    return f"reject {reason}"


def ptype(number: int | None) -> str:
    return f"ptype {number}"


def activation(outcome: str) -> str:
    """The activation step ended with ``outcome`` (before the case's own call)."""
    return f"activation {outcome}"


def step(name: str, outcome: str) -> str:
    """A named step of a flow ended with ``outcome`` (``submit …``, ``retrieve …``)."""
    return f"{name} {outcome}"


def parse_expectation(raw: object) -> tuple[str, ...]:
    """A case's ``expect``: ``"accept"``, ``"drop"``, or ``{ any = [...] }`` (``deny`` reads
    the same).  Raises ValueError with the reason."""
    if isinstance(raw, str):
        values = [raw]
    elif isinstance(raw, dict) and len(raw) == 1 and set(raw) <= {"any", "deny"} \
            and isinstance(next(iter(raw.values())), list) and next(iter(raw.values())):
        values = list(next(iter(raw.values())))
    else:
        raise ValueError("expect is 'accept', 'drop' or { any = [...] }")
    normalized = []
    for value in values:
        if not isinstance(value, str) or not EXPECTABLE.match(value.strip().lower()):
            raise ValueError(f"expected outcome {value!r} is not a known form")
        normalized.append(_canonical(value.strip().lower()))
    return tuple(normalized)


def _canonical(text: str) -> str:
    """A disposition the way the judge writes it (``disposition 0x00000005`` is ``disposition 5``,
    ``disposition 300`` is ``disposition 0x0000012c``), so an expected form can be observed."""
    prefix, _, rest = text.rpartition("disposition ")
    if not _ or " " in rest:
        return text
    return prefix + disposition(int(rest, 0))
