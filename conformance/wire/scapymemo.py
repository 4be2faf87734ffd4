"""Four of scapy's pure computations, remembered: scapy makes them again on every call
(and one it makes for nothing: :func:`built_as_is`).

* **RFC 3961/8009 key derivation.**  Every Kerberos encryption, decryption and checksum
  scapy makes derives its keys first — DK(key, usage | 0xAA / 0x55 / 0x99), or RFC 8009's
  KDF-HMAC-SHA2 — two or three AES block encryptions or HMACs, ~0.2 ms a key, twice or
  three times a call.  A session uses one session key and a handful of key usages for all
  its PDUs, on each side that follows it (the driven client, the reference CA, the
  transcript), so nearly every derivation is one already made.  A derivation is a function
  of the encryption type's class, the key's bytes and the constant (label, length,
  context); the cache is keyed by exactly those and holds what scapy returns (bytes).
* **A built packet's bytes** (:func:`remember_bytes`).  scapy builds a packet again each time
  its bytes are asked for — for the wire, and again for a MIC over the messages sent (~1 ms an
  NTLM CHALLENGE).  A packet that will not change is given its bytes once; changing a field
  of it afterwards (set, or changed in place) makes scapy build it again, as before.
* **A decryption already made** (:func:`remember_decryption`).  scapy's Kerberos acceptor
  decrypts and dissects the ticket and authenticator of an AP-REQ (~1.2 and ~1.6 ms with a
  PAC) that the reference CA's admission checks, or the transcript's reading of the AP-REQ,
  has just decrypted from the same packet.  That packet's encrypted part answers the same
  call (the same key, scapy's own key usage and class) with the dissection already made.
* **An OID's name.**  Every ``ASN1_OID`` scapy makes (each OID of every SPNEGO and Kerberos
  token it builds or dissects) looks its name up by scanning the whole MIB (~0.2 ms).  The
  name is a function of the OID and the MIB's contents; the cache is per MIB and starts again
  empty whenever the MIB gains or changes an entry.

:func:`install` wraps scapy's functions in bounded caches and returns what scapy returns;
``tests/unit/wire/test_scapymemo.py`` holds each to scapy's own.
"""

from __future__ import annotations

import weakref

from scapy.asn1.mib import MIBDict
from scapy.base_classes import Gen
from scapy.libs import rfc3961
from scapy.packet import NoPayload, Packet
from scapy.volatile import VolatileValue

__all__ = ["install", "remember_bytes", "remember_decryption", "built_as_is", "MAX_ENTRIES"]

#: Entries kept per cache (a derived key, an OID's name); past it a cache starts again empty.
MAX_ENTRIES = 4096

_DERIVING = (rfc3961._SimplifiedEncryptionProfile, rfc3961._AESEncryptionType_SHA256_SHA384)


def _cached_derive(derive):
    """A ``derive(cls, key, *constant)`` classmethod's function, remembered by value."""
    memo: dict = {}

    def cached_derive(cls, key, *constant):
        token = (cls, bytes(key.key), constant)
        try:
            return memo[token]
        except KeyError:
            pass
        value = derive(cls, key, *constant)
        if len(memo) >= MAX_ENTRIES:
            memo.clear()
        memo[token] = value
        return value

    cached_derive.scapy_derive = derive  # scapy's own, for the test that compares them
    cached_derive.memo = memo
    return cached_derive


def remember_bytes(packet, data: bytes):
    """``packet`` (one layer, built by scapy from its fields) answers ``data`` — what it builds
    to — when asked for its bytes, without building itself again (scapy's own cache for a
    dissected packet); a field set or changed in place afterwards drops it.  Returns ``packet``."""
    if not isinstance(packet.payload, NoPayload):
        raise ValueError("remember_bytes takes one layer")
    # as Packet.do_dissect does: a copy of each mutable field's value, so that a change made in
    # place (a flag of a FlagValue, an item of a list) drops the bytes as an assignment does
    watched = {}
    for field in packet.fields_desc:
        fld, value = packet.getfield_and_val(field.name)
        if value is not None and (field.islist or field.holds_packets or field.ismutable):
            watched[field.name] = packet._raw_packet_cache_field_value(fld, value, copy=True)
    packet.raw_packet_cache = data
    packet.raw_packet_cache_fields = watched
    return packet


