"""Transcript: every PDU of every connection, decoded, and decrypted where keys allow.

Input is what a capture recorded — :class:`Chunk` (bytes one side sent, with
a time) and :class:`Connection` (endpoints, how it ended) — from the in-process
tap or from an interface sniff.  :func:`build_transcript` frames each direction,
decodes headers, bind contexts, results, sec_trailers, opnums and object UUIDs,
follows the security contexts passively, verifies/unseals protected PDUs with
the lab credentials and decodes the stubs as WCCE/DCOM NDR.

It never raises on bad input: what cannot be framed or decoded is recorded as
such (``Garbage``, ``PduRecord.error``), because a broken peer is evidence.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL

from conformance.wire.framing import CommonHeader, FramingError, PduFramer
from conformance.wire.kerberos import ServiceKeys
from conformance.wire.pdu import bind_body, read_call_head, reply_body
from conformance.wire.passive import Direction, PassiveContext, SecurityFacts
from conformance.wire.protection import PduLayout, ProtectionError, SecTrailer
from conformance.wire.rpc import SEC_TRAILER_LEN, PfcFlag, PType
from conformance.wire.stubs import Decoded, decode_stub, interface_name
from conformance.wire.vtrailer import split_verification_trailer

__all__ = ["Direction", "Endpoint", "Chunk", "Connection", "ContextProposal", "ContextAnswer",
           "PduRecord", "SecurityRecord", "Garbage", "Transcript", "build_transcript"]

_BINDS = (PType.BIND, PType.ALTER_CONTEXT)
_ACKS = (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP)
_AUTH_PTYPES = _BINDS + _ACKS + (PType.AUTH3,)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    conn: int
    direction: Direction
    time: float
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    conn: int
    client: Endpoint
    server: Endpoint
    opened: float
    closed: float | None = None
    closed_by: Direction | None = None  # whose FIN/RST ended it; None: still open at the end
    reset: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ContextProposal:
    cont_id: int
    interface: uuid.UUID
    if_version: int
    transfer_syntaxes: tuple[tuple[uuid.UUID, int], ...]

    @property
    def version_text(self) -> str:
        return f"{self.if_version & 0xFFFF}.{self.if_version >> 16}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ContextAnswer:
    """One p_result of a bind_ack / alter_context_resp (``result`` is a wire.rpc.ContextResult)."""

    result: int
    reason: int
    transfer_syntax: uuid.UUID
    transfer_version: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PduRecord:
    index: int
    conn: int
    direction: Direction
    time: float
    raw: bytes
    ptype: int
    pfc_flags: int
    call_id: int
    rpc_vers: int
    rpc_vers_minor: int
    drep: bytes
    frag_len: int
    auth_len: int
    sec_trailer: SecTrailer | None = None
    auth_token: bytes = b""
    contexts: tuple[ContextProposal, ...] = ()  # bind / alter_context
    results: tuple[ContextAnswer, ...] = ()  # bind_ack / alter_context_resp
    assoc_group_id: int | None = None
    nak_reason: int | None = None
    cont_id: int | None = None
    opnum: int | None = None
    object_uuid: uuid.UUID | None = None
    fault_status: int | None = None
    interface: uuid.UUID | None = None  # resolved from the presentation context
    body: bytes = b""  # the PDU body as on the wire (stub, VT, auth pad): ciphertext if sealed
    plain: bytes | None = None  # verified (and unsealed) stub without pad and VT
    verified: bool | None = None  # None: not protected or no keys
    decoded: Decoded | None = None
    #: a PKT_PRIVACY PDU whose protection did not verify, but whose body as sent decodes as the
    #: call's NDR: it was never sealed
    readable_unsealed: bool = False
    error: str | None = None  # the PDU could not be decoded at all

    @property
    def ptype_name(self) -> str:
        try:
            return PType(self.ptype).name.lower()
        except ValueError:
            return f"ptype-{self.ptype}"

    @property
    def protected(self) -> bool:
        return (self.sec_trailer is not None and self.ptype in (PType.REQUEST, PType.RESPONSE)
                and self.sec_trailer.auth_level > RPC_C_AUTHN_LEVEL.CONNECT)

    def summary(self) -> str:
        parts = [f"#{self.index}", self.direction.value, self.ptype_name, f"call {self.call_id}"]
        if self.sec_trailer:
            parts.append(f"auth {self.sec_trailer.auth_type}/{self.sec_trailer.auth_level}")
        for ctx in self.contexts:
            parts.append(f"{interface_name(ctx.interface)} v{ctx.version_text}")
        if self.opnum is not None:
            parts.append(f"{interface_name(self.interface)} opnum {self.opnum}")
        if self.fault_status is not None:
            parts.append(f"fault 0x{self.fault_status:08x}")
        return " ".join(parts)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SecurityRecord:
    conn: int
    context_id: int
    auth_type: int
    auth_level: int  # as first proposed in the bind/alter that opened the context
    header_sign_requested: bool
    header_sign_granted: bool
    facts: SecurityFacts
    legs: tuple[int, ...]  # indexes of the PDUs that carried its tokens


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Garbage:
    conn: int
    direction: Direction
    offset: int
    reason: str
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Transcript:
    connections: tuple[Connection, ...]
    pdus: tuple[PduRecord, ...]
    security: tuple[SecurityRecord, ...]
    garbage: tuple[Garbage, ...]

    def of_type(self, *ptypes: int) -> list[PduRecord]:
        return [p for p in self.pdus if p.ptype in ptypes]

    def connection(self, conn: int) -> Connection | None:
        return next((c for c in self.connections if c.conn == conn), None)


# -- building ---------------------------------------------------------------------------


class _ConnState:
    """Per-connection decoding state: presentation contexts, security contexts, calls."""

    def __init__(self, conn: int, identities: Mapping[str, bytes], service_keys=None) -> None:
        self.conn = conn
        self.identities = identities
        self.service_keys = service_keys
        self.proposed: dict[int, ContextProposal] = {}
        self.accepted: dict[int, ContextProposal] = {}
        self.pending_bind: tuple[ContextProposal, ...] = ()
        self.security: dict[int, dict] = {}
        self.last_context_id: int | None = None
        self.calls: dict[int, tuple[int | None, uuid.UUID | None, object]] = {}
        self.fragments: dict[tuple[Direction, int], list[bytes]] = {}


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def build_transcript(chunks: Iterable[Chunk], connections: Iterable[Connection], *,
                     identities: Mapping[str, bytes] | None = None,
                     service_keys: ServiceKeys | None = None) -> Transcript:
    """``identities``: user name -> NT hash, to verify and unseal NTLM-protected PDUs;
    ``service_keys``: the target's Kerberos service keys (its keytab), for Kerberos ones."""
    identities = {k.upper(): v for k, v in (identities or {}).items()}
    conns = tuple(sorted(connections, key=lambda c: (c.opened, c.conn)))
    framers: dict[tuple[int, Direction], PduFramer] = {}
    offsets: dict[tuple[int, Direction], int] = {}
    states: dict[int, _ConnState] = {}
    pdus: list[PduRecord] = []
    garbage: list[Garbage] = []
    for chunk in sorted(chunks, key=lambda c: c.time):
        key = (chunk.conn, chunk.direction)
        framer = framers.setdefault(key, PduFramer())
        if framer.broken is not None:
            continue
        start = offsets.get(key, 0)
        offsets[key] = start + len(chunk.data)
        try:
            framed = framer.feed(chunk.data)
        except FramingError as exc:
            garbage.append(Garbage(conn=chunk.conn, direction=chunk.direction, offset=start,
                                   reason=str(exc), data=chunk.data))
            continue
        if framer.broken is not None:
            garbage.append(Garbage(conn=chunk.conn, direction=chunk.direction, offset=start,
                                   reason=str(framer.broken), data=chunk.data))
        state = states.setdefault(chunk.conn, _ConnState(chunk.conn, identities, service_keys))
        for raw in framed:
            pdus.append(_record(len(pdus), chunk, raw, state))
    for (conn, direction), framer in framers.items():
        if framer.pending and framer.broken is None:
            garbage.append(Garbage(conn=conn, direction=direction, offset=offsets[(conn, direction)],
                                   reason=f"{framer.pending} bytes of an unfinished PDU", data=b""))
    security = [
        SecurityRecord(conn=conn, context_id=cid, auth_type=sec["auth_type"],
                       auth_level=sec["auth_level"], header_sign_requested=sec["sign_req"],
                       header_sign_granted=sec["sign_ok"], facts=sec["passive"].facts,
                       legs=tuple(sec["legs"]))
        for conn, state in sorted(states.items()) for cid, sec in state.security.items()
    ]
    return Transcript(connections=conns, pdus=tuple(pdus), security=tuple(security),
                      garbage=tuple(garbage))


