"""NDR 2.0 codecs compiled from scapy's NDR field lists (sans-IO).

scapy declares each stub once (``conformance.wire.wcce``, ``ms_dcom``); dissecting and
building through its packets costs a millisecond or more a stub, most of it packet
objects.  :func:`codec` walks a declaration once and returns a codec of plain functions
that read into, and write from, :class:`NdrRecord` — field values as scapy's ``valueof``
gives them — in one byte order, aligned from the stream's start as scapy aligns
([C706] 14.2.2), with embedded pointers' referents deferred to the end of the outermost
constructed parameter as scapy defers them ([C706] 14.3.12.3).

It compiles the kinds the WCCE methods, the ORPC headers and the activation calls use:
integers (``_NDRField``, the 3264 and enum integers of NDR 2.0), fixed byte strings,
nested structures (one ending in a conformant byte array with its count before it, as
MInterfacePointer), and unique pointers (top-level or embedded) to a conformant varying
UTF-16 string, a conformant byte array sized by a field of its structure, or a structure
that compiles; a pointer to anything else compiles as "NULL or not mine".  A declaration
with any other kind has no codec (``codec`` returns None).

Where scapy is not NDR, the codec follows scapy, so that its bytes are scapy's: UTF-16
units are little-endian in either byte order, and ORPCTHIS.flags is an NDR 2.0 enum (two
octets and two of padding).  One exception: a string's counts are its UTF-16 units, as
NDR has them; scapy counts its UTF-8 bytes, which differ for non-ASCII text.

Reading accepts only what has one meaning: a string whose maximum and actual counts agree,
with offset 0, one NUL at its end and valid UTF-16; an array whose conformance count is its
size field.  Anything else — and any stub shorter than its structure — :meth:`NdrCodec.read`
leaves to scapy (returns None), so the verdict on odd stubs stays scapy's; what it reads it
reads as scapy does (``tests/unit/wire/test_ndrcodec.py``).  Bytes after the structure are
returned to the caller.  Writing writes what scapy's packet of the same values builds:
referent ID 0x00020000 for every non-NULL pointer, zero padding.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from scapy.fields import StrFixedLenField
from scapy.layers.dcerpc import (
    NDRConfStrLenField,
    NDRConfVarStrNullFieldUtf16,
    NDRFullEmbPointerField,
    NDRFullPointerField,
    NDRInt3264EnumField,
    NDRInt3264Field,
    NDRPacket,
    NDRPacketField,
    NDRRefEmbPointerField,
    _NDRField,
    _VirtualField,
)

__all__ = ["NdrRecord", "NdrCodec", "codec", "record"]

_REFERENT = 0x00020000  # scapy's referent ID for a pointer built from a plain value


class NdrRecord:
    """One NDR structure's values: reads like the scapy packet it stands for (``rec.dwFlags``,
    ``rec.valueof("pwszAuthority")``); nested structures are records, strings UTF-8 bytes
    without their NUL (scapy's ``valueof``), NULL pointers None."""

    __slots__ = ("cls", "values")

    def __init__(self, cls: type[NDRPacket], values: dict[str, Any]) -> None:
        self.cls = cls
        self.values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"{self.cls.__name__} has no field {name!r}") from None

    def valueof(self, name: str) -> Any:
        value: Any = self
        for part in name.split("."):
            value = value.values[part]
        return value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NdrRecord) and (self.cls, self.values) == (other.cls, other.values)

    def __repr__(self) -> str:
        return f"NdrRecord({self.cls.__name__}, {self.values!r})"


def record(cls: type[NDRPacket], **values: Any) -> NdrRecord:
    """A record of ``cls`` to write; fields not given take their declared default."""
    return NdrRecord(cls, values)


class _Refuse(Exception):
    """This stub is not one the codec reads unambiguously: scapy decides."""


# A reader: (buf, pos, deferred, owner) -> (value, pos), ``owner`` the values read so far of the
# structure it is a field of (a size_is reads them); ``deferred`` collects (owner, field name,
# reader) of embedded pointers' referents.  A writer: (out, value, deferred) -> None; ``deferred``
# collects the writers of the referents.
Reader = Callable[[bytes, int, list, dict], tuple[Any, int]]
Writer = Callable[[bytearray, Any, list], None]


