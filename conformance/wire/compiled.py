"""Struct codecs compiled from scapy's field lists (sans-IO).

A layer's leading fixed-size fields — scapy's declaration, read once — become one
``struct.Struct`` per run of same-endian fields, so a hot path packs and unpacks them in a
call instead of building a scapy packet: the layout stays declared once, in scapy, and
``tests/unit/wire/test_compiled.py`` holds the codecs to scapy's own bytes.

What compiles: byte and integer fields (their ``fmt``), fixed-length byte strings
(``StrFixedLenField``), UUIDs (``UUIDField``, in the byte order it or the PDU says), scapy's
endianness wrapper (``EField``: the PDU's endianness chosen at compile time), runs of bit
fields that fill whole bytes (``BitField``, ``BitEnumField``, ``FlagsField``; most significant
first, as scapy packs them), and ``MultipleTypeField`` whose alternatives all have the
default's layout.  The
fixed part ends at the first field of any other kind (a conditional, a trailer, a length-
prefixed value): that part stays the caller's.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections.abc import Mapping
from typing import Any

import uuid

from scapy.fields import (
    ConditionalField, Field, FieldLenField, MultipleTypeField, StrFixedLenField, TrailerField, UUIDField, _BitField,
)
from scapy.packet import Packet

__all__ = ["Layout", "layout", "CompileError"]


class CompileError(TypeError):
    """A field the compiler does not handle in a place it must (a bug of the caller's choice
    of layer, not of the input)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Segment:
    codec: struct.Struct
    names: tuple[str, ...]  # one per struct item; a bit group packs as one item
    bits: tuple[tuple[tuple[str, int], ...] | str | None, ...]  # per item: ((name, width), ...) of a
    # bit group; "uuid-le"/"uuid-be" a UUID; "bytes" a fixed-length string; None an integer


@dataclasses.dataclass(frozen=True, slots=True)
class Layout:
    """The fixed-size head of one scapy layer, in one endianness: ``pack`` and ``unpack`` are
    Python functions generated from the field list (one struct call a run of same-endian
    fields, the values unrolled)."""

    layer: str
    little_endian: bool
    fields: tuple[str, ...]  # the scapy field names, in wire order
    defaults: Mapping[str, Any]
    size: int
    _pack: Any = dataclasses.field(repr=False, compare=False)
    _unpack: Any = dataclasses.field(repr=False, compare=False)

    def pack(self, values: Mapping[str, Any]) -> bytes:
        """The head's bytes: ``values`` over the declared defaults (integers or what ``int()``
        takes, ``uuid.UUID`` for UUIDs, bytes for strings)."""
        return self._pack(values)

    def unpack(self, data: bytes, offset: int = 0) -> dict[str, Any]:
        """The head's field values from ``data[offset:]``, in wire order (struct.error when it
        is short)."""
        return self._unpack(data, offset)


def _to_wire(kind: str, value: Any) -> bytes:
    if kind == "bytes":
        return bytes(value) if not isinstance(value, int) else b""
    value = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return value.bytes_le if kind == "uuid-le" else value.bytes


