"""The PAC in a Kerberos ticket ([MS-PAC]): where it is, whom it names, whether its server
signature verifies, and the two tickets a conformance case needs that no KDC issues (one
without its PAC, one whose PAC was changed after the KDC signed it).  Sans-IO.

The PAC travels as ad-type AD-WIN2K-PAC (128) inside AD-IF-RELEVANT (1) in the ticket's
encrypted part ([MS-PAC] 2.3, [MS-KILE] 3.3.5.3).  Its server signature ([MS-PAC] 2.8.4) is a
keyed checksum with the service's key, key usage KERB_NON_KERB_CKSUM_SALT (17), over the PAC
with the Signature fields of the server and KDC signatures zeroed ([MS-KILE] 3.4.5.3: the
server MUST verify it).  The structures are scapy's (``scapy.layers.msrpce.mspac``); the
signature is checked on the PAC's own bytes, zeroed in place, so nothing rests on re-encoding.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import struct

__all__ = ["PacFacts", "PacError", "find_pac", "read_pac", "server_signature_verifies", "ticket_without_pac",
           "ticket_with_changed_pac", "buffers", "AD_IF_RELEVANT", "AD_WIN2K_PAC", "KEYED_SIGNATURE", "TICKET_EDITS"]

#: the tickets a case can present (ClientSettings.ticket_pac)
TICKET_EDITS = ("absent", "changed", "no-server-signature", "unkeyed-signature", "no-logon-info")

AD_IF_RELEVANT = 1
AD_WIN2K_PAC = 128
LOGON_INFO = 0x1
SERVER_CHECKSUM = 0x6
KDC_CHECKSUM = 0x7
KERB_NON_KERB_CKSUM_SALT = 17
CRC32 = 1
#: [MS-PAC] 2.8: the keyed signature types, by the service key's encryption type
#: (HMAC-SHA1-96-AES256, -AES128, KERB_CHECKSUM_HMAC_MD5); an unkeyed checksum (CRC32, MD5)
#: proves nothing (MS14-068 forged PACs with one)
KEYED_SIGNATURE = {18: 16, 17: 15, 23: -138}
_INFO_BUFFER = struct.Struct("<IIQ")  # ulType, cbBufferSize, Offset ([MS-PAC] 2.4)
#: KERB_VALIDATION_INFO's UserId in the LOGON_INFO buffer: 16 bytes of NDR type serialization
#: headers, the 4-byte top-level referent, six FILETIMEs (48), six RPC_UNICODE_STRINGs (48),
#: LogonCount and BadPasswordCount (4) ([MS-PAC] 2.5, [MS-RPCE] 2.2.6)
_USER_ID_OFFSET = 16 + 4 + 48 + 48 + 4


class PacError(ValueError):
    """The PAC does not parse ([MS-PAC] 2.3-2.5)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PacFacts:
    account: str  # KERB_VALIDATION_INFO EffectiveName
    domain: str  # LogonDomainName (NetBIOS)
    user_rid: int
    domain_sid: str

    @property
    def identity(self) -> str:
        return f"{self.domain}\\{self.account}"

    @property
    def sid(self) -> str:
        return f"{self.domain_sid}-{self.user_rid}"


def _items(authorization_data):
    for item in getattr(authorization_data, "seq", None) or ():
        yield item
        if int(item.adType.val) == AD_IF_RELEVANT and hasattr(item.adData, "seq"):
            yield from _items(item.adData)


def _carries_pac(item) -> bool:
    if int(item.adType.val) == AD_WIN2K_PAC:
        return True
    return int(item.adType.val) == AD_IF_RELEVANT and any(_carries_pac(i) for i in _items(item.adData))


def find_pac(enc_ticket_part) -> bytes | None:
    """The raw PAC of a decrypted ticket (scapy EncTicketPart), or None when it carries none."""
    for item in _items(getattr(enc_ticket_part, "authorizationData", None)):
        if int(item.adType.val) == AD_WIN2K_PAC:
            data = item.adData
            return bytes(data.val) if hasattr(data, "val") else bytes(getattr(data, "original", None) or data)
    return None


def buffers(raw: bytes) -> list[tuple[int, int, int]]:
    """(ulType, offset, size) of every PAC_INFO_BUFFER, bounds-checked."""
    if len(raw) < 8:
        raise PacError("shorter than its header")
    count, _version = struct.unpack_from("<II", raw)
    if count > 64 or 8 + count * _INFO_BUFFER.size > len(raw):
        raise PacError(f"{count} buffers do not fit in {len(raw)} bytes")
    found = []
    for i in range(count):
        kind, size, offset = _INFO_BUFFER.unpack_from(raw, 8 + i * _INFO_BUFFER.size)
        if offset + size > len(raw):
            raise PacError(f"buffer {kind:#x} runs past the PAC")
        found.append((kind, offset, size))
    return found


