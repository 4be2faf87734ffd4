"""Builders for connection-oriented DCE/RPC PDUs, on scapy's packet classes.

Each builder's defaults describe a valid PDU (Samba ``raw_testcase`` style), so a
caller names only what it changes.  Builders return scapy packets; ``bytes()``
of them is the wire form.  Protection (signature/seal) is applied afterwards by
:mod:`conformance.wire.protection` on the bytes.

The PDUs of every call — request and response — also have ``*_bytes`` builders: the same
bytes from the heads scapy declares, compiled (:mod:`conformance.wire.compiled`), without
building a packet (the hot path of the CA and the client; ``tests/unit/wire/test_compiled.py``
holds them to ``bytes()`` of the packet builders).
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
from collections.abc import Sequence

from scapy.layers.dcerpc import (
    CommonAuthVerifier,
    DceRpc5,
    DceRpc5AbstractSyntax,
    DceRpc5AlterContext,
    DceRpc5Bind,
    DceRpc5BindAck,
    DceRpc5BindNak,
    DceRpc5AlterContextResp,
    DceRpc5Context,
    DceRpc5Fault,
    DceRpc5PortAny,
    DceRpc5Request,
    DceRpc5Response,
    DceRpc5Result,
    DceRpc5TransferSyntax,
    DceRpc5Version,
)
from scapy.packet import Raw

from conformance.wire.compiled import layout
from conformance.wire.framing import CommonHeader
from conformance.wire.protection import SecTrailer, without_verifier
from conformance.wire.rpc import SEC_VT_MAGIC, ContextResult, PfcFlag, ProviderReason, PType

__all__ = [
    "ContextResultSpec",
    "header",
    "auth_verifier",
    "bind_ack",
    "bind_nak",
    "rejected",
    "fault",
    "response",
    "Verifier",
    "ContextSpec",
    "request_bytes",
    "response_bytes",
    "bind_bytes",
    "bind_ack_bytes",
    "Syntax",
    "ContextElem",
    "BindBody",
    "read_bind",
    "bind_body",
    "ResultElem",
    "AckBody",
    "NakBody",
    "FaultBody",
    "read_reply",
    "reply_body",
    "read_call_head",
]

_NULL_UUID = uuid.UUID(int=0)

ContextResultSpec = tuple[int, int, uuid.UUID, int]
"""(result, reason, transfer syntax UUID, transfer syntax version) of one p_result_t."""

ContextSpec = tuple[int, tuple[uuid.UUID, int], Sequence[tuple[uuid.UUID, int]]]
"""(cont_id, (interface UUID, if_version), ((transfer syntax UUID, version), ...)) of one p_cont_elem_t."""


def header(*, ptype_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG, call_id: int,
           little_endian: bool = True, auth: CommonAuthVerifier | None = None,
           auth_padding: bytes | None = None) -> DceRpc5:
    pkt = DceRpc5(
        pfc_flags=int(ptype_flags),
        call_id=call_id,
        endian=1 if little_endian else 0,
    )
    if auth is not None:
        pkt.auth_verifier = auth
        pkt.auth_padding = auth_padding if auth_padding is not None else b""
    return pkt


def auth_verifier(*, auth_type: int, auth_level: int, context_id: int, token: bytes,
                  pad_length: int = 0) -> CommonAuthVerifier:
    return CommonAuthVerifier(
        auth_type=auth_type,
        auth_level=auth_level,
        auth_pad_length=pad_length,
        auth_context_id=context_id,
        auth_value=Raw(token) if token else None,
    )


def bind_ack(*, call_id: int, alter: bool, max_xmit_frag: int, max_recv_frag: int,
             assoc_group_id: int, port_spec: str, results: Sequence[ContextResultSpec],
             pfc_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG,
             little_endian: bool = True, auth: CommonAuthVerifier | None = None) -> DceRpc5:
    """bind_ack (or alter_context_resp when ``alter``), C706 12.6.4.4."""
    cls = DceRpc5AlterContextResp if alter else DceRpc5BindAck
    # C706: an alter_context_resp carries an empty port_spec; bind_ack the port,
    # NUL-terminated ASCII.
    spec = b"" if alter else port_spec.encode("ascii") + b"\0"
    body = cls(
        max_xmit_frag=max_xmit_frag,
        max_recv_frag=max_recv_frag,
        assoc_group_id=assoc_group_id,
        sec_addr=DceRpc5PortAny(port_spec=spec),
        results=[
            DceRpc5Result(
                result=result,
                reason=reason,
                transfer_syntax=DceRpc5TransferSyntax(if_uuid=ts_uuid, if_version=ts_version),
            )
            for result, reason, ts_uuid, ts_version in results
        ],
    )
    pkt = header(ptype_flags=pfc_flags, call_id=call_id, little_endian=little_endian, auth=auth)
    if auth is not None:
        pkt.auth_padding = None  # let scapy align the trailer
        pkt.auth_verifier.auth_pad_length = None
    return pkt / body


def rejected(reason: ProviderReason) -> ContextResultSpec:
    return (ContextResult.PROVIDER_REJECTION, reason, _NULL_UUID, 0)


def bind_nak(*, call_id: int, reason: int, little_endian: bool = True,
             versions: Sequence[tuple[int, int]] = ((5, 0),)) -> DceRpc5:
    """bind_nak, [MS-RPCE] 2.2.2.5 (no extended error signature)."""
    return header(call_id=call_id, little_endian=little_endian) / DceRpc5BindNak(
        provider_reject_reason=reason,
        protocols=[DceRpc5Version(major=a, minor=b) for a, b in versions],
    )


def fault(*, call_id: int, status: int, cont_id: int = 0, did_not_execute: bool = True,
          little_endian: bool = True) -> DceRpc5:
    """rpc_fault, C706 12.6.4.7; never carries stub data ([MS-RPCE] 2.2.2.8)."""
    flags = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG
    if did_not_execute:
        flags |= PfcFlag.DID_NOT_EXECUTE
    return header(ptype_flags=flags, call_id=call_id, little_endian=little_endian) / DceRpc5Fault(
        alloc_hint=0, cont_id=cont_id, status=status,
    )


def response(*, call_id: int, cont_id: int, stub: bytes, alloc_hint: int,
             pfc_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG, little_endian: bool = True,
             auth: CommonAuthVerifier | None = None, auth_padding: bytes = b"") -> DceRpc5:
    pkt = header(ptype_flags=pfc_flags, call_id=call_id, little_endian=little_endian, auth=auth,
                 auth_padding=auth_padding)
    return pkt / DceRpc5Response(alloc_hint=alloc_hint, cont_id=cont_id) / Raw(stub)


@dataclasses.dataclass(frozen=True, slots=True)
class Verifier:
    """A sec_trailer and its token (``auth_verifier`` with ``pad_length`` bytes of auth padding)."""

    auth_type: int
    auth_level: int
    context_id: int
    token: bytes
    pad_length: int = 0


def _trailer(verifier: Verifier | None, little_endian: bool) -> bytes:
    if verifier is None:
        return b""
    return b"\0" * verifier.pad_length + layout(CommonAuthVerifier, little_endian=little_endian).pack(dict(
        auth_type=verifier.auth_type, auth_level=verifier.auth_level, auth_pad_length=verifier.pad_length,
        auth_context_id=verifier.context_id)) + verifier.token


def _pdu(ptype: int, body: bytes, *, call_id: int, pfc_flags: int, little_endian: bool,
         verifier: Verifier | None) -> bytes:
    head = layout(DceRpc5, little_endian=little_endian)
    trailer = _trailer(verifier, little_endian)
    return head.pack(dict(ptype=ptype, pfc_flags=pfc_flags, endian=1 if little_endian else 0,
                          frag_len=head.size + len(body) + len(trailer),
                          auth_len=len(verifier.token) if verifier is not None else 0,
                          call_id=call_id)) + body + trailer


def response_bytes(*, call_id: int, cont_id: int, stub: bytes, alloc_hint: int,
                   pfc_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG, little_endian: bool = True,
                   verifier: Verifier | None = None) -> bytes:
    """``bytes(response(...))`` (with ``auth`` and ``auth_padding`` from ``verifier``)."""
    body = layout(DceRpc5Response, little_endian=little_endian).pack(dict(alloc_hint=alloc_hint, cont_id=cont_id))
    return _pdu(PType.RESPONSE, body + stub, call_id=call_id, pfc_flags=pfc_flags, little_endian=little_endian,
                verifier=verifier)


def request_bytes(*, call_id: int, cont_id: int, opnum: int, stub: bytes, alloc_hint: int,
                  pfc_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG, object_uuid: uuid.UUID | None = None,
                  little_endian: bool = True, verifier: Verifier | None = None) -> bytes:
    """A request PDU (C706 12.6.4.9); with ``object_uuid`` the flag PFC_OBJECT_UUID is set and
    the object UUID follows the opnum (in the PDU's byte order)."""
    body = layout(DceRpc5Request, little_endian=little_endian).pack(dict(alloc_hint=alloc_hint, cont_id=cont_id,
                                                                         opnum=opnum))
    if object_uuid is not None:
        pfc_flags = int(pfc_flags) | PfcFlag.OBJECT_UUID
        body += object_uuid.bytes_le if little_endian else object_uuid.bytes
    return _pdu(PType.REQUEST, body + stub, call_id=call_id, pfc_flags=pfc_flags, little_endian=little_endian,
                verifier=verifier)


def _syntax(cls, syntax: tuple[uuid.UUID, int], little_endian: bool) -> bytes:
    return layout(cls, little_endian=little_endian).pack(dict(if_uuid=syntax[0], if_version=syntax[1]))


def bind_bytes(*, call_id: int, alter: bool = False, max_xmit_frag: int, max_recv_frag: int,
               assoc_group_id: int, contexts: Sequence[ContextSpec],
               pfc_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG, little_endian: bool = True,
               verifier: Verifier | None = None) -> bytes:
    """bind (alter_context when ``alter``), C706 12.6.4.3; the same bytes as scapy's
    ``DceRpc5Bind`` under ``header()`` (its auth padding aligns the trailer: a bind's body is
    whole words, so none)."""
    body = [layout(DceRpc5Bind, little_endian=little_endian).pack(dict(
        max_xmit_frag=max_xmit_frag, max_recv_frag=max_recv_frag, assoc_group_id=assoc_group_id,
        n_context_elem=len(contexts)))]
    for cont_id, abstract, transfers in contexts:
        body.append(layout(DceRpc5Context, little_endian=little_endian).pack(dict(
            cont_id=cont_id, n_transfer_syn=len(transfers))))
        body.append(_syntax(DceRpc5AbstractSyntax, abstract, little_endian))
        body.extend(_syntax(DceRpc5TransferSyntax, t, little_endian) for t in transfers)
    return _pdu(PType.ALTER_CONTEXT if alter else PType.BIND, b"".join(body), call_id=call_id,
                pfc_flags=pfc_flags, little_endian=little_endian, verifier=verifier)


def bind_ack_bytes(*, call_id: int, alter: bool, max_xmit_frag: int, max_recv_frag: int,
                   assoc_group_id: int, port_spec: str, results: Sequence[ContextResultSpec],
                   pfc_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG, little_endian: bool = True,
                   verifier: Verifier | None = None) -> bytes:
    """``bytes(bind_ack(...))`` (an alter_context_resp when ``alter``)."""
    spec = b"" if alter else port_spec.encode("ascii") + b"\0"
    address = layout(DceRpc5PortAny, little_endian=little_endian).pack(dict(length=len(spec))) + spec
    address += b"\0" * ((-len(address)) % 4)
    body = [layout(DceRpc5BindAck, little_endian=little_endian).pack(dict(
        max_xmit_frag=max_xmit_frag, max_recv_frag=max_recv_frag, assoc_group_id=assoc_group_id)), address,
        layout(DceRpc5BindAck, little_endian=little_endian, start="n_results").pack(dict(n_results=len(results)))]
    for result, reason, ts_uuid, ts_version in results:
        body.append(layout(DceRpc5Result, little_endian=little_endian).pack(dict(result=result, reason=reason)))
        body.append(_syntax(DceRpc5TransferSyntax, (ts_uuid, ts_version), little_endian))
    return _pdu(PType.ALTER_CONTEXT_RESP if alter else PType.BIND_ACK, b"".join(body), call_id=call_id,
                pfc_flags=pfc_flags, little_endian=little_endian, verifier=verifier)


# -- reading a bind's body by the same layouts --------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Syntax:
    if_uuid: uuid.UUID
    if_version: int


@dataclasses.dataclass(frozen=True, slots=True)
class ContextElem:
    """A p_cont_elem_t, with scapy's ``DceRpc5Context`` attribute names."""

    cont_id: int
    n_transfer_syn: int
    abstract_syntax: Syntax
    transfer_syntaxes: tuple[Syntax, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class BindBody:
    """A bind's or alter_context's body, with scapy's ``DceRpc5Bind`` attribute names."""

    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    n_context_elem: int
    context_elem: tuple[ContextElem, ...]


def read_bind(pdu: bytes, *, little_endian: bool, end: int | None = None) -> BindBody:
    """The body of a bind or alter_context ``pdu`` (its common header first) up to ``end``
    (where the auth padding starts; the frag_length by default), read with the compiled
    layouts; ValueError when it does not hold the contexts it counts.  What scapy makes of a
    malformed one is for the caller's fallback to say."""
    end = len(pdu) if end is None else end
    head = layout(DceRpc5Bind, little_endian=little_endian)
    element = layout(DceRpc5Context, little_endian=little_endian)
    syntax = layout(DceRpc5AbstractSyntax, little_endian=little_endian)
    at = 16
    if at + head.size > end:
        raise ValueError("a bind body shorter than its fixed fields")
    fields = head.unpack(pdu, at)
    at += head.size
    contexts = []
    for _ in range(fields["n_context_elem"]):
        if at + element.size + syntax.size > end:
            raise ValueError("a presentation context list shorter than n_context_elem says")
        elem = element.unpack(pdu, at)
        at += element.size
        abstract = syntax.unpack(pdu, at)
        at += syntax.size
        transfers = []
        for _ in range(elem["n_transfer_syn"]):
            if at + syntax.size > end:
                raise ValueError("a transfer syntax list shorter than n_transfer_syn says")
            transfers.append(Syntax(**syntax.unpack(pdu, at)))
            at += syntax.size
        contexts.append(ContextElem(cont_id=elem["cont_id"], n_transfer_syn=elem["n_transfer_syn"],
                                    abstract_syntax=Syntax(**abstract), transfer_syntaxes=tuple(transfers)))
    return BindBody(max_xmit_frag=fields["max_xmit_frag"], max_recv_frag=fields["max_recv_frag"],
                    assoc_group_id=fields["assoc_group_id"], n_context_elem=fields["n_context_elem"],
                    context_elem=tuple(contexts))


def bind_body(raw: bytes, header: CommonHeader, trailer: SecTrailer | None, *, alter: bool):
    """A bind's (alter_context's) body without its auth token (the provider's to read):
    :func:`read_bind`'s; one it refuses, scapy's ``DceRpc5Bind`` (or ``DceRpc5AlterContext``),
    which decides what a malformed body is, as it always has.  Either has scapy's attribute
    names."""
    stripped = without_verifier(raw, header, trailer)
    try:
        return read_bind(stripped, little_endian=header.little_endian)
    except (ValueError, struct.error):
        pkt = DceRpc5(stripped)
        return pkt[DceRpc5AlterContext] if alter else pkt[DceRpc5Bind]


# -- reading the answers to a bind and a call: bind_ack, alter_context_resp, bind_nak, fault ----


@dataclasses.dataclass(frozen=True, slots=True)
class ResultElem:
    """A p_result_t, with scapy's ``DceRpc5Result`` attribute names."""

    result: int
    reason: int
    transfer_syntax: Syntax


@dataclasses.dataclass(frozen=True, slots=True)
class AckBody:
    """A bind_ack's or alter_context_resp's body, with scapy's ``DceRpc5BindAck`` names."""

    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    port_spec: bytes  # sec_addr's
    n_results: int
    results: tuple[ResultElem, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class NakBody:
    """What is read of a bind_nak: scapy's ``DceRpc5BindNak.provider_reject_reason``."""

    provider_reject_reason: int


@dataclasses.dataclass(frozen=True, slots=True)
class FaultBody:
    """A fault's fixed fields, with scapy's ``DceRpc5Fault`` names."""

    alloc_hint: int
    cont_id: int
    cancel_count: int
    status: int


def _read_ack(pdu: bytes, little_endian: bool, end: int) -> AckBody:
    head = layout(DceRpc5BindAck, little_endian=little_endian)
    port = layout(DceRpc5PortAny, little_endian=little_endian)
    tail = layout(DceRpc5BindAck, little_endian=little_endian, start="n_results")
    result = layout(DceRpc5Result, little_endian=little_endian)
    syntax = layout(DceRpc5TransferSyntax, little_endian=little_endian)
    at = 16
    if at + head.size + port.size > end:
        raise ValueError("a bind_ack body shorter than its fixed fields")
    fields = head.unpack(pdu, at)
    length = port.unpack(pdu, at + head.size)["length"]
    at += head.size + port.size
    spec = pdu[at:at + length]
    at += length + (-(port.size + length)) % 4  # sec_addr is padded to 4 octets (scapy's PadField)
    if at + tail.size > end:
        raise ValueError("a secondary address longer than the body, or no p_result_list")
    count = tail.unpack(pdu, at)["n_results"]
    at += tail.size
    if at + count * (result.size + syntax.size) > end:
        raise ValueError("a p_result_list shorter than n_results says")
    results = []
    for _ in range(count):
        answer = result.unpack(pdu, at)
        results.append(ResultElem(result=answer["result"], reason=answer["reason"],
                                  transfer_syntax=Syntax(**syntax.unpack(pdu, at + result.size))))
        at += result.size + syntax.size
    return AckBody(max_xmit_frag=fields["max_xmit_frag"], max_recv_frag=fields["max_recv_frag"],
                   assoc_group_id=fields["assoc_group_id"], port_spec=spec, n_results=count,
                   results=tuple(results))


def read_reply(pdu: bytes, *, little_endian: bool, end: int | None = None):
    """The body of a bind_ack, alter_context_resp, bind_nak or fault ``pdu`` (its common header
    first; up to ``end``, where the auth padding starts) read with the compiled layouts: an
    :class:`AckBody`, :class:`NakBody` or :class:`FaultBody`.  ValueError for another type or a
    body that does not hold what it counts: what scapy makes of that is the caller's fallback."""
    end = len(pdu) if end is None else end
    ptype = pdu[2] if len(pdu) > 2 else None
    if SEC_VT_MAGIC in pdu[:end]:  # scapy takes a verification trailer from wherever it finds one
        raise ValueError("the verification trailer's signature in the PDU")
    if ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP):
        return _read_ack(pdu, little_endian, end)
    if ptype == PType.BIND_NAK:
        nak = layout(DceRpc5BindNak, little_endian=little_endian)
        if 16 + nak.size > end:
            raise ValueError("a bind_nak body shorter than its fixed fields")
        fields = nak.unpack(pdu, 16)
        if end != 16 + nak.size + 2 * fields["n_protocols"]:  # more: scapy may look for a signature there
            raise ValueError("a bind_nak that does not end with its protocol versions")
        return NakBody(provider_reject_reason=fields["provider_reject_reason"])
    if ptype == PType.FAULT:
        fault_head = layout(DceRpc5Fault, little_endian=little_endian)
        if 16 + fault_head.size > end:
            raise ValueError("a fault body shorter than its fixed fields")
        fields = fault_head.unpack(pdu, 16)
        return FaultBody(alloc_hint=fields["alloc_hint"], cont_id=fields["cont_id"],
                         cancel_count=fields["cancel_count"], status=fields["status"])
    raise ValueError(f"ptype {ptype} is not an answer read here")


_REPLY_LAYERS = {PType.BIND_ACK: DceRpc5BindAck, PType.ALTER_CONTEXT_RESP: DceRpc5AlterContextResp,
                 PType.BIND_NAK: DceRpc5BindNak, PType.FAULT: DceRpc5Fault}


def reply_body(raw: bytes, header: CommonHeader, trailer: SecTrailer | None):
    """A bind_ack's, alter_context_resp's, bind_nak's or fault's body without its auth token:
    :func:`read_reply`'s; one it refuses, scapy's layer of ``DceRpc5`` (IndexError when scapy
    does not find it), which decides what a malformed body is, as it always has.  Any other
    PDU (an auth3) is scapy's ``DceRpc5`` of it: nothing is read of it, but scapy's dissection
    says whether it is malformed (it raises on a pad that reaches into the common header)."""
    stripped = without_verifier(raw, header, trailer)
    try:
        return read_reply(stripped, little_endian=header.little_endian)
    except (ValueError, struct.error):
        pkt = DceRpc5(stripped)
        layer = _REPLY_LAYERS.get(header.ptype)
        return pkt if layer is None else pkt[layer]


def read_call_head(raw: bytes, header: CommonHeader) -> dict:
    """A request's or response's fields after the common header (``alloc_hint``, ``cont_id``,
    and a request's ``opnum`` and, with PFC_OBJECT_UUID, ``object_uuid``), by scapy's
    ``DceRpc5Request``/``DceRpc5Response`` heads compiled; struct.error when the PDU is shorter."""
    if header.ptype != PType.REQUEST:
        return layout(DceRpc5Response, little_endian=header.little_endian).unpack(raw, 16)
    head = layout(DceRpc5Request, little_endian=header.little_endian)
    fields = head.unpack(raw, 16)
    if header.pfc_flags & PfcFlag.OBJECT_UUID:
        at = 16 + head.size
        if len(raw) < at + 16:
            raise struct.error("no room for the object UUID")
        obj = raw[at:at + 16]
        fields["object_uuid"] = uuid.UUID(bytes_le=obj) if header.little_endian else uuid.UUID(bytes=obj)
    return fields