def _record(index: int, chunk: Chunk, raw: bytes, state: _ConnState) -> PduRecord:
    header = CommonHeader.parse(raw)
    base = dict(index=index, conn=chunk.conn, direction=chunk.direction, time=chunk.time, raw=raw,
                ptype=header.ptype, pfc_flags=header.pfc_flags, call_id=header.call_id,
                rpc_vers=header.rpc_vers, rpc_vers_minor=header.rpc_vers_minor, drep=header.drep,
                frag_len=header.frag_len, auth_len=header.auth_len)
    try:
        trailer = SecTrailer.parse(raw, header)
    except ProtectionError as exc:
        return PduRecord(**base, error=str(exc))
    if trailer is not None:
        base["sec_trailer"] = trailer
        base["auth_token"] = raw[trailer.offset + SEC_TRAILER_LEN:header.frag_len]
    try:
        if header.ptype in _BINDS + _ACKS + (PType.BIND_NAK, PType.FAULT, PType.AUTH3):
            base.update(_bind_family(raw, header, chunk.direction, state, index, trailer,
                                     base.get("auth_token", b"")))
        elif header.ptype in (PType.REQUEST, PType.RESPONSE):
            base.update(_call(raw, header, chunk.direction, state, trailer))
    except Exception as exc:  # a PDU scapy cannot take apart is evidence, not a crash
        return PduRecord(**base, error=f"{type(exc).__name__}: {exc}")
    return PduRecord(**base)