def _mspac():
    """scapy's PAC structures, without their side effect: importing scapy.layers.msrpce.mspac
    registers PACTYPE for ad-type 128, after which scapy decodes every PAC of every ticket it
    decrypts anywhere in the process (~20 ms each: it made the Kerberos rows 1.5x slower).
    The PAC stays bytes until read_pac asks for LOGON_INFO alone."""
    from scapy.layers import kerberos
    from scapy.layers.msrpce import mspac

    kerberos._AUTHORIZATIONDATA_VALUES.pop(AD_WIN2K_PAC, None)
    return mspac


@functools.lru_cache(maxsize=256)
def read_pac(raw: bytes) -> PacFacts:
    """Whom the PAC names: its LOGON_INFO buffer alone, decoded as scapy's PACTYPE decodes it
    (an NDR type-serialization-1 KERB_VALIDATION_INFO; the other buffers are not decoded).
    Remembered per PAC: scapy takes ~20 ms to decode one, and a cached service ticket comes
    back with every bind (the signature is still verified each time by the caller)."""
    from scapy.layers.dcerpc import ndr_deserialize1

    KERB_VALIDATION_INFO = _mspac().KERB_VALIDATION_INFO

    logon = [(o, s) for kind, o, s in buffers(raw) if kind == LOGON_INFO and s]
    if not logon:
        raise PacError("no LOGON_INFO buffer")
    offset, size = logon[0]
    try:
        info = ndr_deserialize1(raw[offset:offset + size], KERB_VALIDATION_INFO, ptr_pack=True)
        return PacFacts(account=_text(info.valueof("EffectiveName.Buffer")),
                        domain=_text(info.valueof("LogonDomainName.Buffer")),
                        user_rid=int(info.UserId), domain_sid=_sid(info.valueof("LogonDomainId")))
    except Exception as exc:  # scapy's NDR decoding of a malformed buffer
        raise PacError(f"LOGON_INFO does not decode: {exc}") from exc


def _text(value) -> str:
    """scapy gives an NDR wchar array's characters as bytes (one a character)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value or "")


def _sid(value) -> str:
    value = getattr(value, "value", value)
    if value is None:
        return ""
    authority = int.from_bytes(bytes(value.IdentifierAuthority.Value), "big")
    return "S-%d-%d%s" % (value.Revision, authority, "".join(f"-{s}" for s in value.SubAuthority))


def _zeroed_signatures(raw: bytes) -> tuple[bytes, dict[int, tuple[int, bytes]]]:
    """The PAC with the server and KDC signatures zeroed, and each signature's (type, value)."""
    from scapy.libs.rfc3961 import _checksums

    out = bytearray(raw)
    signatures = {}
    for kind, offset, size in buffers(raw):
        if kind not in (SERVER_CHECKSUM, KDC_CHECKSUM):
            continue
        if size < 4:
            raise PacError(f"signature buffer {kind:#x} has no SignatureType")
        (ctype,) = struct.unpack_from("<i", raw, offset)
        checksum = _checksums.get(ctype) or _checksums.get(ctype & 0xFFFFFFFF)
        length = checksum.macsize if checksum is not None else size - 4
        if 4 + length > size:
            raise PacError(f"signature buffer {kind:#x} is shorter than its checksum")
        signatures[kind] = (ctype, bytes(raw[offset + 4:offset + 4 + length]))
        out[offset + 4:offset + 4 + length] = bytes(length)
    return bytes(out), signatures


def server_signature_verifies(raw: bytes, key, *, keyed_only: bool = True) -> bool:
    """[MS-PAC] 2.8.4 with the service's long-term ``key`` (a scapy rfc3961 Key): the server
    signature is there, of the keyed type that goes with the key (unless ``keyed_only`` is
    off: a mutant's rule), and verifies."""
    zeroed, signatures = _zeroed_signatures(raw)
    if SERVER_CHECKSUM not in signatures:
        return False
    ctype, signature = signatures[SERVER_CHECKSUM]
    if keyed_only and ctype != KEYED_SIGNATURE.get(int(key.etype)):
        return False
    try:
        expected = key.make_checksum(KERB_NON_KERB_CKSUM_SALT, zeroed, cksumtype=ctype)
    except Exception:  # a checksum type the key cannot make
        return False
    return hmac.compare_digest(expected, signature)


# -- the tickets no KDC issues (client side of the PAC cases) --------------------------------


def _reencrypt(ticket, enc, key):
    ticket = ticket.copy()
    ticket.encPart.encrypt(key, bytes(enc), key_usage_number=2)  # RFC 4120 7.5.1: ticket, key usage 2
    return ticket


