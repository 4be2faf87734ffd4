"""Codecs compiled from scapy's field lists give scapy's own bytes, and read them back."""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.fields import StrField
from scapy.layers.dcerpc import CommonAuthVerifier, DceRpc5, DceRpc5Request, DceRpc5Response
from scapy.packet import Packet, Raw

from conformance.wire import pdu
from conformance.wire.compiled import CompileError, layout
from conformance.wire.rpc import SEC_VT_MAGIC

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
verifiers = st.none() | st.builds(pdu.Verifier, auth_type=u8, auth_level=u8, context_id=u32,
                                  token=st.binary(min_size=1, max_size=40), pad_length=st.integers(0, 15))


def test_the_heads_are_scapys_fixed_fields():
    assert layout(DceRpc5).fields == ("rpc_vers", "rpc_vers_minor", "ptype", "pfc_flags", "endian", "encoding",
                                      "float", "reserved1", "reserved2", "frag_len", "auth_len", "call_id")
    assert (layout(DceRpc5).size, layout(DceRpc5Request).size, layout(DceRpc5Response).size) == (16, 8, 8)
    # auth_value (a length-prefixed packet whose fallback field says fmt "H") is not a scalar
    assert layout(CommonAuthVerifier).fields[-1] == "auth_context_id" and layout(CommonAuthVerifier).size == 8


@settings(max_examples=200, deadline=None)
@given(little=st.booleans(), values=st.fixed_dictionaries({
    "ptype": u8, "pfc_flags": u8, "endian": st.integers(0, 1), "encoding": st.integers(0, 15), "float": u8,
    "frag_len": u16, "auth_len": u16, "call_id": u32}))
def test_the_header_packs_and_unpacks_as_scapy_does(little, values):
    values = {**values, "endian": 1 if little else 0}
    wire = bytes(DceRpc5(**values))[:16]
    head = layout(DceRpc5, little_endian=little)
    assert head.pack(values) == wire
    assert {k: v for k, v in head.unpack(wire).items() if k in values} == values


@settings(max_examples=200, deadline=None)
@given(call_id=u32, cont_id=u16, alloc_hint=u32, flags=u8, stub=st.binary(max_size=64), little=st.booleans(),
       verifier=verifiers)
def test_response_bytes_are_the_packet_builders(call_id, cont_id, alloc_hint, flags, stub, little, verifier):
    auth = None if verifier is None else pdu.auth_verifier(
        auth_type=verifier.auth_type, auth_level=verifier.auth_level, context_id=verifier.context_id,
        token=verifier.token, pad_length=verifier.pad_length)
    scapy_bytes = bytes(pdu.response(call_id=call_id, cont_id=cont_id, stub=stub, alloc_hint=alloc_hint,
                                     pfc_flags=flags, little_endian=little, auth=auth,
                                     auth_padding=b"\0" * (verifier.pad_length if verifier else 0)))
    assert pdu.response_bytes(call_id=call_id, cont_id=cont_id, stub=stub, alloc_hint=alloc_hint, pfc_flags=flags,
                              little_endian=little, verifier=verifier) == scapy_bytes


@settings(max_examples=200, deadline=None)
@given(call_id=u32, cont_id=u16, opnum=u16, alloc_hint=u32, stub=st.binary(max_size=64),
       object_uuid=st.none() | st.uuids(), verifier=verifiers)
def test_request_bytes_are_scapys(call_id, cont_id, opnum, alloc_hint, stub, object_uuid, verifier):
    flags = 0x03 | (0x80 if object_uuid else 0)
    pkt = DceRpc5(pfc_flags=flags, call_id=call_id)
    req = DceRpc5Request(alloc_hint=alloc_hint, cont_id=cont_id, opnum=opnum)
    if object_uuid is not None:
        req.object = object_uuid
    if verifier is not None:
        pkt.auth_verifier = pdu.auth_verifier(auth_type=verifier.auth_type, auth_level=verifier.auth_level,
                                              context_id=verifier.context_id, token=verifier.token,
                                              pad_length=verifier.pad_length)
        pkt.auth_padding = b"\0" * verifier.pad_length
    assert pdu.request_bytes(call_id=call_id, cont_id=cont_id, opnum=opnum, stub=stub, alloc_hint=alloc_hint,
                             object_uuid=object_uuid, verifier=verifier) == bytes(pkt / req / Raw(stub))