class NdrCodec:
    """Read and write one NDR structure (a stub's parameters) in one byte order."""

    __slots__ = ("cls", "little_endian", "_read", "_write")

    def __init__(self, cls: type[NDRPacket], little_endian: bool, read: Reader, write: Writer) -> None:
        self.cls = cls
        self.little_endian = little_endian
        self._read = read
        self._write = write

    def read(self, stub: bytes) -> tuple[NdrRecord, bytes] | None:
        """The record and the bytes after it, or None: scapy's to read."""
        try:
            value, pos = self._read(stub, 0, [], {})
        except (_Refuse, struct.error, UnicodeDecodeError):
            return None
        return value, stub[pos:]

    def write(self, rec: NdrRecord) -> bytes:
        out = bytearray()
        self._write(out, rec, [])
        return bytes(out)


@functools.cache
def codec(cls: type[NDRPacket], little_endian: bool = True) -> NdrCodec | None:
    """The compiled codec of ``cls``, or None when its fields include a kind not compiled."""
    try:
        read, write = _struct(cls, "<" if little_endian else ">", outermost=True)
    except _Unsupported:
        return None
    return NdrCodec(cls, little_endian, read, write)


class _Unsupported(Exception):
    pass


def _read_u32(unpack_from, buf, pos: int) -> tuple[int, int]:
    """A 4-aligned unsigned long (a count, a referent ID) and the position after it."""
    pos += -pos % 4
    if pos + 4 > len(buf):
        raise _Refuse
    return unpack_from(buf, pos)[0], pos + 4


def _write_u32(out: bytearray, pack, value: int) -> None:
    out += b"\0" * (-len(out) % 4)
    out += pack(value)


def _scalar(fmt: str, align: int, default: Any) -> tuple[Reader, Writer]:
    codec_ = struct.Struct(fmt)
    size, unpack_from, pack = codec_.size, codec_.unpack_from, codec_.pack

    def read(buf, pos, deferred, owner):
        pos += -pos % align
        if pos + size > len(buf):
            raise _Refuse
        return unpack_from(buf, pos)[0], pos + size

    def write(out, value, deferred):
        out += b"\0" * (-len(out) % align)
        out += pack(default if value is None else value)

    return read, write


def _fixed_bytes(length: int, default: bytes) -> tuple[Reader, Writer]:
    def read(buf, pos, deferred, owner):
        if pos + length > len(buf):
            raise _Refuse
        return bytes(buf[pos:pos + length]), pos + length

    def write(out, value, deferred):
        value = default if value is None else value
        out += value[:length].ljust(length, b"\0")

    return read, write


def _utf16_string(e: str) -> tuple[Reader, Writer]:
    """[string] wchar_t*: max_count, offset, actual_count (code units, the NUL counted), units."""
    counts = struct.Struct(e + "III")
    # scapy writes and reads the units little-endian whatever the stream's byte order
    # (StrFieldUtf16 comes first in the field's MRO); NDR would have them in the stream's
    encoding = "utf-16-le"

    def read(buf, pos, deferred, owner):
        pos += -pos % 4
        if pos + 12 > len(buf):
            raise _Refuse
        max_count, offset, actual = counts.unpack_from(buf, pos)
        pos += 12
        end = pos + 2 * actual
        if max_count != actual or offset or not actual or end > len(buf):
            raise _Refuse
        text = buf[pos:end].decode(encoding)  # strict: scapy would replace what does not decode
        if text[-1] != "\0" or "\0" in text[:-1]:
            raise _Refuse
        return text[:-1].encode("utf-8"), end

    def write(out, value, deferred):
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        units = (value + "\0").encode(encoding, errors="replace")
        count = len(units) // 2
        out += b"\0" * (-len(out) % 4)
        out += counts.pack(count, 0, count)
        out += units

    return read, write


def _byte_array(e: str, size_is: Callable[[Any], int]) -> tuple[Reader, Writer]:
    """[size_is(n)] BYTE*: max_count, then n bytes (n read from the enclosing structure)."""
    count = struct.Struct(e + "I")

    def read(buf, pos, deferred, owner):
        max_count, pos = _read_u32(count.unpack_from, buf, pos)
        if max_count != size_is(NdrRecord(NDRPacket, owner)) or pos + max_count > len(buf):
            raise _Refuse
        return bytes(buf[pos:pos + max_count]), pos + max_count

    def write(out, value, deferred):
        _write_u32(out, count.pack, len(value))
        out += value

    return read, write