def _decrypt(ticket, key):
    from scapy.layers.kerberos import EncTicketPart

    return ticket.encPart.decrypt(key, key_usage_number=2, cls=EncTicketPart)


def ticket_without_pac(ticket, key):
    """The ticket with every authorization-data element carrying a PAC removed, re-encrypted
    with the service's ``key`` (what Samba's test_rpc_no_pac presents)."""
    enc = _decrypt(ticket, key)
    kept = [item for item in (getattr(enc.authorizationData, "seq", None) or ()) if not _carries_pac(item)]
    enc.authorizationData = type(enc.authorizationData)(seq=kept) if kept else None
    return _reencrypt(ticket, enc, key)


def _with_pac(ticket, key, edit):
    """The ticket with its PAC replaced by ``edit(raw PAC)``, re-encrypted with ``key``."""
    from scapy.asn1.asn1 import ASN1_STRING

    enc = _decrypt(ticket, key)
    for item in _items(enc.authorizationData):
        if int(item.adType.val) == AD_WIN2K_PAC:
            item.adData = ASN1_STRING(edit(find_pac(enc)))
            return _reencrypt(ticket, enc, key)
    raise PacError("the ticket carries no PAC")


def _other_user(raw: bytes, user_rid: int = 500) -> bytes:
    """LOGON_INFO's UserId set to ``user_rid`` (500: the domain's Administrator)."""
    out = bytearray(raw)
    offset = next((o for kind, o, _ in buffers(raw) if kind == LOGON_INFO), None)
    if offset is None:
        raise PacError("no LOGON_INFO buffer to change")
    current = read_pac(raw).user_rid
    if struct.unpack_from("<I", out, offset + _USER_ID_OFFSET)[0] != current:
        raise PacError("LOGON_INFO's UserId is not where KERB_VALIDATION_INFO puts it")
    struct.pack_into("<I", out, offset + _USER_ID_OFFSET, user_rid if user_rid != current else user_rid + 1)
    return bytes(out)


def _rebuilt(raw: bytes, replace: dict[int, bytes | None]) -> bytes:
    """The PAC with the buffers of the types in ``replace`` replaced (None: removed), each
    buffer 8-byte aligned as [MS-PAC] 2.4 lays them out."""
    kept = [(kind, replace.get(kind, raw[o:o + n])) for kind, o, n in buffers(raw)]
    kept = [(kind, data) for kind, data in kept if data is not None]
    header = struct.pack("<II", len(kept), struct.unpack_from("<I", raw, 4)[0])
    offset = len(header) + _INFO_BUFFER.size * len(kept)
    table, body = b"", b""
    for kind, data in kept:
        table += _INFO_BUFFER.pack(kind, len(data), offset + len(body))
        body += data + bytes(-len(data) % 8)
    return header + table + body


def _server_signed(raw: bytes, key, ctype: int) -> bytes:
    """The PAC with a server signature of type ``ctype`` made over it ([MS-PAC] 2.8.4)."""
    from scapy.libs.rfc3961 import _checksums

    size = _checksums[ctype].macsize
    raw = _rebuilt(raw, {SERVER_CHECKSUM: struct.pack("<i", ctype) + bytes(size)})
    zeroed, _ = _zeroed_signatures(raw)
    signature = key.make_checksum(KERB_NON_KERB_CKSUM_SALT, zeroed, cksumtype=ctype)
    return _rebuilt(raw, {SERVER_CHECKSUM: struct.pack("<i", ctype) + signature})


def ticket_with_changed_pac(ticket, key, how: str = "changed"):
    """A ticket no KDC issues, its PAC naming the domain's Administrator (UserId 500):
    ``changed`` keeps the KDC's signatures (stale); ``no-server-signature`` also removes the
    server signature buffer; ``unkeyed-signature`` replaces it with a CRC32 made over the
    changed PAC (MS14-068's forgery: anyone can compute one); ``no-logon-info`` removes
    LOGON_INFO instead and signs the PAC afresh with the service ``key`` (a valid server
    signature on a PAC [MS-PAC] 2.4 says is invalid)."""
    edits = {
        "changed": _other_user,
        "no-server-signature": lambda raw: _rebuilt(_other_user(raw), {SERVER_CHECKSUM: None}),
        "unkeyed-signature": lambda raw: _server_signed(_other_user(raw), key, CRC32),
        "no-logon-info": lambda raw: _server_signed(_rebuilt(raw, {LOGON_INFO: None}), key,
                                                    KEYED_SIGNATURE[int(key.etype)]),
    }
    if how not in edits:
        raise ValueError(f"{how!r}: one of {', '.join(edits)}")
    return _with_pac(ticket, key, edits[how])
