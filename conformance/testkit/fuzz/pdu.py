"""Raw bytes and valid PDUs with one field mutated, by name (sans-IO).

A mutation is a description applied to bytes later (:meth:`Mutation.apply`):
the target PDU of an authenticated exchange only exists once the I/O edge has
a security context.  Fields are patched at named offsets of the valid PDU, so
everything else, lengths included, stays as the valid PDU had it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import struct

from conformance.testkit.fuzz.choose import Chooser, Kind, Port, pick, weighted
from conformance.wire.dcom import IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR
from conformance.wire.rpc import COMMON_HEADER_LEN, SEC_TRAILER_LEN, NDR20, NDR64, PfcFlag, PType

__all__ = ["RawInput", "raw_input", "Exchange", "EXCHANGE_WEIGHTS", "Mutation", "PduInput", "pdu_input",
           "plain_exchange", "simple_ping_stub"]




@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RawInput:
    label: str
    port: Port
    data: bytes
    kind: Kind = Kind.RAW


def raw_input(choose: Chooser) -> RawInput:
    port = pick(choose, (Port.ACTIVATION, Port.EXPORTER))
    shape = choose.integer(0, 2)
    if shape == 0:
        return RawInput(label="raw/random", port=port, data=choose.binary(1, 200))
    # A header the framer accepts (rpc_vers 5, little-endian, frag_len = what follows),
    # any type and flags: the bytes reach the association instead of the framer.
    body = choose.binary(0, 200)
    ptype = choose.integer(0, 20) if shape == 1 else PType.BIND
    head = struct.pack("<BBBB4sHHI", 5, choose.integer(0, 1), ptype, choose.integer(0, 255),
                       b"\x10\0\0\0", COMMON_HEADER_LEN + len(body), 0, choose.integer(0, 9))
    return RawInput(label=f"raw/header-ptype-{ptype}", port=port, data=head + body)


# -- one field of a valid PDU -----------------------------------------------------------


class Exchange(enum.Enum):
    """A valid exchange with one *target* PDU; the I/O edge plays it and mutates the target."""

    BIND = "bind"
    ALTER = "alter"
    REQUEST = "request"
    SPNEGO_BIND = "spnego-bind"  # SPNEGO/NTLM at PKT_PRIVACY: the first leg
    SPNEGO_ALTER = "spnego-alter"  # the second leg, on alter_context
    NTLM_AUTH3 = "ntlm-auth3"  # raw NTLM's third leg, then a sealed ServerAlive2
    SEALED_REQUEST = "sealed-request"  # SimplePing sealed at PKT_PRIVACY

    @property
    def target(self) -> PType:
        return _TARGETS[self]

    @property
    def authenticated(self) -> bool:
        return self not in (Exchange.BIND, Exchange.ALTER, Exchange.REQUEST)


_TARGETS = {
    Exchange.BIND: PType.BIND, Exchange.ALTER: PType.ALTER_CONTEXT,
    Exchange.REQUEST: PType.REQUEST, Exchange.SPNEGO_BIND: PType.BIND,
    Exchange.SPNEGO_ALTER: PType.ALTER_CONTEXT, Exchange.NTLM_AUTH3: PType.AUTH3,
    Exchange.SEALED_REQUEST: PType.REQUEST,
}
#: Authenticated exchanges cost a real NTLM exchange (~10x a plain one): drawn less often.
EXCHANGE_WEIGHTS = ((Exchange.BIND, 24), (Exchange.ALTER, 12), (Exchange.REQUEST, 20),
                    (Exchange.SPNEGO_BIND, 1), (Exchange.SPNEGO_ALTER, 1), (Exchange.NTLM_AUTH3, 1),
                    (Exchange.SEALED_REQUEST, 1))

# (name, offset, width); trailer offsets are relative to the sec_trailer
_HEADER_FIELDS = (("rpc_vers", 0, 1), ("rpc_vers_minor", 1, 1), ("ptype", 2, 1),
                  ("pfc_flags", 3, 1), ("drep", 4, 1), ("frag_len", 8, 2), ("auth_length", 10, 2),
                  ("call_id", 12, 4))
_BIND_FIELDS = (("max_xmit_frag", 16, 2), ("max_recv_frag", 18, 2), ("assoc_group_id", 20, 4),
                ("n_context_elem", 24, 1), ("p_cont_id", 28, 2), ("n_transfer_syn", 30, 1),
                ("if_uuid", 32, 16), ("if_version", 48, 4), ("transfer_syntax", 52, 16),
                ("transfer_version", 68, 4))
_BODY_FIELDS = {
    PType.BIND: _BIND_FIELDS, PType.ALTER_CONTEXT: _BIND_FIELDS,
    PType.REQUEST: (("alloc_hint", 16, 4), ("p_cont_id", 20, 2), ("opnum", 22, 2)),
    PType.AUTH3: (("auth3_pad", 16, 4),),
}
_TRAILER_FIELDS = (("auth_type", 0, 1), ("auth_level", 1, 1), ("auth_pad_length", 2, 1),
                   ("auth_reserved", 3, 1), ("auth_context_id", 4, 4))
_FIELD_TABLE = {name: (offset, width, False) for name, offset, width in
                _HEADER_FIELDS + _BIND_FIELDS + sum(_BODY_FIELDS.values(), ())}
_FIELD_TABLE.update({name: (offset, width, True) for name, offset, width in _TRAILER_FIELDS})

_INTERESTING = {1: (0, 1, 0x7F, 0x80, 0xFF), 2: (0, 1, 0x10, 0x7FFF, 0x8000, 0xFFFF),
                4: (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)}
_CONTEXT_OPS = ("drop-all", "duplicate", "repeat", "no-transfer-syntax", "many-transfer-syntaxes")


def _trailer_offset(pdu: bytes) -> int | None:
    auth_len = struct.unpack_from("<H", pdu, 10)[0]
    frag_len = struct.unpack_from("<H", pdu, 8)[0]
    offset = frag_len - auth_len - SEC_TRAILER_LEN
    return offset if auth_len and COMMON_HEADER_LEN <= offset <= len(pdu) - SEC_TRAILER_LEN else None


def _set_frag_len(pdu: bytearray, delta: int) -> None:
    frag_len = struct.unpack_from("<H", pdu, 8)[0]
    struct.pack_into("<H", pdu, 8, (frag_len + delta) & 0xFFFF)


def _context_list_end(pdu: bytes) -> int:
    """Offset after the p_cont_elem_t list (4 + 20 + 20 * n_transfer_syn bytes each)."""
    offset = 28
    for _ in range(pdu[24]):
        if offset + 4 > len(pdu):
            break
        offset += 24 + 20 * pdu[offset + 2]
    return min(offset, len(pdu))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Mutation:
    """One change to one PDU: ``op`` is ``set``/``add``/``xor`` on a named field,
    ``pad`` (non-zero auth padding), ``token`` (flip a byte of the auth token),
    ``context`` (a structural change of the presentation-context list),
    ``truncate`` (cut, frag_len kept), ``append`` (bytes inside the PDU, frag_len grows)
    or ``trailing`` (bytes after the PDU)."""

    op: str
    field: str = ""
    value: int = 0
    data: bytes = b""

    @property
    def label(self) -> str:
        if self.field:
            return f"{self.field}:{self.op}=0x{self.value:x}" if not self.data else f"{self.field}:{self.op}"
        return f"{self.op}:{self.value}" if not self.data else f"{self.op}:{len(self.data)}B"

    def apply(self, pdu: bytes) -> bytes:
        out = bytearray(pdu)
        if self.op in ("set", "add", "xor"):
            offset, width, in_trailer = _FIELD_TABLE[self.field]
            if in_trailer:
                base = _trailer_offset(pdu)
                if base is None:
                    return pdu
                offset += base
            if offset + width > len(out):
                return pdu
            if self.data:  # a 16-byte UUID field: replaced, or XORed with a one-bit mask
                field = bytes(out[offset:offset + width])
                flipped = bytes(a ^ b for a, b in zip(field, self.data))
                out[offset:offset + width] = flipped if self.op == "xor" else self.data[:width].ljust(width, b"\0")
                return bytes(out)
            old = int.from_bytes(out[offset:offset + width], "little")
            new = {"set": self.value, "add": old + self.value, "xor": old ^ self.value}[self.op]
            out[offset:offset + width] = (new % (1 << (8 * width))).to_bytes(width, "little")
            return bytes(out)
        if self.op in ("pad", "token"):
            base = _trailer_offset(pdu)
            if base is None:
                return pdu
            if self.op == "pad":
                pad = max(out[base + 2], 1)
                out[base - pad:base] = bytes([self.value or 0xAA]) * min(pad, base)
            elif base + SEC_TRAILER_LEN < len(out):
                at = base + SEC_TRAILER_LEN + self.value % (len(out) - base - SEC_TRAILER_LEN)
                out[at] ^= 0x01 << (self.value % 8)
            return bytes(out)
        if self.op == "context":
            return _mutate_context_list(out, self.field, self.value)
        if self.op == "truncate":
            return bytes(out[:self.value % max(len(out), 1)])
        if self.op == "append":
            at = _trailer_offset(pdu) or len(out)
            out[at:at] = self.data
            _set_frag_len(out, len(self.data))
            return bytes(out)
        if self.op == "trailing":
            return bytes(out) + self.data
        raise ValueError(f"unknown mutation {self.op!r}")


def _mutate_context_list(out: bytearray, op: str, count: int) -> bytes:
    end = _context_list_end(out)
    first = bytes(out[28:28 + 24 + 20 * out[30]]) if out[24] and len(out) >= 52 else b""
    if op == "drop-all":
        del out[28:end]
        out[24] = 0
        _set_frag_len(out, 28 - end)
    elif op in ("duplicate", "repeat") and first:
        copies = 1 if op == "duplicate" else 2 + count % 60
        extra = b"".join(struct.pack("<H", (out[24] + i) & 0xFFFF) + first[2:] for i in range(copies))
        out[end:end] = extra
        out[24] = (out[24] + copies) & 0xFF
        _set_frag_len(out, len(extra))
    elif op == "no-transfer-syntax" and first:
        removed = 20 * out[30]
        del out[52:52 + removed]
        out[30] = 0
        _set_frag_len(out, -removed)
    elif op == "many-transfer-syntaxes" and first:
        extra = first[24:44] * (1 + count % 40)
        out[52:52] = extra
        out[30] = (out[30] + len(extra) // 20) & 0xFF
        _set_frag_len(out, len(extra))
    return bytes(out)


def _field_mutation(choose: Chooser, name: str, width: int) -> Mutation:
    if width == 16:
        if choose.integer(0, 1):
            return Mutation(op="set", field=name, data=choose.binary(16, 16))
        flip = bytearray(16)
        flip[choose.integer(0, 15)] = 1 << choose.integer(0, 7)
        return Mutation(op="xor", field=name, data=bytes(flip))
    how = choose.integer(0, 3)
    if how == 0:
        return Mutation(op="add", field=name, value=pick(choose, (1, -1, 2, -2, 8, -8, 16)))
    if how == 1:
        return Mutation(op="xor", field=name, value=1 << choose.integer(0, 8 * width - 1))
    if how == 2:
        return Mutation(op="set", field=name, value=pick(choose, _INTERESTING[width]))
    return Mutation(op="set", field=name, value=choose.integer(0, (1 << (8 * width)) - 1))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PduInput:
    label: str
    exchange: Exchange
    mutation: Mutation
    kind: Kind = Kind.PDU


def pdu_input(choose: Chooser, exchanges=EXCHANGE_WEIGHTS) -> PduInput:
    """``exchanges``: (exchange, weight) pairs to draw the valid exchange from."""
    exchange = weighted(choose, exchanges)
    target = exchange.target
    fields = list(_HEADER_FIELDS) + list(_BODY_FIELDS[target])
    if exchange.authenticated:
        fields += _TRAILER_FIELDS
    families = [("field", 8), ("generic", 2)]
    if target in (PType.BIND, PType.ALTER_CONTEXT):
        families.append(("context", 2))
    if exchange.authenticated:
        families += [("pad", 1), ("token", 1)]
    family = weighted(choose, families)
    if family == "field":
        name, _, width = pick(choose, fields)
        mutation = _field_mutation(choose, name, width)
    elif family == "context":
        mutation = Mutation(op="context", field=pick(choose, _CONTEXT_OPS), value=choose.integer(0, 255))
    elif family in ("pad", "token"):
        mutation = Mutation(op=family, value=choose.integer(1, 255))
    else:
        op = pick(choose, ("truncate", "append", "trailing"))
        mutation = (Mutation(op=op, value=choose.integer(1, 200)) if op == "truncate"
                    else Mutation(op=op, data=choose.binary(1, 64)))
    return PduInput(label=f"pdu/{exchange.value}/{mutation.label}", exchange=exchange,
                    mutation=mutation)


@functools.lru_cache(maxsize=None)
def plain_exchange(exchange: Exchange) -> tuple[tuple[bytes, ...], bytes]:
    """(PDUs sent first, target PDU) of an unauthenticated exchange on the activation port."""
    from scapy.layers.dcerpc import (
        DceRpc5, DceRpc5AbstractSyntax, DceRpc5AlterContext, DceRpc5Bind, DceRpc5Context,
        DceRpc5Request, DceRpc5TransferSyntax,
    )
    from scapy.packet import Raw

    def context(cont_id, interface, syntax):
        return DceRpc5Context(cont_id=cont_id, abstract_syntax=DceRpc5AbstractSyntax(
            if_uuid=interface, if_version=0), transfer_syntaxes=[DceRpc5TransferSyntax(
                if_uuid=syntax[0], if_version=syntax[1])])

    # NDR64 second: the CA must decline it and accept NDR 2.0 ([MS-DCOM] 2.2)
    bind = bytes(DceRpc5(call_id=1) / DceRpc5Bind(
        max_xmit_frag=5840, max_recv_frag=5840, context_elem=[
            context(0, IID_IOBJECT_EXPORTER, NDR20), context(1, IID_IOBJECT_EXPORTER, NDR64)]))
    if exchange is Exchange.BIND:
        return (), bind
    if exchange is Exchange.ALTER:
        return (bind,), bytes(DceRpc5(call_id=2) / DceRpc5AlterContext(
            max_xmit_frag=5840, max_recv_frag=5840,
            context_elem=[context(2, IID_IREMOTE_SCM_ACTIVATOR, NDR20)]))
    if exchange is Exchange.REQUEST:
        stub = simple_ping_stub()
        return (bind,), bytes(DceRpc5(call_id=2, pfc_flags=int(PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG))
                              / DceRpc5Request(alloc_hint=len(stub), cont_id=0, opnum=1) / Raw(stub))
    raise ValueError(f"{exchange} is authenticated: the I/O edge plays it")


def simple_ping_stub() -> bytes:
    """IObjectExporter::SimplePing(SETID): answered even unauthenticated."""
    return struct.pack("<Q", 0x0123456789ABCDEF)


