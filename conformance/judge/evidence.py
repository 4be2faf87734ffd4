"""A case's wire evidence as plain data for results.json: the PDU ladder (one record a
PDU, with decoded fields and a redacted hex head) and the connections.  Sans-IO.

Redaction: the auth_token after every sec_trailer (NTLM messages with their
responses, signatures) is never written; its bytes show as ``--`` in the hex view.
The full bytes stay in the case's pcapng, which the user keeps or not.
"""

from __future__ import annotations

import enum
from typing import Any

from conformance.wire.rpc import PfcFlag, PType
from conformance.wire.stubs import interface_name
from conformance.wire.transcript import PduRecord, Transcript

__all__ = ["ladder", "connections", "HEX_HEAD", "REDACTED"]

HEX_HEAD = 96  # bytes of each PDU (and of each unsealed stub) kept for the hex view
REDACTED = "--"
_FIELD_LIMIT = 16  # decoded fields per PDU
_VALUE_LIMIT = 96  # characters per decoded value
_FLAG_NAMES = {PfcFlag.FIRST_FRAG: "first", PfcFlag.LAST_FRAG: "last", 0x04: "hdr-sign/cancel",
               PfcFlag.RESERVED_1: "reserved", PfcFlag.CONC_MPX: "conc-mpx",
               PfcFlag.DID_NOT_EXECUTE: "did-not-execute", PfcFlag.MAYBE: "maybe",
               PfcFlag.OBJECT_UUID: "object-uuid"}
_RESULTS = {0: "accept", 1: "user-reject", 2: "reject", 3: "negotiate-ack"}


def _hex(data: bytes, redact_from: int | None = None) -> str:
    head = data[:HEX_HEAD]
    cut = len(head) if redact_from is None else max(0, min(redact_from, len(head)))
    return head[:cut].hex() + REDACTED * (len(head) - cut)


def _value(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        text = f"{len(value)} bytes {bytes(value[:24]).hex()}" + ("…" if len(value) > 24 else "")
    elif isinstance(value, enum.Enum):
        text = value.name
    elif isinstance(value, list):
        text = f"[{len(value)}] " + ", ".join(_value(v) for v in value[:3]) + (" …" if len(value) > 3 else "")
    elif hasattr(value, "fields_desc"):
        text = f"{type(value).__name__}({', '.join(f'{k}={_value(v)}' for k, v in list(value.fields.items())[:4])})"
    else:
        text = str(value)
    return text if len(text) <= _VALUE_LIMIT else text[:_VALUE_LIMIT - 1] + "…"


def _fields(packet) -> dict[str, str]:
    if packet is None:
        return {}
    out: dict[str, str] = {}
    for field in packet.fields_desc[:_FIELD_LIMIT]:
        try:
            out[field.name] = _value(packet.getfieldval(field.name))
        except Exception:  # a half-decoded packet: show what there is
            out[field.name] = "?"
    return out


def _protection(pdu: PduRecord) -> str:
    trailer = pdu.sec_trailer
    if trailer is None:
        return "none"
    if pdu.ptype not in (PType.REQUEST, PType.RESPONSE):
        return "auth"
    return {6: "sealed", 5: "signed", 4: "signed", 3: "signed", 2: "connect"}.get(trailer.auth_level, "none")


def _record(pdu: PduRecord, start: float) -> dict[str, Any]:
    trailer = pdu.sec_trailer
    record: dict[str, Any] = {
        "n": pdu.index, "conn": pdu.conn, "dir": pdu.direction.value,
        "t_ms": round((pdu.time - start) * 1000, 1), "ptype": pdu.ptype_name, "call_id": pdu.call_id,
        "rpc_vers": f"{pdu.rpc_vers}.{pdu.rpc_vers_minor}", "frag_len": pdu.frag_len,
        "flags": [name for bit, name in _FLAG_NAMES.items() if pdu.pfc_flags & bit],
        "protection": _protection(pdu), "verified": pdu.verified,
    }
    if trailer is not None:
        record["auth"] = {"type": trailer.auth_type, "level": trailer.auth_level,
                          "pad": trailer.auth_pad_length, "context_id": trailer.auth_context_id,
                          "auth_len": pdu.auth_len}
    if pdu.contexts:
        record["contexts"] = [f"{interface_name(c.interface)} v{c.version_text}" for c in pdu.contexts]
    if pdu.results:
        record["results"] = [_RESULTS.get(r.result, str(r.result)) + (f" {r.reason}" if r.result else "")
                             for r in pdu.results]
    if pdu.opnum is not None:
        record["interface"] = interface_name(pdu.interface)
        record["opnum"] = pdu.opnum
    if pdu.object_uuid is not None:
        record["object_uuid"] = str(pdu.object_uuid)
    if pdu.nak_reason is not None:
        record["nak_reason"] = pdu.nak_reason
    if pdu.fault_status is not None:
        record["fault"] = f"0x{pdu.fault_status:08x}"
    if pdu.decoded is not None:
        record["method"] = pdu.decoded.name
        record["fields"] = _fields(pdu.decoded.packet)
        if pdu.decoded.orpc is not None:
            record["orpc"] = _fields(pdu.decoded.orpc)
        if pdu.decoded.error:
            record["decode_error"] = pdu.decoded.error
    if pdu.error:
        record["error"] = pdu.error
    # the auth_token follows the 8-byte sec_trailer; it is never written
    record["hex"] = _hex(pdu.raw, None if trailer is None else trailer.offset + 8)
    if pdu.plain is not None and record["protection"] == "sealed":  # what the ciphertext hides
        record["plain_hex"] = _hex(pdu.plain)
    return record


def ladder(transcript: Transcript) -> list[dict[str, Any]]:
    start = transcript.pdus[0].time if transcript.pdus else 0.0
    return [_record(p, start) for p in transcript.pdus]


def connections(transcript: Transcript) -> list[dict[str, Any]]:
    out = []
    for c in transcript.connections:
        out.append({"conn": c.conn, "client": f"{c.client.host}:{c.client.port}",
                    "server": f"{c.server.host}:{c.server.port}",
                    "closed_by": None if c.closed_by is None else c.closed_by.value, "reset": c.reset})
    return out