def remember_decryption(encrypted, key, plain, *, made_as: tuple[int, type] | None = None):
    """``encrypted`` (an EncryptedData of a dissected packet) answers ``plain`` — scapy's
    ``encrypted.decrypt(key)``, made by the caller — when decrypted again with a key of the same
    type and bytes and scapy's own key usage and class; any other call decrypts as before.
    ``made_as``: the (key usage, class) ``plain`` was made with, when the caller named them;
    remembered only where they are the ones scapy takes for this packet.  The answer is the
    same object each time: its readers (scapy's acceptor, our checks) only read it.  Returns
    ``plain``."""
    if made_as is not None:
        try:
            if tuple(encrypted.get_usage()) != tuple(made_as):
                return plain
        except ValueError:  # scapy cannot tell this packet's key usage: nothing to answer for it
            return plain
    etype, secret = key.etype, bytes(key.key)
    scapy_decrypt = type(encrypted).decrypt

    def decrypt(other, key_usage_number=None, cls=None):
        if key_usage_number is None and cls is None and other.etype == etype and bytes(other.key) == secret:
            return plain
        return scapy_decrypt(encrypted, other, key_usage_number, cls)

    # an instance attribute (scapy's Packet.__setattr__ takes a name that is no field so): this
    # packet alone, and no copy of it, answers from memory
    encrypted.decrypt = decrypt
    return plain


def built_as_is(packet):
    """``packet``, which scapy builds as it is: returns it.

    A packet made from fields (not dissected) is not "explicit", and scapy builds one by first
    taking the first packet it generates (``next(iter(packet))``): a copy with each random value
    fixed and each set of values taken at its first — made again for every packet inside it as
    that one is built, ~2 ms of a SPNEGO token or a Kerberos authenticator.  A packet with
    neither (no volatile value in any field or default, no set of values in a field that holds
    one value) generates exactly one packet, equal to itself; it and every packet inside it are
    marked explicit, as scapy marks that copy, so scapy builds them without it.  A packet with
    either is left as it is (scapy copies it).  Setting a field later makes it non-explicit
    again (scapy's ``setfieldval``)."""
    marked: list = []
    if _as_is(packet, marked):
        for node in marked:
            node.explicit = 1
    return packet


def _as_is(packet, marked: list) -> bool:
    """Whether ``packet`` and what it holds generate only themselves; collects the packets to mark."""
    while packet is not None and not isinstance(packet, NoPayload):
        if not isinstance(packet, Packet):
            return True  # raw bytes as a payload or field value
        if not packet.explicit and packet.raw_packet_cache is None:
            if any(isinstance(v, VolatileValue) for v in packet.default_fields.values()) or any(
                    isinstance(v, VolatileValue) for v in packet.overloaded_fields.values()):
                return False
            marked.append(packet)
        for name, value in packet.fields.items():
            if not _value_as_is(packet, name, value, marked):
                return False
        packet = packet.payload
    return True


def _value_as_is(packet, name: str, value, marked: list) -> bool:
    if isinstance(value, Packet):
        return _as_is(value, marked)
    if isinstance(value, (VolatileValue, Gen)):
        return False
    if isinstance(value, (list, tuple)):
        field = packet.fieldtype.get(name)
        if field is None or not field.islist:
            return False  # scapy would take a set of values (or a range) here
        return all(_item_as_is(item, marked) for item in value)
    return True


def _item_as_is(item, marked: list) -> bool:
    """An item of a list field (scapy takes the list as one value): packets in it, also inside
    tuples (NTLM's payload is (name, value) pairs), are built by themselves."""
    if isinstance(item, Packet):
        return _as_is(item, marked)
    if isinstance(item, (list, tuple)):
        return all(_item_as_is(inner, marked) for inner in item)
    return not isinstance(item, (VolatileValue, Gen))


#: per MIB: (its size when the names were made, {OID: name})
_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached_oidname(oidname):
    def cached_oidname(mib, oid):
        size = len(mib.d)
        names = _NAMES.get(mib)
        if names is None or names[0] != size or len(names[1]) >= MAX_ENTRIES:
            names = _NAMES[mib] = (size, {})
        try:
            return names[1][oid]
        except KeyError:
            name = names[1][oid] = oidname(mib, oid)
            return name

    cached_oidname.scapy_oidname = oidname
    return cached_oidname


def _forgetting(setitem):
    def forgetting_setitem(mib, key, value):
        _NAMES.pop(mib, None)  # a name changed or added: the names made are made again
        return setitem(mib, key, value)

    forgetting_setitem.scapy_setitem = setitem
    return forgetting_setitem


def install() -> None:
    """Wrap scapy's functions (once; a second call changes nothing).  Called when
    ``conformance.wire`` is imported, under the interpreter's import lock."""
    for profile in _DERIVING:
        current = profile.__dict__["derive"].__func__
        if not hasattr(current, "scapy_derive"):
            profile.derive = classmethod(_cached_derive(current))
    if not hasattr(MIBDict._oidname, "scapy_oidname"):
        MIBDict._oidname = _cached_oidname(MIBDict._oidname)
        MIBDict.__setitem__ = _forgetting(MIBDict.__setitem__)
