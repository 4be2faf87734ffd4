"""The association's protected responses, several on one security context (sans-IO, on
bytes): the reference answers each with the context's next sequence number; the two
switches its mutants turn (``advance_response_sequence``, ``sign_responses_correctly``)
break exactly that, and both the client and the passive reader of the wire
(``response-protection``, RPCE-PROT-02) see it."""

from __future__ import annotations

import itertools

import pytest

from conformance.client.rpc import RpcConnection
from conformance.judge.checks import CheckContext, run_check
from conformance.model import outcomes
from conformance.judge.outcome import of_reply
from conformance.model.verdicts import Direction, Verdict
from conformance.wire.transcript import Chunk, Connection, Endpoint, build_transcript
from tests.unit.refca.loopback import CONN, LoopbackSocket, USERS, security
from tests.unit.refca.scenarios import IFACE, association

CALLS = 3


class RecordingSocket(LoopbackSocket):
    """The loopback socket, keeping every byte each way as the tap would."""

    def __init__(self, assoc) -> None:
        super().__init__(assoc)
        self.chunks: list[Chunk] = []
        self._clock = itertools.count()

    def _keep(self, direction: Direction, data: bytes) -> None:
        if data:
            self.chunks.append(Chunk(conn=1, direction=direction, time=float(next(self._clock)), data=data))

    def sendall(self, data: bytes) -> None:
        self._keep(Direction.TO_SERVER, data)
        super().sendall(data)

    def recv(self, size: int) -> bytes:
        data = super().recv(size)
        self._keep(Direction.TO_CLIENT, data)
        return data

    def transcript(self):
        connection = Connection(conn=1, client=Endpoint(CONN.peer_host, CONN.peer_port),
                                server=Endpoint(CONN.local_host, CONN.local_port), opened=0.0)
        return build_transcript(self.chunks, [connection], identities=USERS)


class _Tap:
    def __init__(self, sock: RecordingSocket) -> None:
        self.sock = sock

    def connect(self, host, port, timeout=None) -> RecordingSocket:
        return self.sock


def calls(auth_type: int, level: int, **policy) -> tuple[list[str], RecordingSocket]:
    """Bind IFACE at ``level`` and make :data:`CALLS` calls on the one security context:
    the outcome of each (until the first that is not a verified response) and the wire."""
    sock = RecordingSocket(association(**policy))
    conn = RpcConnection(CONN.local_host, CONN.local_port, security=security(auth_type, level), tap=_Tap(sock))
    conn.bind(IFACE)
    assert conn.protection is not None
    seen = []
    for _ in range(CALLS):
        outcome, _ = conn.call(IFACE, 1, b"abcd" * 4)
        seen.append(of_reply(outcome))
        if seen[-1] != outcomes.ACCEPT:
            break
    return seen, sock


def judged(sock: RecordingSocket):
    return run_check("response-protection", sock.transcript(), CheckContext())


@pytest.mark.parametrize("auth_type", [9, 10])
@pytest.mark.parametrize("level", [4, 5, 6])
def test_the_reference_advances_the_sequence_with_every_response(auth_type, level):
    seen, sock = calls(auth_type, level)
    assert seen == [outcomes.ACCEPT] * CALLS
    result = judged(sock)
    assert (result.verdict, result.actual) == (Verdict.PASS, f"{CALLS} protected responses verify, in sequence")


@pytest.mark.parametrize("auth_type", [9, 10])
@pytest.mark.parametrize("level", [4, 5, 6])
def test_a_stuck_sequence_passes_one_call_and_fails_the_second(auth_type, level):
    """What most cases miss (one call per context) and several calls catch: the client finds
    the second response unverifiable, the wire shows its sequence number repeated."""
    seen, sock = calls(auth_type, level, advance_response_sequence=False)
    assert seen == [outcomes.ACCEPT, outcomes.UNVERIFIABLE]
    result = judged(sock)
    t = sock.transcript()
    responses = [p.index for p in t.pdus if p.ptype_name == "response"]
    first = 1 if auth_type == 9 else 0  # SPNEGO's mechListMIC took NTLM sequence number 0
    assert result.verdict is Verdict.FAIL and result.evidence == (responses[1],)
    assert result.actual == (f"1 of 2 responses to protected calls do not verify: #{responses[1]} repeats "
                             f"sequence number {first}")


@pytest.mark.parametrize("auth_type", [9, 10])
@pytest.mark.parametrize("level", [4, 5, 6])
def test_a_corrupted_signature_fails_the_first_response(auth_type, level):
    seen, sock = calls(auth_type, level, sign_responses_correctly=False)
    assert seen == [outcomes.UNVERIFIABLE]
    result = judged(sock)
    t = sock.transcript()
    (response,) = [p.index for p in t.pdus if p.ptype_name == "response"]
    assert (result.verdict, result.evidence) == (Verdict.FAIL, (response,))
    assert result.actual == f"1 of 1 responses to protected calls do not verify: #{response} does not verify"


def test_calls_at_connect_have_no_protected_response():
    seen, sock = calls(10, 2)
    assert seen == [outcomes.ACCEPT] * CALLS
    result = judged(sock)
    assert (result.verdict, result.actual) == (Verdict.NA, "no protected response on the wire")
