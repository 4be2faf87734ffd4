"""What a reply amounts to (conformance.judge.outcome) on recorded reply PDUs, and the
outcome grammar (conformance.model.outcomes): every outcome a case may expect is written
in a form ``parse_expectation`` accepts, and every other one never matches."""

from __future__ import annotations

import dataclasses

import pytest

from conformance.client.dcom import parse_activation
from conformance.client.rpc import Outcome
from conformance.client.session import CallResult
from conformance.judge.outcome import of_activation, of_call, of_reply
from conformance.model import outcomes
from conformance.wire.wcce import Disposition
from tests.support.recorded import read


def reply(name: str, index: int, *, closed: bool = False) -> Outcome:
    """A recorded PDU as the client received it."""
    return Outcome(pdus=(read(name).pdus[index].raw,), closed=closed)


def response_of(name: str, index: int):
    """A recorded response's [out] parameters, as the client dissects them."""
    return read(name).pdus[index].decoded.packet


def activation_of(name: str):
    """The recorded RemoteCreateInstance answer, parsed as the client parses it."""
    pdu = next(p for p in read(name).pdus if p.decoded and p.decoded.name == "RemoteCreateInstance_Response")
    return parse_activation(pdu.plain), Outcome(pdus=(pdu.raw,))


# (recording, PDU index, what the PDU is) -> outcome
REPLIES = [
    ("replies", 1, "s2c bind_nak", "bind_nak 0"),  # unknown association group
    ("replies", 3, "s2c bind_ack", "accept"),
    ("replies", 5, "s2c alter_context_resp", "reject 1"),  # version 1.0: abstract syntax not supported
    ("replies", 7, "s2c fault", "fault 0x1c010002"),  # nca_s_op_rng_error
    ("replies", 9, "s2c response", "accept"),
    ("version-1.0", 7, "s2c bind_ack", "reject 1"),  # rejected beside the bind-time feature negotiation
    ("version-1.0", 9, "s2c alter_context_resp", "reject 1"),  # the authentication leg: still rejected
    ("conformant", 5, "s2c bind_ack", "accept"),  # accepted beside the bind-time feature negotiation
    ("conformant", 7, "s2c alter_context_resp", "accept"),
    ("conformant", 21, "s2c response", "accept"),
    ("level-2", 11, "s2c fault", "fault 0x00000005"),  # Request below privacy
    ("anonymous", 7, "s2c fault", "fault 0x00000005"),  # anonymous authentication refused
]


@pytest.mark.parametrize(("name", "index", "what", "expected"), REPLIES,
                         ids=[f"{r[0]}#{r[1]}" for r in REPLIES])
def test_of_reply_on_recorded_replies(name, index, what, expected):
    pdu = read(name).pdus[index]
    assert f"{pdu.direction.value} {pdu.ptype_name}" == what
    observed = of_reply(reply(name, index))
    assert observed == expected
    assert outcomes.EXPECTABLE.match(observed)
    assert outcomes.parse_expectation(observed) == (observed,)


def test_the_last_pdu_decides():
    both = Outcome(pdus=(read("replies").pdus[3].raw, read("replies").pdus[7].raw))
    assert of_reply(both) == "fault 0x1c010002"


@pytest.mark.parametrize(("outcome", "expected"), [
    (Outcome(pdus=(), closed=True), "drop"),
    (Outcome(pdus=(), closed=False), "silent"),
    (dataclasses.replace(reply("conformant", 21), unverified="signature verification failed"),
     "unverifiable response"),
    (reply("conformant", 20), "ptype 0"),  # a request is not an answer
], ids=["drop", "silent", "unverifiable", "not-a-reply"])
def test_of_reply_without_an_answer(outcome, expected):
    assert of_reply(outcome) == expected
    assert bool(outcomes.EXPECTABLE.match(expected)) is (expected == "drop")


CALLS = [
    pytest.param(CallResult(outcome=reply("conformant", 21), response=response_of("conformant", 21)),
                 "accept", id="issued"),
    pytest.param(CallResult(outcome=reply("unknown-template", 11), response=response_of("unknown-template", 11)),
                 "disposition 0x80094800", id="unsupported-template-in-disposition"),
    pytest.param(CallResult(outcome=reply("level-5", 11), response=response_of("level-5", 11)),
                 "hresult 0x80070005", id="hresult-returned"),
    pytest.param(CallResult(outcome=reply("level-2", 11), response=None), "fault 0x00000005", id="fault"),
    pytest.param(CallResult(outcome=reply("conformant", 3), response=response_of("conformant", 3)),
                 "accept", id="no-disposition-status-0"),
]


