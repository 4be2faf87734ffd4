"""The fuzz generators and the judge, without sockets."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from scapy.layers.dcerpc import DceRpc5
from scapy.layers.msrpce.raw import ms_dcom
from scapy.layers.msrpce.raw.ms_dcom import ORPCTHIS

from conformance.testkit import fuzz
from conformance.testkit.fuzz.fragments import alloc_hints, plain_fragments
from conformance.refca.rpc.dispatch import dissect_stub
from conformance.wire import pdu as build
from conformance.wire import wcce
from conformance.wire.dcom import (
    IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR, IID_IREMUNKNOWN2, IREMUNKNOWN2_OPNUMS,
)
from conformance.wire.rpc import FaultStatus, PfcFlag, PType

AnswerClass = fuzz.AnswerClass


def inputs(seed: int, count: int, kind=None) -> list:
    choose = fuzz.RandomChooser(random.Random(seed))
    return [fuzz.generate(choose, kind) for _ in range(count)]


def test_a_seed_reproduces_its_inputs():
    assert inputs(5, 200) == inputs(5, 200)
    assert inputs(5, 50) != inputs(6, 50)


@pytest.mark.parametrize("kind", list(fuzz.Kind))
def test_every_kind_is_generated_and_labelled(kind):
    for item in inputs(1, 100, kind):
        assert item.kind is kind and item.label.startswith(kind.value + "/")


def test_the_default_mix_draws_every_kind():
    assert {item.kind for item in inputs(2, 300)} == set(fuzz.Kind)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(fuzz.strategy())
def test_the_hypothesis_strategy_draws_inputs(item):
    assert item.label


# -- field mutations --------------------------------------------------------------------


def plain_target(exchange=fuzz.Exchange.BIND) -> bytes:
    return fuzz.plain_exchange(exchange)[1]


def authenticated_request() -> bytes:
    """A request with a sec_trailer (pad 4) and a 16-byte token, as a sealed one has."""
    pkt = build.header(call_id=3, auth=build.auth_verifier(auth_type=9, auth_level=6, context_id=0,
                                                            token=b"\x11" * 16, pad_length=4),
                       auth_padding=b"\0" * 4)
    from scapy.layers.dcerpc import DceRpc5Request
    from scapy.packet import Raw

    return bytes(pkt / DceRpc5Request(alloc_hint=12, cont_id=0, opnum=1) / Raw(b"\x01" * 12))


def changed(before: bytes, after: bytes) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(before, after)) if a != b]


def test_a_header_field_is_set_at_its_offset_only():
    pdu = plain_target()
    out = fuzz.Mutation(op="set", field="frag_len", value=0x1234).apply(pdu)
    assert struct.unpack_from("<H", out, 8)[0] == 0x1234 and changed(pdu, out) == [8, 9]


def test_add_and_xor_are_relative_to_the_valid_value():
    pdu = plain_target()
    assert fuzz.Mutation(op="add", field="call_id", value=-2).apply(pdu)[12:16] == b"\xff\xff\xff\xff"
    assert fuzz.Mutation(op="xor", field="ptype", value=1).apply(pdu)[2] == PType.BIND ^ 1


def test_a_trailer_field_is_found_from_frag_len_and_auth_length():
    pdu = authenticated_request()
    trailer = len(pdu) - 16 - 8
    out = fuzz.Mutation(op="set", field="auth_level", value=5).apply(pdu)
    assert changed(pdu, out) == [trailer + 1] and out[trailer + 1] == 5


def test_auth_padding_and_token_mutations_stay_in_their_regions():
    pdu = authenticated_request()
    trailer = len(pdu) - 16 - 8
    assert changed(pdu, fuzz.Mutation(op="pad", value=0xAA).apply(pdu)) == list(range(trailer - 4, trailer))
    (flipped,) = changed(pdu, fuzz.Mutation(op="token", value=19).apply(pdu))
    assert trailer + 8 <= flipped < len(pdu)


def test_trailer_mutations_leave_a_pdu_without_one_alone():
    pdu = plain_target()
    assert fuzz.Mutation(op="set", field="auth_type", value=1).apply(pdu) == pdu


def test_a_uuid_field_is_replaced_or_flipped():
    pdu = plain_target()
    out = fuzz.Mutation(op="set", field="if_uuid", data=b"\xee" * 16).apply(pdu)
    assert out[32:48] == b"\xee" * 16 and len(out) == len(pdu)


@pytest.mark.parametrize("op, contexts", [("drop-all", 0), ("duplicate", 3), ("repeat", 4),
                                          ("no-transfer-syntax", 2), ("many-transfer-syntaxes", 2)])
def test_context_list_changes_keep_frag_len_true(op, contexts):
    out = fuzz.Mutation(op="context", field=op, value=0).apply(plain_target())
    assert struct.unpack_from("<H", out, 8)[0] == len(out)
    assert out[24] == contexts
    if op != "drop-all":
        assert len(DceRpc5(out).context_elem) == contexts


def test_append_grows_frag_len_and_truncate_keeps_it():
    pdu = plain_target()
    grown = fuzz.Mutation(op="append", data=b"xyz").apply(pdu)
    assert struct.unpack_from("<H", grown, 8)[0] == len(grown) == len(pdu) + 3
    cut = fuzz.Mutation(op="truncate", value=30).apply(pdu)
    assert len(cut) == 30 and cut[8:10] == pdu[8:10]


def test_plain_exchanges_are_valid_pdus():
    for exchange, (ptype, prefix) in {fuzz.Exchange.BIND: (PType.BIND, 0),
                                      fuzz.Exchange.ALTER: (PType.ALTER_CONTEXT, 1),
                                      fuzz.Exchange.REQUEST: (PType.REQUEST, 1)}.items():
        sent, target = fuzz.plain_exchange(exchange)
        assert len(sent) == prefix and DceRpc5(target).ptype == ptype
    with pytest.raises(ValueError):
        fuzz.plain_exchange(fuzz.Exchange.SEALED_REQUEST)


# -- fragments --------------------------------------------------------------------------


def test_honest_fragments_reassemble_to_the_stub_with_honest_hints():
    honest = [i for i in inputs(3, 200, fuzz.Kind.FRAGMENTS) if i.honest and not i.sealed]
    assert honest
    for item in honest:
        pdus = [DceRpc5(p) for p in plain_fragments(item)]
        assert b"".join(bytes(p.payload.payload) for p in pdus) == fuzz.simple_ping_stub()
        assert pdus[0].pfc_flags & PfcFlag.FIRST_FRAG and pdus[-1].pfc_flags & PfcFlag.LAST_FRAG
        assert [p.alloc_hint for p in pdus] == alloc_hints(item)
        assert alloc_hints(item)[0] == len(fuzz.simple_ping_stub())


# -- NDR --------------------------------------------------------------------------------

_OPNUMS = {wcce.IID_ICERTREQUESTD: wcce.ICERTREQUESTD_OPNUMS,
           wcce.IID_ICERTREQUESTD2: wcce.ICERTREQUESTD2_OPNUMS,
           IID_IREMUNKNOWN2: IREMUNKNOWN2_OPNUMS, IID_IOBJECT_EXPORTER: ms_dcom.IOBJECTEXPORTER_OPNUMS,
           IID_IREMOTE_SCM_ACTIVATOR: ms_dcom.IREMOTESCMACTIVATOR_OPNUMS}


@pytest.mark.parametrize("target", fuzz.NDR_TARGETS, ids=[t.name for t in fuzz.NDR_TARGETS])
def test_every_valid_stub_dissects_as_its_method(target):
    stub = fuzz.valid_stub(target.name)
    if target.port is fuzz.Port.EXPORTER:  # ORPCTHIS first, as the exporter strips it
        stub = ORPCTHIS(stub, ndr64=False).load
    dissect_stub(_OPNUMS[target.interface][target.opnum].request, stub, little_endian=True)


def test_ndr_inputs_cover_every_target_and_differ_from_the_valid_stub():
    items = inputs(4, 600, fuzz.Kind.NDR)
    assert {i.target for i in items} == {t.name for t in fuzz.NDR_TARGETS}
    assert all(i.stub != fuzz.valid_stub(i.target) for i in items if fuzz.valid_stub(i.target))


# -- the judge --------------------------------------------------------------------------


def test_classify_names_the_first_answer():
    fault = bytes(build.fault(call_id=1, status=FaultStatus.RPC_X_BAD_STUB_DATA))
    nak = bytes(build.bind_nak(call_id=1, reason=9))
    assert fuzz.classify(fault, closed=True, timed_out=False) == fuzz.Answer(
        cls=AnswerClass.FAULT, detail=FaultStatus.RPC_X_BAD_STUB_DATA, pdus=1)
    assert fuzz.classify(nak + fault, closed=True, timed_out=False).label == "bind_nak 0x9"
    assert fuzz.classify(b"", closed=True, timed_out=False).cls is AnswerClass.DROPPED
    assert fuzz.classify(b"", closed=False, timed_out=True).cls is AnswerClass.TIMEOUT
    assert fuzz.classify(fault, closed=False, timed_out=True).cls is AnswerClass.TIMEOUT


def test_classify_flags_what_no_server_may_send():
    request = plain_target(fuzz.Exchange.REQUEST)
    assert fuzz.classify(request, closed=True, timed_out=False).cls is AnswerClass.UNEXPECTED
    assert fuzz.classify(b"\x04" * 20, closed=True, timed_out=False).cls is AnswerClass.GARBAGE
    half = bytes(build.fault(call_id=1, status=5))[:20]
    assert fuzz.classify(half, closed=True, timed_out=False).cls is AnswerClass.GARBAGE
    response = bytes(build.response(call_id=1, cont_id=0, stub=b"", alloc_hint=0))
    unverified = fuzz.classify(response, closed=False, timed_out=False, verified=False)
    assert unverified.cls is AnswerClass.UNVERIFIED


def test_acceptable_sets():
    never = {AnswerClass.TIMEOUT, AnswerClass.GARBAGE, AnswerClass.UNEXPECTED, AnswerClass.UNVERIFIED}
    assert all(not never & accepted for accepted in fuzz.ACCEPTABLE.values())
    assert AnswerClass.DROPPED not in fuzz.ACCEPTABLE[fuzz.Kind.NDR]  # a sealed call is answered
    honest = next(i for i in inputs(3, 400, fuzz.Kind.FRAGMENTS) if i.honest)
    assert fuzz.acceptable(honest) == {AnswerClass.RESPONSE}