def _generate(segments: list[_Segment], fields: list[str], defaults: Mapping[str, Any]):
    """Source of ``pack(values)`` and ``unpack(data, offset)`` for these segments, compiled."""
    index = {name: k for k, name in enumerate(fields)}
    pack = ["def pack(values):", "    get = values.get"]
    for name, k in index.items():
        pack.append(f"    x{k} = get({name!r})")
        pack.append(f"    x{k} = D[{name!r}] if x{k} is None else x{k}")
    packed, unpack, result = [], ["def unpack(data, offset=0):"], []
    for n, segment in enumerate(segments):
        items, names = [], []
        for j, (name, kind) in enumerate(zip(segment.names, segment.bits)):
            var = f"v{n}_{j}"
            names.append(var)
            if kind is None:
                items.append(f"int(x{index[name]})")
                result.append((name, var))
            elif isinstance(kind, str):
                items.append(f"W({kind!r}, x{index[name]})")
                result.append((name, var if kind == "bytes" else
                               f"UUID(bytes_le={var})" if kind == "uuid-le" else f"UUID(bytes={var})"))
            else:
                shift, parts = sum(width for _, width in kind), []
                for bit_name, width in kind:
                    shift -= width
                    parts.append(f"((int(x{index[bit_name]}) & {(1 << width) - 1}) << {shift})")
                    result.append((bit_name, f"({var} >> {shift}) & {(1 << width) - 1}"))
                items.append(" | ".join(parts))
        packed.append(f"S{n}.pack({', '.join(items)})")
        unpack.append(f"    {', '.join(names)}, = S{n}.unpack_from(data, offset)")
        unpack.append(f"    offset += {segment.codec.size}")
    pack.append(f"    return b''.join(({', '.join(packed)},))" if packed else "    return b''")
    unpack.append("    return {" + ", ".join(f"{name!r}: {expr}" for name, expr in result) + "}")
    scope = {f"S{n}": segment.codec for n, segment in enumerate(segments)}
    scope.update(D=dict(defaults), W=_to_wire, UUID=uuid.UUID)
    exec(compile("\n".join(pack + unpack), "<compiled layout>", "exec"), scope)  # noqa: S102 - our own source
    return scope["pack"], scope["unpack"]


def _leaf(field: Field, little_endian: bool) -> tuple[Field, str | None, str | None]:
    """The field that lays out the bytes, its struct code with endianness (None: a bit field)
    and what its bytes are when not an integer ("uuid-le", "uuid-be", "bytes"); CompileError
    for a field that is not fixed-size."""
    if isinstance(field, MultipleTypeField):
        shapes = {_shape(f, little_endian) for f in [alt[0] for alt in field.flds] + [field.dflt]}
        if len(shapes) != 1:
            raise CompileError(f"{field.name}: alternatives of different layouts")
        return _leaf(field.dflt, little_endian)
    inner = getattr(field, "fld", None)
    wrapped = type(field).__name__ in ("EField", "_EField") and inner is not None
    leaf = inner if wrapped else field
    if isinstance(leaf, UUIDField):
        if wrapped:
            order = "le" if little_endian else "be"
        elif leaf.uuid_fmt in (UUIDField.FORMAT_LE, UUIDField.FORMAT_BE):
            order = "le" if leaf.uuid_fmt == UUIDField.FORMAT_LE else "be"
        else:
            raise CompileError(f"{leaf.name}: a UUID in reversed byte order")
        return leaf, "=16s", f"uuid-{order}"
    if type(leaf) is StrFixedLenField and isinstance(getattr(leaf, "sz", None), int):
        return leaf, f"={leaf.sz}s", "bytes"
    if isinstance(leaf, _BitField):
        return leaf, None, None
    return leaf, _code(leaf, ("<" if little_endian else ">") if wrapped else None), None


def _plain(field: Field) -> bool:
    """Whether scapy packs ``field`` with its ``fmt`` and nothing else (Field's own add/get; a
    length field computes its value only when given none — the codec's caller gives it)."""
    kind = type(field)
    return (kind.addfield is Field.addfield and kind.getfield is Field.getfield and kind.m2i is Field.m2i
            and (kind.i2m is Field.i2m or isinstance(field, FieldLenField)))


def _code(field: Field, endian: str | None) -> str:
    fmt = getattr(field, "fmt", None)
    if not isinstance(field, Field) or fmt is None or isinstance(field, _BitField) or not _plain(field):
        raise CompileError(f"{getattr(field, 'name', field)}: not a fixed-size scalar")
    code = fmt.lstrip("<>!=@")
    if code not in ("B", "b", "H", "h", "I", "i", "Q", "q"):
        raise CompileError(f"{field.name}: struct code {fmt!r} is not a fixed-size integer")
    if code in ("B", "b"):
        return "=" + code  # one byte: any endianness
    prefix = endian or ("<" if fmt[:1] == "<" else ">")  # "!" and ">" are network order; "" is too in scapy
    return prefix + code


