"""NDR codecs compiled from scapy's declarations write scapy's bytes and read what scapy reads.

Values are drawn from each method's own field list; both byte orders.  The reader may leave
a stub to scapy (None) but never reads one differently: every stub it accepts, scapy's
strict reading (``dissect_stub``) accepts with the same values.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.fields import StrFixedLenField
from scapy.layers.dcerpc import (
    NDRConfStrLenField, NDRConfVarStrNullFieldUtf16, NDRFullPointerField, NDRInt3264EnumField, NDRPacketField,
    NDRShortField, NDRSignedIntField, _VirtualField,
)
from scapy.layers.msrpce.raw import ms_dcom
from scapy.layers.msrpce.raw.ms_dcom import COMVERSION, GUID, ORPCTHAT, ORPCTHIS

from conformance.refca.rpc.dispatch import BadStubData, dissect_stub
from conformance.wire import wcce
from conformance.wire.ndrcodec import NdrRecord, codec, record

METHODS = [getattr(wcce, name) for name in wcce.__all__ if name.endswith(("_Request", "_Response"))]
ACTIVATION = [ms_dcom.RemoteCreateInstance_Request, ms_dcom.RemoteCreateInstance_Response,
              ms_dcom.RemoteGetClassObject_Request, ms_dcom.RemoteGetClassObject_Response]
u16, u32, s32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(-(2**31), 2**31 - 1)
# wchar_t strings: no NUL (it ends the string), no lone surrogates (scapy replaces them)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40)
# scapy counts a string's UTF-8 bytes, not its UTF-16 units: its own bytes are NDR only for ASCII
ascii_texts = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=40)


def _values(cls, texts=texts):
    """A strategy of plain values for ``cls``'s fields (nested structures as dicts; a size
    field left None: both scapy and the codec take it from its array)."""
    fields = {}
    for field in cls.fields_desc:
        if isinstance(field, _VirtualField) or getattr(field, "size_of", None):
            continue
        if isinstance(field, NDRPacketField):
            fields[field.name] = _values(field.fld.cls, texts)
        elif isinstance(field, NDRFullPointerField):
            inner = field.fld
            if isinstance(inner, NDRConfVarStrNullFieldUtf16):
                fields[inner.name] = st.none() | texts
            elif isinstance(inner, NDRConfStrLenField):
                fields[inner.name] = st.none() | st.binary(min_size=1, max_size=300)
            elif inner.fld.cls is ms_dcom.MInterfacePointer:
                fields[inner.name] = st.none() | _values(ms_dcom.MInterfacePointer, texts)
            else:
                fields[inner.name] = st.none()  # the ORPC extensions: written NULL only
        elif isinstance(field, NDRConfStrLenField):
            fields[field.name] = st.binary(max_size=300)
        elif isinstance(field, StrFixedLenField):
            fields[field.name] = st.binary(min_size=8, max_size=8)
        elif isinstance(field, NDRSignedIntField):
            fields[field.name] = s32
        elif isinstance(field, (NDRShortField, NDRInt3264EnumField)):
            fields[field.name] = u16
        else:
            fields[field.name] = u32
    return st.fixed_dictionaries(fields)


def _scapy_packet(cls, values, little=True, top=True):
    kwargs = {}
    for name, value in values.items():
        nested = _nested_class(cls, name)
        kwargs[name] = _scapy_packet(nested, value, top=False) if nested and value is not None else value
    if top:
        return cls(**kwargs, ndr64=False, ndrendian="little" if little else "big")
    return cls(**kwargs, ndr64=False)


def _record(cls, values):
    return record(cls, **{name: _record(_nested_class(cls, name), value)
                          if _nested_class(cls, name) and value is not None else value
                          for name, value in values.items()})


def _nested_class(cls, name):
    for field in cls.fields_desc:
        inner = field.fld if isinstance(field, NDRFullPointerField) else field
        if getattr(inner, "name", None) == name and isinstance(inner, NDRPacketField):
            return inner.fld.cls
    return None


def _agree(rec: NdrRecord, pkt) -> None:
    """Every field of ``rec`` is what scapy's packet gives for it."""
    assert pkt is not None
    for name, value in rec.values.items():
        try:
            theirs = pkt.valueof(name)
        except AttributeError:  # a plain scapy field (GUID's Data4)
            theirs = pkt.getfieldval(name)
        if isinstance(value, NdrRecord):
            _agree(value, theirs)
        else:
            assert value == theirs, name


def test_every_wcce_method_and_the_orpc_headers_compile():
    for cls in [*METHODS, *ACTIVATION, ORPCTHIS, ORPCTHAT]:
        for little in (True, False):
            assert codec(cls, little) is not None, cls.__name__


