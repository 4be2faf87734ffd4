"""``SecTrailer.patched`` (conformance.wire.protection), the raw negatives' way of making a
malformed PDU from a valid one by naming what changes, on recorded request PDUs."""

from __future__ import annotations

import pytest

from conformance.wire.framing import CommonHeader
from conformance.wire.protection import ProtectionError, SecTrailer
from conformance.wire.rpc import SEC_TRAILER_LEN
from tests.support.recorded import load, read

#: Recorded requests with a sec_trailer: SPNEGO at privacy (activation, a WCCE call),
#: SPNEGO at integrity (the OXID resolver), raw NTLM (activation).
REQUESTS = [("conformant", 8), ("conformant", 20), ("conformant", 14), ("raw-ntlm", 3)]

#: field -> (offset in the sec_trailer, width), [MS-RPCE] 2.2.2.11, and a value to write
FIELDS = {
    "auth_type": (0, 1, 0x44),
    "auth_level": (1, 1, 2),
    "auth_pad_length": (2, 1, 0xF0),
    "auth_reserved": (3, 1, 0x7F),
    "auth_context_id": (4, 4, 0x01020304),
}


def trailer(raw: bytes) -> SecTrailer:
    return SecTrailer.parse(raw, CommonHeader.parse(raw))


@pytest.mark.parametrize(("name", "index"), REQUESTS, ids=[f"{n}#{i}" for n, i in REQUESTS])
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_each_named_field_is_overwritten_and_nothing_else(name, index, field):
    raw = read(name).pdus[index].raw
    assert read(name).pdus[index].ptype_name == "request" and CommonHeader.parse(raw).little_endian
    before = trailer(raw)
    at, width, value = FIELDS[field]
    patched = SecTrailer.patched(raw, **{field: value})
    after = trailer(patched)
    assert getattr(after, field) == value != getattr(before, field)
    for other in set(FIELDS) - {field}:
        assert getattr(after, other) == getattr(before, other)
    start = before.offset + at
    assert len(patched) == len(raw)
    assert patched[:start] == raw[:start] and patched[start + width:] == raw[start + width:]
    assert patched[start:start + width] == value.to_bytes(width, "little")  # drep: little-endian


def test_several_fields_at_once_and_the_token_untouched():
    raw = read("conformant").pdus[20].raw
    before = trailer(raw)
    patched = SecTrailer.patched(raw, auth_level=5, auth_context_id=1)
    after = trailer(patched)
    assert (after.auth_level, after.auth_context_id, after.auth_type) == (5, 1, before.auth_type)
    token = before.offset + SEC_TRAILER_LEN
    assert patched[token:] == raw[token:] and patched[:before.offset] == raw[:before.offset]


def test_no_fields_is_the_pdu_itself():
    raw = read("conformant").pdus[20].raw
    assert SecTrailer.patched(raw) == raw


def test_the_patched_pdu_reads_back_in_a_transcript():
    rec = load("conformant")
    raw = read("conformant").pdus[20].raw
    t = rec.with_pdu(20, SecTrailer.patched(raw, auth_level=5)).transcript()
    assert t.pdus[20].sec_trailer.auth_level == 5
    assert t.pdus[20].verified is False  # NTLM signs the sec_trailer: the signature no longer covers it
    assert read("conformant").pdus[20].verified is True


def test_an_unknown_field_raises():
    raw = read("conformant").pdus[20].raw
    with pytest.raises(KeyError, match="auth_length"):
        SecTrailer.patched(raw, auth_length=0)


def test_a_value_that_does_not_fit_raises():
    raw = read("conformant").pdus[20].raw
    with pytest.raises(OverflowError):
        SecTrailer.patched(raw, auth_type=0x100)


@pytest.mark.parametrize(("name", "index"), [("conformant", 2), ("level-2", 10), ("replies", 6)],
                         ids=["server-alive2", "request-at-connect", "unauthenticated"])
def test_a_pdu_without_a_trailer_raises(name, index):
    raw = read(name).pdus[index].raw
    assert read(name).pdus[index].sec_trailer is None
    with pytest.raises(ProtectionError, match="no sec_trailer"):
        SecTrailer.patched(raw, auth_type=9)