def _shape(field: Field, little_endian: bool) -> tuple:
    leaf, code, kind = _leaf(field, little_endian)
    return ("bits", abs(leaf.size)) if code is None else ("scalar", code, kind)


def _fixed_run(cls: type[Packet], start: str | None):
    fields = list(cls.fields_desc)
    if start is not None:
        names = [f.name for f in fields]
        if start not in names:
            raise CompileError(f"{cls.__name__}: no field {start!r}")
        fields = fields[names.index(start):]
    for field in fields:
        if isinstance(field, (ConditionalField, TrailerField)):
            return
        yield field


@functools.cache
def layout(cls: type[Packet], *, little_endian: bool = True, start: str | None = None) -> Layout:
    """The compiled head of ``cls``: its leading fields that compile (from ``start`` when
    given, e.g. the fixed run after a variable-length field)."""
    segments: list[_Segment] = []
    codes: list[str] = []
    names: list[str] = []
    bits: list = []
    pending_bits: list[tuple[str, int]] = []
    little_bits = wide_little_bits = False  # a field of the bit group is little-endian; one says the group is wider
    defaults: dict[str, int] = {}
    fields: list[str] = []
    endian_of_run: str | None = None

    def close_run() -> None:
        nonlocal codes, names, bits, endian_of_run
        if codes:
            segments.append(_Segment(struct.Struct((endian_of_run or "<") + "".join(codes)), tuple(names), tuple(bits)))
        codes, names, bits, endian_of_run = [], [], [], None

    def add(code: str, name: str, kind) -> None:  # kind: a bit group, a non-integer kind, or None
        nonlocal endian_of_run
        endian, letter = code[0], code[1:]
        if endian != "=" and endian_of_run not in (None, endian):
            close_run()
        if endian != "=":
            endian_of_run = endian
        codes.append(letter)
        names.append(name)
        bits.append(kind)

    for field in _fixed_run(cls, start):
        try:
            leaf, code, kind = _leaf(field, little_endian)
        except CompileError:
            break
        if code is None:
            pending_bits.append((leaf.name, leaf.size))
            # scapy reverses a little-endian group's octets (tot_size/end_tot_size say how many):
            # only a group of one octet, so declared, is the same either way
            if getattr(leaf, "rev", False):
                little_bits = True
                wide_little_bits = wide_little_bits or leaf.tot_size > 1 or leaf.end_tot_size > 1
            width = sum(w for _, w in pending_bits)
            if width % 8 == 0:
                code = {1: "=B", 2: ">H", 4: ">I", 8: ">Q"}.get(width // 8)
                if code is None:
                    raise CompileError(f"{leaf.name}: a bit group of {width} bits")
                if wide_little_bits or (little_bits and width > 8):
                    raise CompileError(f"{leaf.name}: little-endian bit groups wider than an octet are not compiled")
                little_bits = wide_little_bits = False
                add(code, pending_bits[0][0], tuple(pending_bits))
                pending_bits = []
        else:
            if pending_bits:
                raise CompileError(f"{leaf.name}: follows bits that do not fill a byte")
            add(code, leaf.name, kind)
        default = field.default if not isinstance(field, MultipleTypeField) else field.dflt.default
        if kind is not None:
            defaults[leaf.name] = default if isinstance(default, (bytes, uuid.UUID)) else (
                b"" if kind == "bytes" else uuid.UUID(int=0))
        else:
            defaults[leaf.name] = int(default) if default is not None else 0
        fields.append(leaf.name)
    if pending_bits:
        raise CompileError(f"{cls.__name__}: bits that do not fill a byte")
    close_run()
    packer, unpacker = _generate(segments, fields, defaults)
    return Layout(layer=cls.__name__, little_endian=little_endian, fields=tuple(fields), defaults=defaults,
                  size=sum(s.codec.size for s in segments), _pack=packer, _unpack=unpacker)