def _bind_family(raw, header, direction, state: _ConnState, index, trailer, token) -> dict:
    out: dict = {}
    pkt = None if header.ptype in _BINDS else reply_body(raw, header, trailer)
    if header.ptype in _BINDS:
        body = bind_body(raw, header, trailer, alter=header.ptype == PType.ALTER_CONTEXT)
        proposals = tuple(ContextProposal(
            cont_id=int(e.cont_id), interface=_uuid(e.abstract_syntax.if_uuid),
            if_version=int(e.abstract_syntax.if_version),
            transfer_syntaxes=tuple((_uuid(t.if_uuid), int(t.if_version)) for t in e.transfer_syntaxes))
            for e in body.context_elem)
        out.update(contexts=proposals, assoc_group_id=int(body.assoc_group_id))
        state.pending_bind = proposals
        state.proposed.update({p.cont_id: p for p in proposals})
    elif header.ptype in _ACKS:
        results = tuple(ContextAnswer(result=int(r.result), reason=int(r.reason),
                                      transfer_syntax=_uuid(r.transfer_syntax.if_uuid),
                                      transfer_version=int(r.transfer_syntax.if_version))
                        for r in pkt.results)
        out.update(results=results, assoc_group_id=int(pkt.assoc_group_id))
        for proposal, result in zip(state.pending_bind, results):
            if result.result == 0:
                state.accepted[proposal.cont_id] = proposal
    elif header.ptype == PType.BIND_NAK:
        out["nak_reason"] = int(pkt.provider_reject_reason)
    elif header.ptype == PType.FAULT:
        out.update(fault_status=int(pkt.status), cont_id=int(pkt.cont_id))
        request = state.calls.get(header.call_id)
        if request is not None:
            out.update(opnum=request[0], interface=request[1])
    if trailer is not None and header.ptype in _AUTH_PTYPES:
        _feed_security(state, trailer, token, direction, header, index)
    return out


