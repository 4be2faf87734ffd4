"""Fragment sequences of one request, then broken: flags, order, a missing first
or last fragment, another call id, an interleaved call, alloc_hint lies (sans-IO)."""

from __future__ import annotations

import dataclasses

from conformance.testkit.fuzz.choose import Chooser, Kind, pick
from conformance.testkit.fuzz.pdu import simple_ping_stub
from conformance.wire.rpc import PfcFlag

__all__ = ["Fragment", "FragmentInput", "fragment_input", "complex_ping_stub", "plain_fragments",
           "alloc_hints"]



@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Fragment:
    """One request fragment: ``call`` is added to the sequence's call id; ``alloc_hint``
    None means honest (the bytes still to come)."""

    piece: bytes
    flags: int
    call: int = 0
    alloc_hint: int | None = None
    opnum: int | None = None  # None: the sequence's opnum


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FragmentInput:
    label: str
    sealed: bool
    opnum: int
    fragments: tuple[Fragment, ...]
    honest: bool  # the sequence is a correct one: it must be answered with a response
    kind: Kind = Kind.FRAGMENTS


_FRAGMENT_OPS = ("shuffle", "drop-first", "drop-last", "drop-middle", "duplicate", "flags",
                 "other-call", "interleave", "alloc-hint", "opnum", "first-again")


def complex_ping_stub(oids: int) -> bytes:
    """IObjectExporter::ComplexPing with ``oids`` OIDs to add: a stub worth fragmenting."""
    from scapy.layers.msrpce.raw.ms_dcom import ComplexPing_Request

    return bytes(ComplexPing_Request(pSetId=0, SequenceNum=1, AddToSet=list(range(1, oids + 1)),
                                     DelFromSet=[], ndr64=False))


def fragment_input(choose: Chooser) -> FragmentInput:
    sealed = choose.integer(0, 19) == 0  # costs an NTLM exchange
    # unauthenticated, only SimplePing is answered with a response (ComplexPing faults)
    if not sealed or choose.integer(0, 1):
        opnum, stub = 1, simple_ping_stub()
    else:
        opnum, stub = 2, complex_ping_stub(choose.integer(1, 64))
    count = choose.integer(1, min(6, len(stub)))
    cuts = sorted({choose.integer(1, len(stub) - 1) for _ in range(count - 1)}) if len(stub) > 1 else []
    bounds = [0, *cuts, len(stub)]
    pieces = [stub[a:b] for a, b in zip(bounds, bounds[1:])]
    frags = [Fragment(piece=p, flags=(PfcFlag.FIRST_FRAG if i == 0 else 0)
                      | (PfcFlag.LAST_FRAG if i == len(pieces) - 1 else 0))
             for i, p in enumerate(pieces)]
    ops = [pick(choose, _FRAGMENT_OPS) for _ in range(choose.integer(0, 2))]
    for op in ops:
        frags = _break_sequence(choose, op, frags)
    return FragmentInput(label=f"fragments/{'sealed' if sealed else 'plain'}/{len(pieces)}/"
                         + ("+".join(ops) or "honest"),
                         sealed=sealed, opnum=opnum, fragments=tuple(frags), honest=not ops)


def _changed(frags: list[Fragment], at: int, **changes) -> list[Fragment]:
    return frags[:at] + [dataclasses.replace(frags[at], **changes)] + frags[at + 1:]


def _break_sequence(choose: Chooser, op: str, frags: list[Fragment]) -> list[Fragment]:
    if not frags:
        return frags
    at = choose.integer(0, len(frags) - 1)
    if op == "shuffle":
        order = sorted(range(len(frags)), key=lambda _: choose.integer(0, 1000))
        return [frags[i] for i in order]
    if op == "drop-first":
        return frags[1:]
    if op == "drop-last":
        return frags[:-1]
    if op == "drop-middle":
        return frags[:at] + frags[at + 1:] if 0 < at < len(frags) - 1 else frags
    if op == "duplicate":
        return frags[:at + 1] + [frags[at]] + frags[at + 1:]
    if op == "flags":
        return _changed(frags, at, flags=choose.integer(0, 255) & ~PfcFlag.OBJECT_UUID)
    if op == "other-call":
        return _changed(frags, at, call=choose.integer(1, 3))
    if op == "interleave":
        intruder = Fragment(piece=simple_ping_stub(), flags=PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG,
                            call=choose.integer(0, 2), opnum=1)
        return frags[:at] + [intruder] + frags[at:]
    if op == "alloc-hint":
        hint = pick(choose, (0, 1, 0xFFFFFFFF, 0x7FFFFFFF, choose.integer(0, 1 << 20)))
        return _changed(frags, at, alloc_hint=hint)
    if op == "opnum":
        return _changed(frags, at, opnum=choose.integer(0, 200))
    if op == "first-again":
        return _changed(frags, at, flags=frags[at].flags | PfcFlag.FIRST_FRAG)
    raise ValueError(op)




def plain_fragments(item: FragmentInput, *, call_id: int = 2, cont_id: int = 0) -> list[bytes]:
    """The request PDUs of an unauthenticated sequence (the sealed ones are built by a
    connection that holds the keys, from the same fields)."""
    from scapy.layers.dcerpc import DceRpc5, DceRpc5Request
    from scapy.packet import Raw

    return [bytes(DceRpc5(call_id=call_id + frag.call, pfc_flags=int(frag.flags)) / DceRpc5Request(
        alloc_hint=hint, cont_id=cont_id, opnum=item.opnum if frag.opnum is None else frag.opnum)
        / Raw(frag.piece)) for frag, hint in zip(item.fragments, alloc_hints(item))]


def alloc_hints(item: FragmentInput) -> list[int]:
    """Each fragment's alloc_hint: its lie, or honestly the stub bytes from it to the end."""
    remaining = [sum(len(f.piece) for f in item.fragments[i:]) for i in range(len(item.fragments))]
    return [r if f.alloc_hint is None else f.alloc_hint for f, r in zip(item.fragments, remaining)]