def test_a_field_that_is_not_a_fixed_scalar_ends_the_head():
    class Named(Packet):
        fields_desc = [StrField("name", b"")]

    assert layout(Named).fields == ()
    with pytest.raises(CompileError, match="no field"):
        layout(Named, start="nothing")


def test_a_little_endian_bit_group_compiles_only_when_it_is_one_octet():
    from scapy.fields import BitField, FlagsField

    class Wide(Packet):
        fields_desc = [BitField("a", 0, -4, tot_size=-2), BitField("b", 0, 12, end_tot_size=-2)]

    class Narrow(Packet):
        fields_desc = [FlagsField("flags", 0, -8, ["x", "y"]), BitField("c", 0, 8)]

    class Declared(Packet):  # one field of eight bits, but a group of two octets by its declaration
        fields_desc = [BitField("a", 0, -8, tot_size=-2), BitField("b", 0, 8, end_tot_size=-2)]

    for wide in (Wide, Declared):
        with pytest.raises(CompileError, match="little-endian bit groups"):
            layout(wide)
    for value in (0x01, 0x80, 0xA5):
        assert layout(Narrow).pack({"flags": value, "c": 7}) == bytes(Narrow(flags=value, c=7))
        assert layout(Narrow).unpack(bytes(Narrow(flags=value, c=7))) == {"flags": value, "c": 7}


@settings(max_examples=100, deadline=None)
@given(values=st.fixed_dictionaries({"alloc_hint": u32, "cont_id": u16, "cancel_count": u8, "reserved": u8,
                                     "status": u32, "reserved2": u32}), little=st.booleans())
def test_the_fault_head_is_scapys(values, little):
    from scapy.layers.dcerpc import DceRpc5Fault

    wire = bytes(DceRpc5(endian="little" if little else "big") / DceRpc5Fault(**values))[16:32]
    assert layout(DceRpc5Fault, little_endian=little).pack(values) == wire
    assert layout(DceRpc5Fault, little_endian=little).unpack(wire) == values


def test_a_request_with_an_object_uuid_reads_back_in_scapy():
    object_uuid = uuid.UUID("d99e6e74-fc88-11d0-b498-00a0c90312f3")
    wire = pdu.request_bytes(call_id=9, cont_id=1, opnum=3, stub=b"\1" * 8, alloc_hint=8, object_uuid=object_uuid)
    parsed = DceRpc5(wire)
    assert parsed[DceRpc5Request].object == object_uuid and parsed.pfc_flags.PFC_OBJECT_UUID


syntaxes = st.tuples(st.uuids(), u32)
contexts = st.lists(st.tuples(u16, syntaxes, st.lists(syntaxes, min_size=1, max_size=3)), min_size=1, max_size=3)
bind_verifiers = st.none() | st.builds(pdu.Verifier, auth_type=u8, auth_level=u8, context_id=u32,
                                       token=st.binary(min_size=1, max_size=40))


@settings(max_examples=150, deadline=None)
@given(call_id=u32, alter=st.booleans(), frags=st.tuples(u16, u16), group=u32, elems=contexts,
       flags=u8, verifier=bind_verifiers)
