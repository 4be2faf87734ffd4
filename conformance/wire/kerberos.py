"""Kerberos in DCE/RPC auth tokens: service keys, the AP-REQ, and what it says.

Sans-IO except :meth:`ServiceKeys.from_keytab`.  An AP-REQ is found in a raw
Kerberos token (auth_type 16, DCE style: no GSS framing), in a GSS-framed one, or
inside SPNEGO (9) by its ASN.1 tag, so the facts survive framings scapy does not
dissect.  With the service's keys the ticket and authenticator open: the client
name, the session key and the RFC 4121 checksum flags (MS-KILE 3.2.5.2: IDENTIFY
0x2000, DELEG 0x1, CONF 0x10, INTEG 0x20, DCE_STYLE 0x1000).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import pathlib

__all__ = ["ServiceKeys", "GssFlag", "ApReqFacts", "find_ap_req", "inspect_ap_req", "open_ap_req",
           "keytab_entries", "keytab_bytes", "KERBEROS_OIDS"]

KERBEROS_OIDS = ("1.2.840.48018.1.2.2", "1.2.840.113554.1.2.2")
_AP_REQ_TAG = 0x6E  # [APPLICATION 14]


class GssFlag(enum.IntFlag):
    DELEG = 0x1
    MUTUAL = 0x2
    REPLAY = 0x4
    SEQUENCE = 0x8
    CONF = 0x10
    INTEG = 0x20
    DCE_STYLE = 0x1000
    IDENTIFY = 0x2000
    EXTENDED_ERROR = 0x4000


def _principal(name: str) -> str:
    """Principal without realm, compared case-insensitively (as Windows does)."""
    return name.split("@", 1)[0].lower()


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceKeys:
    """The long-term keys of a service: (principal without realm, lower case; etype) -> Key.

    A keytab of one computer account (``CA01$``, as ``samba-tool domain exportkeytab`` or
    ``ktpass`` write it for a Windows member) is that account's keys, which open a ticket for
    any of its SPNs (``HOST/ca01``, ``RPCSS/ca01.lab.test`` …): Windows decrypts with its
    account key whatever the sname.  Such keys answer :meth:`find` for any principal."""

    keys: dict[tuple[str, int], object]
    realm: str = ""
    account: str | None = None  # the computer account whose keys these are

    @classmethod
    def from_keytab(cls, path: pathlib.Path) -> "ServiceKeys":
        from scapy.libs.rfc3961 import Key

        keys: dict[tuple[str, int], object] = {}
        realm = ""
        for principal, etype, key in keytab_entries(pathlib.Path(path).read_bytes()):
            realm = realm or principal.partition("@")[2]
            keys.setdefault((_principal(principal), etype), Key(etype, key=key))
        names = {p for p, _ in keys}
        account = next(iter(names)) if len(names) == 1 and next(iter(names)).endswith("$") else None
        return cls(keys=keys, realm=realm, account=account)

    def find(self, principal: str, etype: int):
        found = self.keys.get((_principal(principal), int(etype)))
        if found is None and self.account is not None:
            found = self.keys.get((self.account, int(etype)))
        return found

    def principals(self) -> set[str]:
        return {p for p, _ in self.keys}

    def __bool__(self) -> bool:
        return bool(self.keys)


def keytab_entries(data: bytes) -> list[tuple[str, int, bytes]]:
    """(principal@REALM, etype, key) of each entry of a keytab file (format 0x0502, MIT's
    keytab.txt).  Each entry is as long as its size says: MIT may append a 32-bit kvno,
    Heimdal (Samba's exportkeytab) a 32-bit kvno and flags, which scapy's reader misreads."""
    if data[:2] != b"\x05\x02":
        raise ValueError(f"not a version 0x0502 keytab (starts {data[:2].hex()})")
    found, at = [], 2
    while at + 4 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big", signed=True)
        entry, at = data[at + 4:at + 4 + abs(size)], at + 4 + abs(size)
        if size <= 0:  # a hole left by a deleted entry
            continue

        def counted(offset: int) -> tuple[bytes, int]:
            length = int.from_bytes(entry[offset:offset + 2], "big")
            return entry[offset + 2:offset + 2 + length], offset + 2 + length

        components = int.from_bytes(entry[:2], "big")
        realm, offset = counted(2)
        names = []
        for _ in range(components):
            name, offset = counted(offset)
            names.append(name.decode())
        offset += 4 + 4 + 1  # name_type, timestamp, 8-bit kvno
        etype = int.from_bytes(entry[offset:offset + 2], "big")
        key, _ = counted(offset + 2)
        found.append((f"{'/'.join(names)}@{realm.decode()}", etype, key))
    return found


def keytab_bytes(entries: list[tuple[str, int, bytes]], kvno: int = 1) -> bytes:
    """A keytab file (format 0x0502) of ``(principal@REALM, etype, key)`` entries, as
    :func:`keytab_entries` reads them and MIT's ktutil and Wireshark read them.  (scapy 2.8's
    keytab writer gets an entry's size wrong: see tests/unit/wire/test_keytab.py.)"""
    def counted(value: bytes) -> bytes:
        return len(value).to_bytes(2, "big") + value

    out = b"\x05\x02"
    for principal, etype, key in entries:
        name, _, realm = principal.rpartition("@")
        components = name.split("/")
        entry = len(components).to_bytes(2, "big") + counted(realm.encode())
        entry += b"".join(counted(c.encode()) for c in components)
        entry += (1).to_bytes(4, "big") + (0).to_bytes(4, "big") + bytes([kvno & 0xFF])  # KRB5_NT_PRINCIPAL
        entry += int(etype).to_bytes(2, "big") + counted(bytes(key)) + kvno.to_bytes(4, "big")
        out += len(entry).to_bytes(4, "big") + entry
    return out


def find_ap_req(token: bytes, dissected=None):
    """The KRB_AP_REQ in ``token`` (any framing), or None.  ``dissected``: scapy's dissection
    of the token already made (its GSSAPI_BLOB or Kerberos packet), whose AP-REQ is taken
    when it has one; otherwise the raw token is searched."""
    from scapy.layers.kerberos import KRB_AP_REQ

    if dissected is not None:
        from conformance.wire.gss import mechanism_token, negotiation_token

        # scapy's layer walk does not enter a SPNEGO token's mechToken: the mechanism token is
        # asked first (the packet scapy's SPNEGO hands its Kerberos acceptor)
        inner = mechanism_token(negotiation_token(dissected))
        for layer in (inner, dissected):
            try:
                candidate = layer.getlayer(KRB_AP_REQ) if hasattr(layer, "getlayer") else None
            except Exception:  # a dissection scapy cannot walk: search the bytes
                candidate = None
            if candidate is not None and candidate.ticket is not None and candidate.authenticator is not None:
                return candidate
    at = token.find(bytes([_AP_REQ_TAG]))
    while 0 <= at < len(token):
        try:
            candidate = KRB_AP_REQ(token[at:])
            if candidate.ticket is not None and candidate.authenticator is not None:
                return candidate
        except Exception:  # not an AP-REQ at this offset
            pass
        at = token.find(bytes([_AP_REQ_TAG]), at + 1)
    return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ApReqFacts:
    sname: str  # the ticket's service principal, as sent (clear text in the ticket)
    realm: str
    ticket_etype: int
    mutual: bool  # AP options mutual-required
    # with the service key:
    cname: str | None = None  # user@REALM from the ticket
    checksum_flags: int | None = None  # RFC 4121 authenticator checksum flags
    ticket_end: datetime.datetime | None = None
    subkey_etype: int | None = None
    opened: bool = False  # the service key was known and the ticket decrypted


def _text(value) -> str:
    value = getattr(value, "val", value)
    return value.decode() if isinstance(value, bytes) else str(value)


def open_ap_req(ap_req, key):
    """(EncTicketPart, KRB_Authenticator) of ``ap_req``, the ticket opened with the service's
    ``key`` and the authenticator with the ticket's session key, as scapy's ``decrypt`` makes them
    (key usages 2 and 11, RFC 4120 7.5.1).  The AP-REQ remembers both, so scapy's acceptor (or
    its passive reading) handed this same packet decrypts neither again.  Raises what scapy's
    decryption raises (a wrong key, a damaged ticket)."""
    from scapy.layers.kerberos import EncTicketPart, KRB_Authenticator

    from conformance.wire.scapymemo import remember_decryption

    enc_part = ap_req.ticket.encPart
    enc = remember_decryption(enc_part, key, _ticket_part(bytes(enc_part.cipher.val), key.etype, bytes(key.key)),
                              made_as=(2, EncTicketPart))
    session = enc.key.toKey()
    sealed = ap_req.authenticator
    authenticator = remember_decryption(
        sealed, session, _authenticator_part(bytes(sealed.cipher.val), session.etype, bytes(session.key)),
        made_as=(11, KRB_Authenticator))
    return enc, authenticator


@functools.lru_cache(maxsize=32)
def _ticket_part(cipher: bytes, key_etype: int, key: bytes):
    """A session presents the same ticket in every AP-REQ: its decryption, and scapy's
    dissection of the PAC inside, is a function of the ciphertext and the key, made once
    (callers only read the result)."""
    from scapy.layers.kerberos import EncTicketPart
    from scapy.libs.rfc3961 import Key

    return EncTicketPart(Key(key_etype, key=key).decrypt(2, cipher))


@functools.lru_cache(maxsize=32)
def _authenticator_part(cipher: bytes, key_etype: int, key: bytes):
    """An AP-REQ's authenticator (key usage 11, RFC 4120 7.5.1), decrypted once for the
    parties that open the same AP-REQ in this process (the reference CA, the transcript)."""
    from scapy.layers.kerberos import KRB_Authenticator
    from scapy.libs.rfc3961 import Key

    return KRB_Authenticator(Key(key_etype, key=key).decrypt(11, cipher))


def inspect_ap_req(ap_req, keys: ServiceKeys | None) -> ApReqFacts:
    ticket = ap_req.ticket
    sname = "/".join(_text(s) for s in ticket.sname.nameString)
    etype = int(ticket.encPart.etype.val)
    options = str(ap_req.apOptions.val)
    base = dict(sname=sname, realm=_text(ticket.realm), ticket_etype=etype,
                mutual=len(options) > 2 and options[2] == "1")
    key = keys.find(sname, etype) if keys else None
    if key is None:
        return ApReqFacts(**base)
    try:
        enc, authenticator = open_ap_req(ap_req, key)
    except Exception:  # wrong key or a damaged ticket
        return ApReqFacts(**base)
    cname = "/".join(_text(s) for s in enc.cname.nameString) + "@" + _text(enc.crealm)
    flags = None
    cksum = authenticator.cksum
    if cksum is not None and int(cksum.cksumtype.val) == 0x8003:
        flags = int(cksum.checksum.Flags)
    end = getattr(enc.endtime, "datetime", None)
    subkey = authenticator.subkey
    return ApReqFacts(**base, cname=cname, checksum_flags=flags, ticket_end=end,
                      subkey_etype=int(subkey.keytype.val) if subkey is not None else None, opened=True)
