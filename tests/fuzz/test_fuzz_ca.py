"""Fuzzing the reference CA with hypothesis over real loopback sockets.

Each test draws one kind of input from :mod:`conformance.testkit.fuzz` (a fixed seed:
``derandomize``), sends it with :mod:`conformance.testkit.fuzzrun` to a fresh reference
CA, and holds every answer to the judge: never a hang, always an acceptable
answer, nothing logged at ERROR by the CA.  Afterwards the CA must still be
listening, a valid client must still enroll, and the request store must be sound.
The long seeded run is ``bench/bench_fuzz.py``.
"""

from __future__ import annotations

import random
import sqlite3
import struct

import pytest
from hypothesis import HealthCheck, example, given, settings

from conformance.testkit import fuzz
from conformance.client import methods
from conformance.client.dcom import orpc_request_stub
from conformance.testkit.fuzzrun import CrashWatch, FuzzRunner, FuzzTarget
from conformance.refca.requests import RequestRejected, parse_request
from conformance.refca.rpc.dispatch import BadStubData, dissect_stub
from conformance.refca.rpc.syntax import negotiate_contexts
from conformance.wire import wcce
from conformance.wire.dcom import IREMUNKNOWN2_OPNUMS
from conformance.wire.rpc import FaultStatus
from tests.conftest import CA_NAME, USERS

AnswerClass = fuzz.AnswerClass
_SOCKET_FUZZ = dict(derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_AUTHENTICATED = tuple((e, 1) for e in fuzz.Exchange if e.authenticated)
_PLAIN = tuple((e, w) for e, w in fuzz.EXCHANGE_WEIGHTS if not e.authenticated)


@pytest.fixture
def watch():
    with CrashWatch() as crash_watch:
        yield crash_watch


@pytest.fixture
def runner(ca, watch):
    target = FuzzTarget(host=ca.config.listen.host, activation_port=ca.activation_port, user="alice",
                        password=USERS["alice"], ca_name=CA_NAME)
    with FuzzRunner(target) as fuzz_runner:
        yield fuzz_runner
    assert_still_serving(ca, fuzz_runner, watch)


def assert_still_serving(ca, fuzz_runner: FuzzRunner, watch: CrashWatch) -> None:
    """After the inputs: no crash, both listeners alive, a valid client enrolls, the
    request store is sound and holds every request the CA reports."""
    assert fuzz_runner.late_drops == 0, "the CA closed a sealed session after answering"
    fuzz_runner.close()
    assert fuzz_runner.enroll() == 3, "a valid client no longer enrolls"
    assert not watch.records, watch.records[0]
    assert ca._activation._thread.is_alive() and ca._exporter._thread.is_alive()  # accept loops
    path = ca.config.state_dir / "requests.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        issued_without_cert = db.execute(
            "SELECT COUNT(*) FROM requests WHERE status='issued' AND certificate_der IS NULL").fetchone()[0]
    finally:
        db.close()
    assert rows == ca.store.count() >= 1 and issued_without_cert == 0


def seeded(kind: fuzz.Kind, count: int, **options) -> list:
    choose = fuzz.RandomChooser(random.Random(0))
    return [fuzz.generate(choose, kind, **options) for _ in range(count)]


def with_examples(items):
    """Explicit examples besides hypothesis' own: derandomized draws need not reach
    every method or exchange, these do."""
    def decorate(test):
        for item in items:
            test = example(item=item)(test)
        return test
    return decorate


#: two inputs per NDR method, three per authenticated exchange
_EVERY_METHOD = [i for t in fuzz.NDR_TARGETS for i in seeded(fuzz.Kind.NDR, 2, targets=(t,))]
_EVERY_LEG = [i for e, _ in _AUTHENTICATED for i in seeded(fuzz.Kind.PDU, 3, exchanges=((e, 1),))]


def judge(fuzz_runner: FuzzRunner, watch: CrashWatch, item) -> fuzz.Answer:
    answer = fuzz_runner.send(item)
    assert answer.cls is not AnswerClass.TIMEOUT, f"{item.label}: the CA hung"
    assert answer.cls in fuzz.acceptable(item), f"{item.label}: {answer.label}"
    assert not watch.records, f"{item.label}: {watch.records[0]}"
    return answer


@settings(max_examples=120, **_SOCKET_FUZZ)
@given(item=fuzz.strategy(fuzz.Kind.RAW))
def test_raw_bytes(runner, watch, item):
    judge(runner, watch, item)


@settings(max_examples=120, **_SOCKET_FUZZ)
@given(item=fuzz.strategy(fuzz.Kind.PDU, exchanges=_PLAIN))
def test_one_field_of_a_plain_pdu(runner, watch, item):
    judge(runner, watch, item)


@settings(max_examples=16, **_SOCKET_FUZZ)
@given(item=fuzz.strategy(fuzz.Kind.PDU, exchanges=_AUTHENTICATED))
@with_examples(_EVERY_LEG)
def test_one_field_of_an_authentication_leg_or_sealed_request(runner, watch, item):
    judge(runner, watch, item)


@settings(max_examples=80, **_SOCKET_FUZZ)
@given(item=fuzz.strategy(fuzz.Kind.FRAGMENTS))
def test_fragment_sequences(runner, watch, item):
    judge(runner, watch, item)


@settings(max_examples=100, **_SOCKET_FUZZ)
@given(item=fuzz.strategy(fuzz.Kind.NDR))
@with_examples(_EVERY_METHOD)
def test_mutated_ndr_in_sealed_calls(runner, watch, item):
    judge(runner, watch, item)


# -- regressions: inputs the fuzzer found ------------------------------------------------

_ORPCTHIS_LEN = 32