def test_bind_bytes_are_scapys(call_id, alter, frags, group, elems, flags, verifier):
    from scapy.layers.dcerpc import (DceRpc5AbstractSyntax, DceRpc5AlterContext, DceRpc5Bind, DceRpc5Context,
                                     DceRpc5TransferSyntax)

    pkt = pdu.header(ptype_flags=flags, call_id=call_id)
    if verifier is not None:
        pkt.auth_verifier = pdu.auth_verifier(auth_type=verifier.auth_type, auth_level=verifier.auth_level,
                                              context_id=verifier.context_id, token=verifier.token)
        pkt.auth_verifier.auth_pad_length = None  # scapy aligns the trailer
    body = (DceRpc5AlterContext if alter else DceRpc5Bind)(
        max_xmit_frag=frags[0], max_recv_frag=frags[1], assoc_group_id=group, context_elem=[
            DceRpc5Context(cont_id=c, abstract_syntax=DceRpc5AbstractSyntax(if_uuid=a[0], if_version=a[1]),
                           transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=u, if_version=v) for u, v in ts])
            for c, a, ts in elems])
    assert pdu.bind_bytes(call_id=call_id, alter=alter, max_xmit_frag=frags[0], max_recv_frag=frags[1],
                          assoc_group_id=group, contexts=elems, pfc_flags=flags,
                          verifier=verifier) == bytes(pkt / body)


@settings(max_examples=150, deadline=None)
@given(call_id=u32, alter=st.booleans(), frags=st.tuples(u16, u16), group=u32, port=st.integers(0, 65535),
       results=st.lists(st.tuples(st.integers(0, 3), u16, st.uuids(), u32), max_size=3), little=st.booleans(),
       verifier=bind_verifiers)
def test_bind_ack_bytes_are_the_packet_builders(call_id, alter, frags, group, port, results, little, verifier):
    auth = None if verifier is None else pdu.auth_verifier(
        auth_type=verifier.auth_type, auth_level=verifier.auth_level, context_id=verifier.context_id,
        token=verifier.token)
    fields = dict(call_id=call_id, alter=alter, max_xmit_frag=frags[0], max_recv_frag=frags[1],
                  assoc_group_id=group, port_spec=str(port), results=results, little_endian=little)
    assert pdu.bind_ack_bytes(**fields, verifier=verifier) == bytes(pdu.bind_ack(**fields, auth=auth))


def _scapy_bind_body(wire: bytes, alter: bool):
    from scapy.layers.dcerpc import DceRpc5AlterContext, DceRpc5Bind

    pkt = DceRpc5(wire)
    return pkt[DceRpc5AlterContext] if alter else pkt[DceRpc5Bind]


def _changed(wire: bytes, cut: int, flip: tuple[int, int] | None) -> tuple[bytes, int]:
    """``wire`` with the byte at ``flip[0]`` set to ``flip[1]``, and where it ends ``cut`` short."""
    if flip is not None and flip[0] < len(wire):
        wire = wire[:flip[0]] + bytes([flip[1]]) + wire[flip[0] + 1:]
    return wire, len(wire) - cut


def _values(body) -> tuple:
    return (int(body.max_xmit_frag), int(body.max_recv_frag), int(body.assoc_group_id), int(body.n_context_elem),
            [(int(e.cont_id), uuid.UUID(str(e.abstract_syntax.if_uuid)), int(e.abstract_syntax.if_version),
              [(uuid.UUID(str(t.if_uuid)), int(t.if_version)) for t in e.transfer_syntaxes]) for e in body.context_elem])


@settings(max_examples=150, deadline=None)
@given(alter=st.booleans(), frags=st.tuples(u16, u16), group=u32, elems=contexts, little=st.booleans(),
       cut=st.integers(0, 12), flip=st.none() | st.tuples(st.integers(16, 200), u8))
def test_read_bind_reads_what_scapy_reads_or_refuses(alter, frags, group, elems, little, cut, flip):
    """On a valid bind the two agree; on one cut short or with a byte changed, read_bind either
    refuses (the CA then lets scapy read it) or reads what scapy reads."""
    wire, end = _changed(pdu.bind_bytes(call_id=1, alter=alter, max_xmit_frag=frags[0], max_recv_frag=frags[1],
                                        assoc_group_id=group, contexts=elems, little_endian=little), cut, flip)
    try:
        ours = pdu.read_bind(wire, little_endian=little, end=end)
    except ValueError:
        assert cut or flip  # a valid bind is always read
        return
    theirs = _scapy_bind_body(wire[:end], alter)
    assert _values(ours) == _values(theirs)


