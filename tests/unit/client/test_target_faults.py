"""The client's parsers of the target's bytes raise one thing, whatever the bytes:
:class:`conformance.client.errors.MalformedReply` (a ``TargetFault``), or they return a
value whose fields can be read.  Recorded replies of the reference CA, cut short and
mutated with the NDR fuzzer's operations, seeded; no sockets (the socket edge:
tests/integration/test_client_target_faults.py)."""

from __future__ import annotations

import random
import struct

import pytest

from conformance.client.dcom import parse_activation, split_orpc_response
from conformance.client.errors import MalformedReply
from conformance.client.rpc import Outcome, dissected
from conformance.judge.outcome import of_reply
from conformance.testkit.fuzz.choose import RandomChooser, pick
from conformance.testkit.fuzz.ndr import _NDR_OPS, _mutate_stub
from conformance.wire import wcce
from conformance.wire.dcom import DualStringArray
from tests.support.recorded import read

CONFORMANT = read("conformant")
REPLIES = [p.raw for name in ("replies", "conformant", "level-2") for p in read(name).pdus
           if p.direction.value == "s2c"]
#: one reply of each PDU type (bind_ack, bind_nak, alter_context_resp, fault, response)
ONE_OF_EACH = list({pdu[2]: pdu for pdu in reversed(REPLIES)}.values())
ACTIVATION = CONFORMANT.pdus[9].plain  # RemoteCreateInstance_Response, unsealed
REQUEST_RESPONSE = CONFORMANT.pdus[21].plain  # Request_Response with the certificate


def mutated(data: bytes, seed: int) -> bytes:
    choose = RandomChooser(random.Random(seed))
    out = bytearray(data)
    for _ in range(1 + seed % 3):
        _mutate_stub(choose, out, pick(choose, _NDR_OPS))
    return bytes(out)


def framed(pdu: bytes) -> bytes:
    """``pdu`` with frag_len saying its length (what the framer hands the client)."""
    out = bytearray(pdu)
    struct.pack_into("<H", out, 8, len(out))
    return bytes(out)


def test_every_reply_cut_short_is_read_or_malformed():
    for pdu in ONE_OF_EACH:
        for end in [*range(16, min(len(pdu), 128)), *range(128, len(pdu), 61)]:
            outcome = Outcome(pdus=(framed(pdu[:end]),))
            try:
                text = of_reply(outcome)
            except MalformedReply as exc:
                assert exc.observed.startswith("malformed ")
            else:
                assert text


@pytest.mark.parametrize("seed", range(200))
def test_every_mutated_reply_is_read_or_malformed(seed):
    pdu = REPLIES[seed % len(REPLIES)]
    body = mutated(pdu[16:], seed)
    try:
        of_reply(Outcome(pdus=(framed(pdu[:16] + body),)))
    except MalformedReply:
        pass


def test_a_bind_ack_whose_results_are_cut_is_malformed():
    bind_ack = next(p for p in REPLIES if p[2] == 12)
    with pytest.raises(MalformedReply, match="malformed bind_ack"):
        dissected(framed(bind_ack[:-30] if len(bind_ack) > 60 else bind_ack[:30]))


@pytest.mark.parametrize("seed", range(150))
def test_a_mutated_activation_reply_parses_or_is_malformed(seed):
    data = mutated(ACTIVATION, seed) if seed else ACTIVATION
    try:
        activation = parse_activation(data)
    except MalformedReply as exc:
        assert exc.observed == "malformed activation reply"
    else:
        assert isinstance(activation.status, int)


@pytest.mark.parametrize("end", [0, 4, 8, 20, 100, 400, 687])
def test_an_activation_reply_cut_short_is_malformed(end):
    with pytest.raises(MalformedReply):
        parse_activation(ACTIVATION[:end])


@pytest.mark.parametrize("seed", range(150))
def test_a_mutated_response_stub_decodes_or_is_malformed(seed):
    data = mutated(REQUEST_RESPONSE, seed)
    try:
        _, response = split_orpc_response(data, wcce.Request_Response)
    except MalformedReply as exc:
        assert exc.observed == "malformed Request response"
    else:
        int(response.status), int(response.pdwDisposition)


@pytest.mark.parametrize("stub", [b"", bytes(8), bytes(3)])
def test_a_response_stub_without_its_out_parameters_is_malformed(stub):
    """scapy fills an empty packet with defaults: status 0, disposition 0 would be an answer."""
    with pytest.raises(MalformedReply):
        split_orpc_response(stub, wcce.Request_Response)


@pytest.mark.parametrize("seed", range(300))
def test_a_dualstringarray_of_random_bytes_parses_or_raises_value_error(seed):
    rng = random.Random(seed)
    array = rng.randbytes(rng.randrange(0, 80) * 2)
    try:
        DualStringArray.from_array(array, rng.randrange(0, len(array) // 2 + 3))
    except ValueError:
        pass


@pytest.mark.parametrize("array, offset, message", [
    (b"\x07\x00a\x00", 2, "no terminating NUL"),
    (b"\x07", 0, "aStringArray of 1 bytes"),
    (b"\x00\x00\x00\x00", 5, "wSecurityOffset 5"),
    (b"\x07\x00\x00\xd8\x00\x00\x00\x00", 4, "not UTF-16"),
])
def test_a_broken_dualstringarray_says_what_is_wrong(array, offset, message):
    with pytest.raises(ValueError, match=message):
        DualStringArray.from_array(array, offset)
