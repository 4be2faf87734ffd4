"""Framing on frag_len: whole, byte by byte, with trailing bytes (h11's reader drill)."""

from __future__ import annotations

import pytest
from scapy.layers.dcerpc import DceRpc5, DceRpc5Bind, DceRpc5Fault, DceRpc5Request
from scapy.packet import Raw

from conformance.wire.framing import CommonHeader, FramingError, PduFramer

SAMPLES = [
    bytes(DceRpc5(call_id=1) / DceRpc5Bind()),
    bytes(DceRpc5(call_id=7, pfc_flags=3) / DceRpc5Request(opnum=3) / Raw(b"\x01" * 37)),
    bytes(DceRpc5(call_id=9, endian=0) / DceRpc5Fault(status=5)),  # big-endian header
]


@pytest.mark.parametrize("pdu", SAMPLES)
def test_whole(pdu):
    assert PduFramer().feed(pdu) == [pdu]


@pytest.mark.parametrize("pdu", SAMPLES)
def test_byte_by_byte(pdu):
    framer = PduFramer()
    for byte in pdu[:-1]:
        assert framer.feed(bytes([byte])) == []
    assert framer.feed(pdu[-1:]) == [pdu]
    assert framer.pending == 0


@pytest.mark.parametrize("pdu", SAMPLES)
def test_trailing_bytes_stay_buffered(pdu):
    framer = PduFramer()
    assert framer.feed(pdu + pdu[:5]) == [pdu]
    assert framer.pending == 5
    assert framer.feed(pdu[5:]) == [pdu]


def test_several_in_one_read():
    assert PduFramer().feed(b"".join(SAMPLES)) == SAMPLES


def test_big_endian_frag_len():
    header = CommonHeader.parse(SAMPLES[2])
    assert not header.little_endian and header.frag_len == len(SAMPLES[2]) and header.call_id == 9


@pytest.mark.parametrize("mutate, message", [
    (lambda p: b"\x04" + p[1:], "rpc_vers 4"),
    (lambda p: p[:4] + b"\x30" + p[5:], "integer representation"),
    (lambda p: p[:8] + b"\x0a\x00" + p[10:], "shorter than the header"),
])
def test_unframable_streams(mutate, message):
    framer = PduFramer()
    with pytest.raises(FramingError, match=message):
        framer.feed(mutate(SAMPLES[0]))
    with pytest.raises(FramingError):  # and it stays broken
        framer.feed(SAMPLES[0])


def test_pdus_before_a_bad_header_are_delivered():
    framer = PduFramer()
    assert framer.feed(SAMPLES[0] + b"\x04" + SAMPLES[0][1:]) == [SAMPLES[0]]
    assert framer.broken is not None