def _reply_values(body) -> tuple:
    if hasattr(body, "results"):
        return (int(body.max_xmit_frag), int(body.max_recv_frag), int(body.assoc_group_id), int(body.n_results),
                [(int(r.result), int(r.reason), uuid.UUID(str(r.transfer_syntax.if_uuid)),
                  int(r.transfer_syntax.if_version)) for r in body.results])
    if hasattr(body, "provider_reject_reason"):
        return (int(body.provider_reject_reason),)
    return int(body.alloc_hint), int(body.cont_id), int(body.cancel_count), int(body.status)


replies = st.one_of(
    st.builds(lambda alter, frags, group, port, results, little: (pdu.bind_ack_bytes(
        call_id=1, alter=alter, max_xmit_frag=frags[0], max_recv_frag=frags[1], assoc_group_id=group,
        port_spec=str(port), results=results, little_endian=little), little),
        st.booleans(), st.tuples(u16, u16), u32, st.integers(0, 65535),
        st.lists(st.tuples(st.integers(0, 3), u16, st.uuids(), u32), max_size=3), st.booleans()),
    st.builds(lambda reason, little: (bytes(pdu.bind_nak(call_id=1, reason=reason, little_endian=little)), little),
              u16, st.booleans()),
    st.builds(lambda status, cont_id, little: (bytes(pdu.fault(call_id=1, status=status, cont_id=cont_id,
                                                                little_endian=little)), little),
              u32, u16, st.booleans()))


@settings(max_examples=300, deadline=None)
@given(reply=replies, cut=st.integers(0, 12), flip=st.none() | st.tuples(st.integers(16, 120), u8),
       grown=st.binary(max_size=48), signature_at=st.none() | st.integers(16, 120))
def test_read_reply_reads_what_scapy_reads_or_refuses(reply, cut, flip, grown, signature_at):
    """A bind_ack, alter_context_resp, bind_nak or fault: on a valid one read_reply and scapy
    agree; on one cut short, grown, with a byte of its body changed or a verification trailer's
    signature inside, read_reply refuses (the client and the transcript then let scapy read
    it) or reads what scapy reads."""
    wire, little = reply
    changed = bool(cut or flip or grown or signature_at is not None)
    wire += grown
    if signature_at is not None:
        wire = wire[:signature_at] + SEC_VT_MAGIC + wire[signature_at:]
    wire, end = _changed(_framed(wire), cut, flip)
    try:
        ours = pdu.read_reply(wire, little_endian=little, end=end)
    except ValueError:
        assert changed  # a valid answer is always read
        return
    theirs = DceRpc5(wire[:end])[pdu._REPLY_LAYERS[wire[2]]]
    assert _reply_values(ours) == _reply_values(theirs)


def _framed(wire: bytes) -> bytes:
    """``wire`` with its frag_len saying its length, in its byte order."""
    order = "<" if wire[4] & 0x10 else ">"
    return wire[:8] + struct.pack(order + "H", len(wire)) + wire[10:]


def test_a_bind_nak_with_room_for_a_signature_is_scapys_to_read():
    """scapy reads an extended-error signature where the body has room for one, and fails on
    one that is not there: the compiled reading takes only a bind_nak ending with its versions."""
    nak = bytes(pdu.bind_nak(call_id=1, reason=9, versions=((5, 0), (5, 0), (5, 0))))
    with pytest.raises(ValueError, match="does not end with its protocol versions"):
        pdu.read_reply(_framed(nak + bytes(21)), little_endian=True)
    assert pdu.read_reply(nak, little_endian=True).provider_reject_reason == 9


def test_read_reply_refuses_what_it_does_not_read():
    request = pdu.request_bytes(call_id=1, cont_id=0, opnum=0, stub=b"", alloc_hint=0)
    with pytest.raises(ValueError, match="not an answer"):
        pdu.read_reply(request, little_endian=True)