def _pointer(field: NDRFullPointerField, e: str) -> tuple[Reader, Writer]:
    """A unique pointer: its referent ID, then (top-level) its referent or (embedded) a
    deferred read of it."""
    if isinstance(field, NDRRefEmbPointerField):
        raise _Unsupported
    embedded = isinstance(field, NDRFullEmbPointerField)
    inner = field.fld
    referent = struct.Struct(e + "I")
    name = inner.name
    read_target = write_target = None  # "NULL or not mine"
    if isinstance(inner, NDRConfVarStrNullFieldUtf16):
        read_target, write_target = _utf16_string(e)
    elif isinstance(inner, NDRConfStrLenField) and getattr(inner, "length_from", None):
        read_target, write_target = _byte_array(e, inner.length_from)
    elif isinstance(inner, NDRPacketField):
        try:  # a structure that reads and writes its own deferred referents after itself
            read_target, write_target = _struct_field(inner, e, flushing=True)
        except _Unsupported:
            pass

    def read(buf, pos, deferred, owner):
        ref, pos = _read_u32(referent.unpack_from, buf, pos)
        if not ref:
            return None, pos
        if read_target is None:
            raise _Refuse
        if embedded:  # read into owner[name] after the outermost structure
            deferred.append((owner, name, read_target))
            return None, pos
        return read_target(buf, pos, deferred, owner)

    def write(out, value, deferred):
        if value is None:
            _write_u32(out, referent.pack, 0)
            return
        if write_target is None:
            raise ValueError(f"{inner.name}: the compiled codec writes only NULL here")
        _write_u32(out, referent.pack, _REFERENT)
        if embedded:
            deferred.append(lambda out_: write_target(out_, value, deferred))
        else:
            write_target(out, value, deferred)

    return read, write


def _struct(cls: type[NDRPacket], e: str, *, outermost: bool) -> tuple[Reader, Writer]:
    """A structure's fields in order.  As scapy's NDRConstructedType: the stub itself and each
    structure that is a parameter of it read and write the deferred referents of the embedded
    pointers inside them after themselves; a structure within a structure leaves them to its
    parent."""
    conformant = _conformant_array(cls)
    # (name, reader, writer, sized): sized is (the array's name, scapy's adjust) for a size field
    plan: list[tuple[str, Reader, Writer, tuple | None]] = []
    for field in cls.fields_desc:
        if isinstance(field, _VirtualField):
            continue  # the deported conformance count scapy keeps on the structure: _counted's
        if isinstance(field, NDRPacketField):
            sub_read, sub_write = _struct_field(field, e, flushing=outermost)
            plan.append((field.name, sub_read, sub_write, None))
        elif isinstance(field, NDRFullPointerField):
            plan.append((field.fld.name, *_pointer(field, e), None))
        elif isinstance(field, NDRInt3264EnumField):
            plan.append((field.name, *_scalar(e + "H", 2, field.default or 0), None))
        elif isinstance(field, (NDRInt3264Field, _NDRField)):
            fmt, align = ("I", 4) if isinstance(field, NDRInt3264Field) else (field.FMT, field.ALIGN[0])
            plan.append((field.name, *_scalar(e + fmt, align, field.default or 0),
                         (field.size_of, field.adjust) if field.size_of else None))
        elif conformant is not None and field is conformant:
            plan.append((field.name, *_in_struct_bytes(conformant, cls.ALIGNMENT[0]), None))
        elif type(field) is StrFixedLenField and isinstance(field.length_from(None), int):
            read, write = _fixed_bytes(field.length_from(None), field.default or b"")
            plan.append((field.name, read, write, None))
        else:
            raise _Unsupported(type(field).__name__)
    defaults = {name: _default(cls, name) for name, *_ in plan}
    byte_arrays = {field.fld.name for field in cls.fields_desc
                   if isinstance(field, NDRFullPointerField) and isinstance(field.fld, NDRConfStrLenField)}
    if conformant is not None:
        byte_arrays.add(conformant.name)
    if any(sized and sized[0] not in byte_arrays for *_, sized in plan):
        raise _Unsupported("a size field of something other than a byte array")

    def read(buf, pos, deferred, owner):
        values: dict[str, Any] = {}
        for name, reader, _, _ in plan:
            values[name], pos = reader(buf, pos, deferred, values)
        return NdrRecord(cls, values), pos

    def write(out, rec, deferred):
        values = rec.values if isinstance(rec, NdrRecord) else rec
        for name, _, writer, sized in plan:
            value = values.get(name, defaults[name])
            if sized and value is None:  # a size field: the size of its array
                array, adjust = sized
                value = adjust(None, _length(values.get(array)))
            writer(out, value, deferred)

    if outermost:
        return _flushing(read), _flushing_w(write)
    return read, write