def truncated_rem_add_ref() -> fuzz.NdrInput:
    """RemAddRef whose one REMINTERFACEREF is cut short: scapy kept it as Raw bytes and
    the exporter met ``ref.ipid`` on them (AttributeError, connection dropped)."""
    stub = fuzz.valid_stub("IRemUnknown2.RemAddRef")[:_ORPCTHIS_LEN + 16]
    return fuzz.NdrInput(label="ndr/regression/rem-add-ref-cut", target="IRemUnknown2.RemAddRef", stub=stub)


def test_a_list_element_cut_short_is_bad_stub_data(runner, watch):
    answer = judge(runner, watch, truncated_rem_add_ref())
    assert answer == fuzz.Answer(cls=AnswerClass.FAULT, detail=FaultStatus.RPC_X_BAD_STUB_DATA, pdus=1)


def test_dissect_stub_refuses_undissected_list_elements():
    args = truncated_rem_add_ref().stub[_ORPCTHIS_LEN:]
    with pytest.raises(BadStubData):
        dissect_stub(IREMUNKNOWN2_OPNUMS[4].request, args, little_endian=True)


def test_a_string_cut_short_is_bad_stub_data(runner, watch):
    """Ping whose CA name stops mid-string: scapy kept actual_count 12 over the bytes
    that were there, and the CA answered for the name "WCCE-LA" instead of faulting."""
    cut = fuzz.valid_stub("ICertRequestD.Ping")[:_ORPCTHIS_LEN + 30]
    item = fuzz.NdrInput(label="ndr/regression/ping-name-cut", target="ICertRequestD.Ping", stub=cut,
                         ops=("truncate",))
    answer = judge(runner, watch, item)
    assert answer == fuzz.Answer(cls=AnswerClass.FAULT, detail=FaultStatus.RPC_X_BAD_STUB_DATA, pdus=1)
    with pytest.raises(BadStubData, match="truncated"):
        dissect_stub(wcce.Ping_Request, cut[_ORPCTHIS_LEN:], little_endian=True)


def activation_with(field_offset: int, value: int) -> fuzz.NdrInput:
    """RemoteCreateInstance whose InstantiationInfoData ([MS-DCOM] 2.2.22.2.1: classId,
    classCtx, actvflags, fIsSurrogate, cIID, instFlag, pIID ...) has one word changed;
    ``field_offset`` counts from classId."""
    stub = bytearray(fuzz.valid_stub("IRemoteSCMActivator.RemoteCreateInstance"))
    at = stub.index(wcce.CLSID_CCERTREQUESTD.bytes_le) + field_offset
    struct.pack_into("<I", stub, at, value)
    return fuzz.NdrInput(label=f"ndr/regression/activation-{field_offset}={value}",
                         target="IRemoteSCMActivator.RemoteCreateInstance", stub=bytes(stub))


_CIID, _PIID = 28, 36


@pytest.mark.parametrize("item, expected", [
    # cIID 3 over two GUIDs: the third is read short (ValueError in the SCM, found by the long run)
    (activation_with(_CIID, 3), fuzz.Answer(cls=AnswerClass.FAULT, detail=FaultStatus.RPC_X_BAD_STUB_DATA, pdus=1)),
    # a NULL pIID: no interface asked for (TypeError in the SCM); an activation error
    (activation_with(_PIID, 0), fuzz.Answer(cls=AnswerClass.RESPONSE, pdus=1)),
], ids=["cIID-beyond-the-array", "null-pIID"])
def test_activation_properties_read_past_their_end(runner, watch, item, expected):
    assert judge(runner, watch, item) == expected


def csr_of_version(version: int) -> bytes:
    """A PKCS#10 whose version INTEGER (the first ``02 01 00``) says ``version``."""
    csr = methods.new_pkcs10("fuzz-version")
    at = csr.index(b"\x02\x01\x00") + 2
    return csr[:at] + bytes([version]) + csr[at + 1:]


def test_a_pkcs10_of_another_version_is_refused_not_crashed(runner, watch):
    """cryptography raises InvalidVersion, which is not a ValueError: the request
    handler's thread died (found by the dispatcher-level scan of every single flip)."""
    with pytest.raises(RequestRejected):
        parse_request(csr_of_version(1), wcce.RequestType.PKCS10)
    stub = orpc_request_stub(methods.request(CA_NAME, csr_of_version(1)))
    item = fuzz.NdrInput(label="ndr/regression/pkcs10-version-1", target="ICertRequestD.Request", stub=stub)
    assert judge(runner, watch, item) == fuzz.Answer(cls=AnswerClass.RESPONSE, pdus=1)


@pytest.mark.parametrize("exchange, expected", [
    # auth_length 16 makes the last 24 bytes a sec_trailer: the context list is cut short
    (fuzz.Exchange.ALTER, fuzz.Answer(cls=AnswerClass.FAULT, detail=FaultStatus.NCA_S_PROTO_ERROR, pdus=1)),
    (fuzz.Exchange.BIND, fuzz.Answer(cls=AnswerClass.BIND_NAK, detail=0, pdus=1)),
])
def test_a_context_list_cut_short_by_auth_length(runner, watch, exchange, expected):
    item = fuzz.PduInput(label="pdu/regression/auth_length-16", exchange=exchange,
                         mutation=fuzz.Mutation(op="set", field="auth_length", value=16))
    assert judge(runner, watch, item) == expected


def test_negotiate_contexts_refuses_an_incomplete_proposal():
    from scapy.packet import Raw

    with pytest.raises(ValueError, match="incomplete"):
        negotiate_contexts([Raw(b"\x00\x01")], {}, lambda *_: True, bind_time_features=0)