@pytest.mark.parametrize("cls", METHODS + ACTIVATION, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), little=st.booleans())
def test_writes_scapys_bytes_and_reads_them_back(cls, data, little):
    values = data.draw(_values(cls, ascii_texts))
    wire = bytes(_scapy_packet(cls, values, little))
    assert codec(cls, little).write(_record(cls, values)) == wire
    rec, rest = codec(cls, little).read(wire)
    assert rest == b""
    _agree(rec, dissect_stub(cls, wire, little_endian=little))


@pytest.mark.parametrize("cls", [cls for cls in METHODS + ACTIVATION if cls.__name__.endswith("_Request")],
                         ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), little=st.booleans())
def test_any_string_written_is_read_by_both_as_written(cls, data, little):
    values = data.draw(_values(cls))
    wire = codec(cls, little).write(_record(cls, values))
    rec, rest = codec(cls, little).read(wire)
    assert rest == b""
    _agree(rec, dissect_stub(cls, wire, little_endian=little))
    for name, value in values.items():
        if isinstance(value, str):
            assert rec.valueof(name) == value.encode("utf-8")


@pytest.mark.parametrize("cls", METHODS + ACTIVATION, ids=lambda cls: cls.__name__)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), little=st.booleans())
def test_what_it_reads_of_a_changed_stub_scapy_reads_the_same(cls, data, little):
    wire = bytearray(codec(cls, little).write(_record(cls, data.draw(_values(cls)))))
    change = data.draw(st.sampled_from(["byte", "cut", "grow"]))
    if change == "byte" and wire:
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    elif change == "cut":
        del wire[data.draw(st.integers(0, len(wire))):]
    else:
        wire += data.draw(st.binary(min_size=1, max_size=12))
    read = codec(cls, little).read(bytes(wire))
    if read is None:
        return  # scapy's to judge, as before
    rec, _rest = read
    try:
        pkt = dissect_stub(cls, bytes(wire), little_endian=little)
    except BadStubData as exc:
        raise AssertionError(f"the codec read a stub scapy refuses: {exc}") from exc
    _agree(rec, pkt)


@settings(max_examples=100, deadline=None)
@given(major=st.integers(0, 0xFFFF), minor=st.integers(0, 0xFFFF), flags=st.integers(0, 0xFFFF),
       reserved=u32, cid=st.binary(min_size=16, max_size=16), args=st.binary(max_size=40))
def test_orpcthis_without_extensions_reads_as_scapy_reads_it(major, minor, flags, reserved, cid, args):
    guid = GUID(cid, ndr64=False)
    pkt = ORPCTHIS(version=COMVERSION(MajorVersion=major, MinorVersion=minor), flags=flags, reserved1=reserved,
                   cid=guid, ndr64=False)
    wire = bytes(pkt)
    rec, rest = codec(ORPCTHIS).read(wire + args)
    assert rest == args
    again = ORPCTHIS(wire + args, ndr64=False)
    assert (rec.version.MajorVersion, rec.version.MinorVersion, rec.flags, rec.reserved1) == (
        again.version.MajorVersion, again.version.MinorVersion, again.flags, again.reserved1)
    assert rec.cid.Data4 == again.cid.Data4 and rec.cid.Data1 == again.cid.Data1
    assert codec(ORPCTHIS).write(rec) == wire


def test_orpcthis_extensions_are_read_when_empty_and_left_to_scapy_when_not():
    empty = bytes(ORPCTHIS(extensions=ms_dcom.ORPC_EXTENT_ARRAY(size=0, reserved=7, extent=None), ndr64=False))
    rec, rest = codec(ORPCTHIS).read(empty + b"args")
    assert rest == b"args" and rec.extensions.reserved == 7 and rec.extensions.extent is None
    one = ms_dcom.ORPC_EXTENT(id=GUID(b"\x11" * 16), size=4, data=b"abcd", ndr64=False)
    carrying = bytes(ORPCTHIS(extensions=ms_dcom.ORPC_EXTENT_ARRAY(size=1, extent=[one]), ndr64=False))
    assert codec(ORPCTHIS).read(carrying) is None


def test_orpcthat_written_is_scapys():
    assert codec(ORPCTHAT).write(record(ORPCTHAT, flags=0, extensions=None)) == bytes(ORPCTHAT(ndr64=False))


def test_a_string_with_a_nul_inside_is_left_to_scapy():
    # scapy stops such a string at the NUL (and refuses the stub as truncated): not one meaning
    wire = bytes(wcce.Ping_Request(pwszAuthority="A\0B", ndr64=False))
    assert codec(wcce.Ping_Request).read(wire) is None