def _feed_security(state: _ConnState, trailer: SecTrailer, token: bytes, direction: Direction,
                   header: CommonHeader, index: int) -> None:
    sec = state.security.get(trailer.auth_context_id)
    sign = bool(header.pfc_flags & PfcFlag.SUPPORT_HEADER_SIGN)
    if sec is None:
        if direction is not Direction.TO_SERVER:
            return
        sec = state.security[trailer.auth_context_id] = dict(
            auth_type=trailer.auth_type, auth_level=trailer.auth_level, sign_req=sign,
            sign_ok=False, legs=[],
            passive=PassiveContext(auth_type=trailer.auth_type, identities=state.identities,
                                   service_keys=state.service_keys))
    elif direction is Direction.TO_CLIENT and len(sec["legs"]) == 1:
        sec["sign_ok"] = sign  # what the server's first reply says, offered or not
    state.last_context_id = trailer.auth_context_id
    sec["legs"].append(index)
    if token:
        # header signing is in force only when both sides set the flag ([MS-RPCE] 3.3.1.5.2.2)
        sec["passive"].feed(token, direction, header_sign=sec["sign_req"] and sec["sign_ok"])


def _call(raw, header, direction, state: _ConnState, trailer) -> dict:
    is_request = header.ptype == PType.REQUEST
    head = read_call_head(raw, header)
    cont_id = head["cont_id"]
    out: dict = {"cont_id": cont_id}
    if is_request:
        out["opnum"] = head["opnum"]
        if "object_uuid" in head:
            out["object_uuid"] = head["object_uuid"]
        context = state.accepted.get(cont_id) or state.proposed.get(cont_id)
        out["interface"] = context.interface if context else None
    else:
        call = state.calls.get(header.call_id)
        if call is not None:
            out.update(opnum=call[0], interface=call[1])
    layout = PduLayout.of(raw, header, trailer)
    out["body"] = raw[layout.header_len:layout.body_end]
    plain, verified = _plain(raw, header, trailer, direction, state, layout)
    out.update(plain=plain, verified=verified)
    whole = header.pfc_flags & PfcFlag.FIRST_FRAG and header.pfc_flags & PfcFlag.LAST_FRAG
    if verified is False and whole and trailer is not None and trailer.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY:
        # does the body read as the call's NDR without unsealing?  Then it was sent in the clear
        call = (out.get("opnum"), out.get("interface"), None) if is_request else \
            state.calls.get(header.call_id, (None, None, None))
        body = out["body"][:len(out["body"]) - layout.pad_len]
        as_sent = decode_stub(call[1], call[0], body, response=not is_request,
                              little_endian=header.little_endian, request=call[2])
        out["readable_unsealed"] = bool(as_sent.ok)
    if plain is None:
        if is_request:
            state.calls[header.call_id] = (out.get("opnum"), out.get("interface"), None)
        return out
    key = (direction, header.call_id)
    pieces = state.fragments.setdefault(key, [])
    pieces.append(plain)
    if not header.pfc_flags & PfcFlag.LAST_FRAG:
        return out
    stub = b"".join(state.fragments.pop(key))
    if is_request:
        stub, _ = split_verification_trailer(stub)
        decoded = decode_stub(out.get("interface"), out.get("opnum"), stub, response=False,
                              little_endian=header.little_endian)
        state.calls[header.call_id] = (out.get("opnum"), out.get("interface"), decoded.packet)
    else:
        call = state.calls.get(header.call_id, (None, None, None))
        decoded = decode_stub(call[1], call[0], stub, response=True,
                              little_endian=header.little_endian, request=call[2])
    out.update(plain=stub, decoded=decoded)
    return out


def _plain(raw, header, trailer, direction, state: _ConnState, layout) -> tuple[bytes | None, bool | None]:
    """The stub as the receiver reads it, and whether its protection verified."""
    body = raw[layout.header_len:layout.body_end]
    if trailer is None or trailer.auth_level <= RPC_C_AUTHN_LEVEL.CONNECT:
        return body[:len(body) - layout.pad_len], None
    sec = state.security.get(trailer.auth_context_id)
    protection = sec["passive"].protection(direction) if sec else None
    if protection is None:
        if trailer.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY:
            return None, None  # sealed, and no keys to read it
        return body[:len(body) - layout.pad_len], None
    try:
        return protection.unprotect(raw, header, trailer,
                                    privacy=trailer.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY), True
    except ProtectionError:
        return None, False