@pytest.mark.parametrize(("result", "expected"), CALLS)
def test_of_call_on_recorded_responses(result, expected):
    observed = of_call(result)
    assert observed == expected
    assert outcomes.parse_expectation(observed) == (observed,)


def test_of_call_writes_small_dispositions_in_decimal():
    pending = response_of("conformant", 21).copy()
    pending.pdwDisposition = int(Disposition.UNDER_SUBMISSION)
    observed = of_call(CallResult(outcome=reply("conformant", 21), response=pending))
    assert observed == "disposition 5"
    assert outcomes.parse_expectation(observed) == (observed,)


def test_of_activation_on_recorded_activations():
    for name, expected in [("conformant", "accept"), ("wrong-class", "hresult 0x80040154"),
                           ("foreign-iid", "hresult 0x80004002")]:
        activation, outcome = activation_of(name)
        observed = of_activation(outcome, activation)
        assert observed == expected, name
        assert outcomes.parse_expectation(outcomes.activation(observed)) == (f"activation {observed}",)


def test_of_activation_names_the_first_failing_interface():
    conformant, outcome = activation_of("conformant")
    foreign, _ = activation_of("foreign-iid")
    partly = dataclasses.replace(conformant, interfaces=conformant.interfaces[:1] + foreign.interfaces)
    assert (partly.status, [i.hresult for i in partly.interfaces]) == (0, [0, 0x80004002])
    assert of_activation(outcome, partly) == "hresult 0x80004002"


def test_of_activation_without_an_activation_is_the_reply():
    t = read("activation-connect")
    assert of_activation(Outcome(pdus=(t.pdus[-1].raw,)), None) == "fault 0x00000005"
    assert of_activation(Outcome(pdus=(), closed=True), None) == "drop"


# -- the grammar ------------------------------------------------------------------------------


ACCEPTED = [
    ("accept", ("accept",)),
    ("drop", ("drop",)),
    (" Accept ", ("accept",)),
    ("fault 0x1C01000B", ("fault 0x1c01000b",)),
    ({"any": ["fault 0x00000005", "hresult 0x80070005"]}, ("fault 0x00000005", "hresult 0x80070005")),
    ({"deny": ["disposition 2", "disposition 0x80094800"]}, ("disposition 2", "disposition 0x80094800")),
    ({"any": ["bind_nak 9", "reject 2", "drop"]}, ("bind_nak 9", "reject 2", "drop")),
    ("activation hresult 0x80070005", ("activation hresult 0x80070005",)),
    ("activation accept", ("activation accept",)),
]

REFUSED = [
    42, None, ["accept"], {}, {"any": []}, {"any": "accept"}, {"all": ["accept"]},
    {"any": ["accept"], "deny": ["drop"]}, "fault 5", "fault 0x5", "hresult 0x800700051", "fault 0x1c01000g",
    "silent", "unverifiable response", "ptype 0", "submit accept", "activation silent", "activation activation accept",
    "bind_nak", "reject", "disposition", "accepted", {"any": ["accept", 5]}, {"any": ["accept", "silent"]},
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED, ids=[repr(a) for a, _ in ACCEPTED])
def test_parse_expectation_accepts_the_documented_forms(raw, expected):
    assert outcomes.parse_expectation(raw) == expected
    assert all(outcomes.EXPECTABLE.match(e) for e in expected)


@pytest.mark.parametrize("raw", REFUSED, ids=[repr(r) for r in REFUSED])
def test_parse_expectation_refuses_everything_else(raw):
    with pytest.raises(ValueError, match="expect is|is not a known form"):
        outcomes.parse_expectation(raw)


def test_constructors_write_expectable_outcomes():
    written = [outcomes.ACCEPT, outcomes.DROP, outcomes.fault(0x1C01000B), outcomes.hresult(0x80070005),
               outcomes.disposition(3), outcomes.disposition(0x80094800), outcomes.bind_nak(9),
               outcomes.reject(2), outcomes.activation(outcomes.hresult(5))]
    for text in written:
        assert outcomes.parse_expectation(text) == (text,)
    for never in (outcomes.SILENT, outcomes.UNVERIFIABLE, outcomes.ptype(12), outcomes.step("submit", "accept")):
        assert not outcomes.EXPECTABLE.match(never)


@pytest.mark.parametrize("text", ["disposition 0x00000005", "disposition 300"])
def test_every_expectable_disposition_can_be_observed(text):
    parsed, = outcomes.parse_expectation(text)
    value = int(parsed.split()[1], 0)
    assert outcomes.disposition(value) == parsed