def _struct_field(field: NDRPacketField, e: str, *, flushing: bool) -> tuple[Reader, Writer]:
    """A structure as a field: its conformance count first when it ends in a conformant array
    ("the size information precedes the structure", [C706] 14.3.7.1), then its alignment and
    fields."""
    cls = field.fld.cls
    read, write = _struct(cls, e, outermost=False)
    align = cls.ALIGNMENT[0]
    read, write = _aligned(read, align), _aligned_w(write, align)
    conformant = _conformant_array(cls)
    if conformant is not None:
        read, write = _counted(read, write, conformant.name, e)
    if flushing:
        read, write = _flushing(read), _flushing_w(write)
    return read, write


def _conformant_array(cls: type[NDRPacket]):
    """The structure's conformant byte array (``conformant_in_struct``), or None; any other
    deported conformance does not compile."""
    if not cls.DEPORTED_CONFORMANTS:
        return None
    named = {getattr(f, "name", None): f for f in cls.fields_desc}
    field = named.get(cls.DEPORTED_CONFORMANTS[0]) if len(cls.DEPORTED_CONFORMANTS) == 1 else None
    if not (isinstance(field, NDRConfStrLenField) and field.conformant_in_struct
            and field is cls.fields_desc[-1] and getattr(field, "length_from", None)):
        raise _Unsupported("deported conformance")
    return field


def _in_struct_bytes(field, align: int) -> tuple[Reader, Writer]:
    """The conformant byte array ending a structure, aligned as the structure, as long as its
    size field says (scapy's length); the count before the structure must agree (_counted)."""
    length_from = field.length_from

    def read(buf, pos, deferred, owner):
        pos += -pos % align
        size = length_from(NdrRecord(NDRPacket, owner))
        if pos + size > len(buf):
            raise _Refuse
        return bytes(buf[pos:pos + size]), pos + size

    def write(out, value, deferred):
        out += b"\0" * (-len(out) % align)
        out += value or b""

    return read, write


def _counted(read: Reader, write: Writer, name: str, e: str) -> tuple[Reader, Writer]:
    """The conformance count of a structure's conformant array, before the structure."""
    count = struct.Struct(e + "I")

    def counted_read(buf, pos, deferred, owner):
        max_count, pos = _read_u32(count.unpack_from, buf, pos)
        value, pos = read(buf, pos, deferred, owner)
        if len(value.values[name]) != max_count:
            raise _Refuse
        return value, pos

    def counted_write(out, value, deferred):
        values = value.values if isinstance(value, NdrRecord) else value
        _write_u32(out, count.pack, len(values.get(name) or b""))
        write(out, value, deferred)

    return counted_read, counted_write


def _flushing(read: Reader) -> Reader:
    def flushing(buf, pos, deferred, owner):
        mine: list = []
        value, pos = read(buf, pos, mine, owner)
        for referent_owner, name, target in mine:  # in order, as scapy reads them
            referent_owner[name], pos = target(buf, pos, mine, referent_owner)
        return value, pos
    return flushing


def _flushing_w(write: Writer) -> Writer:
    def flushing(out, value, deferred):
        mine: list = []
        write(out, value, mine)
        for emit in mine:
            emit(out)
    return flushing


def _length(value: Any) -> int:
    return 0 if value is None else len(value)


def _aligned(read: Reader, align: int) -> Reader:
    def aligned(buf, pos, deferred, owner):
        return read(buf, pos + (-pos % align), deferred, owner)
    return aligned


def _aligned_w(write: Writer, align: int) -> Writer:
    def aligned(out, value, deferred):
        out += b"\0" * (-len(out) % align)
        write(out, value, deferred)
    return aligned


def _default(cls: type[NDRPacket], name: str) -> Any:
    value = None
    for field in cls.fields_desc:
        fname = field.fld.name if isinstance(field, NDRFullPointerField) else field.name
        if fname != name:
            continue
        if isinstance(field, NDRFullPointerField):
            return None
        if isinstance(field, NDRPacketField):
            return NdrRecord(field.fld.cls, {})
        value = field.default
    return value
