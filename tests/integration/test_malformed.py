"""Malformed and hostile PDUs never crash or hang the reference CA.

Each entry of the corpus is sent on its own connection; its expected answer is
data (Samba style: a fault status, a bind_nak reason, or "the connection must
drop").  After every entry a fresh valid client must still be served, and at the
end a full enrollment must still work.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time
from collections.abc import Callable

import pytest
from scapy.layers.dcerpc import (
    DceRpc5, DceRpc5AbstractSyntax, DceRpc5Bind, DceRpc5Context, DceRpc5Request,
    DceRpc5TransferSyntax,
)
from scapy.packet import Raw

from conformance.client.rpc import RpcConnection
from conformance.model.profile import DEFAULT_DROP_WAIT
from conformance.wire import wcce
from conformance.wire.dcom import IID_IOBJECT_EXPORTER
from conformance.wire.pdu import auth_verifier
from conformance.wire.rpc import NDR20, BindNakReason, FaultStatus, PType
from tests.support.ourclient import open_session, request, security

FIRST, LAST = 0x01, 0x02


def bind_body(*, interface=IID_IOBJECT_EXPORTER, if_version=0, **fields) -> DceRpc5Bind:
    return DceRpc5Bind(context_elem=[DceRpc5Context(
        cont_id=0, abstract_syntax=DceRpc5AbstractSyntax(if_uuid=interface, if_version=if_version),
        transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=NDR20[0], if_version=NDR20[1])])],
        **fields)


def bind(*, call_id=1, body: dict | None = None, **header) -> DceRpc5:
    return DceRpc5(call_id=call_id, **header) / bind_body(**(body or {}))


def authenticated_bind(auth_type: int, token: bytes) -> bytes:
    verifier = auth_verifier(auth_type=auth_type, auth_level=6, context_id=0, token=token)
    verifier.auth_pad_length = None
    return bytes(DceRpc5(call_id=1, auth_verifier=verifier) / bind_body())


def req(opnum: int, stub: bytes = b"", *, call_id=2, cont_id=0, pfc_flags=FIRST | LAST,
        **header) -> DceRpc5:
    return DceRpc5(call_id=call_id, pfc_flags=pfc_flags, **header) / DceRpc5Request(
        alloc_hint=len(stub), cont_id=cont_id, opnum=opnum) / Raw(stub)


def patched(pkt, offset: int, value: bytes) -> bytes:
    """Build ``pkt`` and overwrite bytes at a named offset."""
    data = bytearray(bytes(pkt))
    data[offset:offset + len(value)] = value
    return bytes(data)


OFF_DREP, OFF_FRAG_LEN, OFF_AUTH_LEN = 4, 8, 10
BOUND = [bytes(bind())]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    send: list[bytes]  # chunks, each sent with its own sendall()
    expect: str  # "nak:<reason>", "fault:<status>", "drop", "ptype:<n>", "silent"
    drop: bool = True  # the connection must be gone afterwards
    prefix: list[bytes] = dataclasses.field(default_factory=list)  # sent first, answers ignored
    half_close: bool = False


CORPUS = [
    Case("truncated header, then EOF", [bytes(bind())[:10]], "drop", half_close=True),
    Case("frag_len shorter than the header", [patched(bind(), OFF_FRAG_LEN, b"\x0a\x00")], "drop"),
    Case("rpc_vers 4 on a CO transport", [patched(bind(), 0, b"\x04")], "drop"),
    Case("undefined drep", [patched(bind(), OFF_DREP, b"\x30")], "drop"),
    Case("frag_len beyond the data, then EOF", [patched(bind(), OFF_FRAG_LEN, b"\xc8\x00")], "drop",
         half_close=True),
    Case("auth_length beyond the fragment", [patched(bind(), OFF_AUTH_LEN, b"\xf4\x01")],
         f"nak:{BindNakReason.NOT_SPECIFIED}"),
    Case("n_context_elem larger than the list", [patched(bind(), 24, b"\x05")],
         f"nak:{BindNakReason.NOT_SPECIFIED}"),
    Case("bind with no presentation context", [bytes(DceRpc5(call_id=1) / DceRpc5Bind())],
         f"nak:{BindNakReason.NOT_SPECIFIED}"),
    Case("max_xmit_frag below 1432", [bytes(bind(body={"max_xmit_frag": 100, "max_recv_frag": 100}))],
         f"nak:{BindNakReason.NOT_SPECIFIED}"),
    Case("minor version 7", [bytes(bind(rpc_vers_minor=7))],
         f"nak:{BindNakReason.PROTOCOL_VERSION_NOT_SUPPORTED}"),
    Case("unknown auth_type in bind", [authenticated_bind(0x44, b"\x01" * 16)],
         f"nak:{BindNakReason.AUTHENTICATION_TYPE_NOT_RECOGNIZED}"),
    Case("garbage NTLM token in bind",
         [authenticated_bind(0x0A, b"NTLMSSP\x00\x01" + b"\xff" * 20)],
         f"nak:{BindNakReason.INVALID_CHECKSUM}"),
    Case("request before bind", [bytes(req(5))], f"fault:{FaultStatus.NCA_S_PROTO_ERROR}"),
    Case("second bind on a bound association", [bytes(bind(call_id=3))],
         f"nak:{BindNakReason.NOT_SPECIFIED}", prefix=BOUND),
    Case("bad NDR for ResolveOxid2", [bytes(req(4, b"\xff\xff\xff"))],
         f"fault:{FaultStatus.RPC_X_BAD_STUB_DATA}", drop=False, prefix=BOUND),
    Case("opnum out of range", [bytes(req(99))], f"fault:{FaultStatus.NCA_S_OP_RNG_ERROR}",
         drop=False, prefix=BOUND),
    Case("unknown presentation context", [bytes(req(5, cont_id=7))],
         f"fault:{FaultStatus.NCA_S_UNK_IF}", drop=False, prefix=BOUND),
    Case("middle fragment without a first", [bytes(req(1, b"\0" * 8, pfc_flags=0))],
         f"fault:{FaultStatus.NCA_S_PROTO_ERROR}", prefix=BOUND),
    Case("new call while a fragmented call is pending",
         [bytes(req(1, b"\0" * 4, pfc_flags=FIRST)) + bytes(req(1, b"\0" * 4, call_id=9))],
         f"fault:{FaultStatus.NCA_S_PROTO_ERROR}", prefix=BOUND),
    Case("unknown PDU type", [patched(bind(), 2, b"\x63")], "drop"),
    Case("a client sending a bind_ack", [patched(bind(), 2, b"\x0c")], "drop"),
    Case("co_cancel is ignored", [patched(req(5), 2, b"\x12")], "silent", drop=False, prefix=BOUND),
    Case("auth3 without a security context", [patched(req(5), 2, b"\x10")], "silent", drop=False,
         prefix=BOUND),
    Case("random bytes after a valid header", [bytes(bind())[:16] + bytes(range(256))[:100]],
         f"nak:{BindNakReason.NOT_SPECIFIED}"),
]


def _answer(conn: RpcConnection) -> str:
    pdu = conn.recv_pdu(timeout=5)
    if pdu is None:
        return "drop" if conn.closed_by_peer else "silent"
    pkt = DceRpc5(pdu)
    if pkt.ptype == PType.BIND_NAK:
        return f"nak:{pkt.provider_reject_reason}"
    if pkt.ptype == PType.FAULT:
        return f"fault:{pkt.status}"
    return f"ptype:{pkt.ptype}"


def assert_still_serving(ca) -> None:
    with RpcConnection(ca.config.listen.host, ca.activation_port, timeout=5) as conn:
        assert conn.bind(IID_IOBJECT_EXPORTER).ptype == PType.BIND_ACK
        outcome, stub = conn.call(IID_IOBJECT_EXPORTER, 5, b"")  # ServerAlive2
        assert outcome.ptype == PType.RESPONSE and stub[-4:] == b"\0\0\0\0"


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_malformed_pdu(ca, case):
    with RpcConnection(ca.config.listen.host, ca.activation_port, timeout=5) as conn:
        for pdu in case.prefix:
            conn.send(pdu)
            conn.recv_pdu(timeout=5)
        for chunk in case.send:
            conn.sock.sendall(chunk)
        if case.half_close:
            conn.sock.shutdown(socket.SHUT_WR)
        answer = _answer(conn)
        if case.expect == "silent":
            assert answer == "silent"
        else:
            assert answer == case.expect
        if case.drop:
            # "the connection must drop" is an assertion of its own
            assert conn.recv_pdu(timeout=5) is None and conn.closed_by_peer
        else:
            assert conn.is_connected(DEFAULT_DROP_WAIT)
    assert_still_serving(ca)


def test_pdus_split_across_reads_and_coalesced(ca):
    with RpcConnection(ca.config.listen.host, ca.activation_port, timeout=5) as conn:
        for byte in bytes(bind()):
            conn.sock.sendall(bytes([byte]))
        assert _answer(conn) == f"ptype:{PType.BIND_ACK}"
        two = bytes(req(5, call_id=2)) + bytes(req(5, call_id=3))
        conn.sock.sendall(two[:7])
        time.sleep(0.05)
        conn.sock.sendall(two[7:])
        answers = [DceRpc5(conn.recv_pdu(timeout=5)) for _ in range(2)]
        assert [(a.ptype, a.call_id) for a in answers] == [(PType.RESPONSE, 2), (PType.RESPONSE, 3)]


def test_fragmented_request_is_reassembled(ca):
    stub = struct.pack("<Q", 0x1234)  # SimplePing(SETID): an unknown set
    with RpcConnection(ca.config.listen.host, ca.activation_port, timeout=5) as conn:
        assert conn.bind(IID_IOBJECT_EXPORTER).ptype == PType.BIND_ACK
        conn.send(bytes(req(1, stub[:4], call_id=5, pfc_flags=FIRST)))
        assert conn.recv_pdu(timeout=0.3) is None and not conn.closed_by_peer
        conn.send(bytes(req(1, stub[4:], call_id=5, pfc_flags=LAST)))
        answer = DceRpc5(conn.recv_pdu(timeout=5))
        assert answer.ptype == PType.RESPONSE
        assert struct.unpack("<I", bytes(answer[Raw].load)[-4:])[0] == FaultStatus.OR_INVALID_SET


def test_a_stalled_partial_pdu_does_not_block_other_clients(ca):
    stalled = socket.create_connection((ca.config.listen.host, ca.activation_port))
    try:
        stalled.sendall(bytes(bind())[:30])  # and never the rest
        assert_still_serving(ca)
    finally:
        stalled.close()


# -- authenticated, on the object exporter ---------------------------------------------


def _tamper_token(pdu: bytes) -> bytes:
    return pdu[:-3] + bytes([pdu[-3] ^ 0x40]) + pdu[-2:]


def _tamper_body(pdu: bytes) -> bytes:
    return pdu[:50] + bytes([pdu[50] ^ 0x01]) + pdu[51:]


def _set_level(pdu: bytes) -> bytes:
    from conformance.wire.framing import CommonHeader
    from conformance.wire.protection import SecTrailer

    trailer = SecTrailer.parse(pdu, CommonHeader.parse(pdu))
    return pdu[:trailer.offset + 1] + b"\x05" + pdu[trailer.offset + 2:]


AUTH_CASES: list[tuple[str, Callable[[bytes], list[bytes]], str]] = [
    ("tampered signature", lambda p: [_tamper_token(p)], f"fault:{FaultStatus.RPC_S_SEC_PKG_ERROR}"),
    ("tampered sealed body", lambda p: [_tamper_body(p)], f"fault:{FaultStatus.RPC_S_SEC_PKG_ERROR}"),
    ("replayed sealed PDU", lambda p: [p, p], f"fault:{FaultStatus.RPC_S_SEC_PKG_ERROR}"),
    ("sec_trailer names another level", lambda p: [_set_level(p)], f"fault:{FaultStatus.ACCESS_DENIED}"),
]


@pytest.mark.parametrize("name, mutate, expect", AUTH_CASES, ids=[c[0] for c in AUTH_CASES])
@pytest.mark.parametrize("auth_type", [9, 10], ids=["spnego-ntlm", "ntlm"])
def test_hostile_protected_request(ca, name, mutate, expect, auth_type):
    from conformance.client.dcom import orpc_request_stub

    session = open_session(ca, security(auth_type, 6))
    try:
        conn = session.exporter
        stub = orpc_request_stub(wcce.Ping_Request(pwszAuthority="WCCE-LAB-CA"))
        pdu = conn.request_pdu(5, stub, cont_id=conn.contexts[wcce.IID_ICERTREQUESTD],
                               object_uuid=session.activation.ipid(wcce.IID_ICERTREQUESTD))
        pdus = mutate(pdu)
        for extra in pdus[:-1]:
            conn.send(extra)
            assert DceRpc5(conn.recv_pdu(timeout=5)).ptype == PType.RESPONSE
        conn.send(pdus[-1])
        assert _answer(conn) == expect
        assert conn.recv_pdu(timeout=5) is None and conn.closed_by_peer
    finally:
        session.close()
    assert_still_serving(ca)


def test_request_without_verifier_on_a_privacy_context(ca):
    """Windows serves it under no identity and the interface decides (ledger
    rpc/request/no-verifier): the exporter refuses the unauthenticated caller with
    access_denied, nothing is stored, and the connection stays usable."""
    from conformance.client.dcom import orpc_request_stub

    session = open_session(ca, security(9, 6))
    try:
        conn = session.exporter
        stub = orpc_request_stub(request())
        conn.send(bytes(DceRpc5(call_id=50, pfc_flags=FIRST | LAST | 0x80) / DceRpc5Request(
            alloc_hint=len(stub), cont_id=conn.contexts[wcce.IID_ICERTREQUESTD], opnum=wcce.Opnum.REQUEST,
            object=session.activation.ipid(wcce.IID_ICERTREQUESTD)) / Raw(stub)))
        assert _answer(conn) == f"fault:{FaultStatus.ACCESS_DENIED}"
        assert conn.is_connected(DEFAULT_DROP_WAIT)
        assert ca.store.count() == 0
        assert session.call(request()).response.pdwDisposition == wcce.Disposition.ISSUED
    finally:
        session.close()


def test_enrollment_still_works_after_the_corpus(ca):
    for case in CORPUS:
        with RpcConnection(ca.config.listen.host, ca.activation_port, timeout=5) as conn:
            for chunk in case.prefix + case.send:
                conn.sock.sendall(chunk)
            conn.recv_pdu(timeout=1)
    session = open_session(ca, security(9, 6))
    try:
        assert session.call(request()).response.pdwDisposition == wcce.Disposition.ISSUED
    finally:
        session.close()
    assert ca.store.count() == 1
