"""RFC 3961 key derivation, remembered: scapy derives the same keys again on every call.

Every Kerberos encryption, decryption and checksum scapy makes derives its keys first —
DK(key, usage | 0xAA / 0x55 / 0x99), or RFC 8009's KDF-HMAC-SHA2 — two or three AES block
encryptions or HMACs, ~0.2 ms a key, twice or three times a call.  A session uses one
session key and a handful of key usages for all its PDUs, on each side that follows it
(the driven client, the reference CA, the transcript), so nearly every derivation is one
already made.

A derivation is a function of the encryption type's class, the key's bytes and the
constant (label, length, context): :func:`install` wraps scapy's two ``derive``
implementations in a bounded cache keyed by exactly those, and returns what scapy returns
(bytes, immutable).  ``tests/unit/wire/test_kdfcache.py`` holds the cached derivation to
scapy's own for every encryption type and many keys and usages.
"""

from __future__ import annotations

from scapy.libs import rfc3961

__all__ = ["install", "MAX_ENTRIES"]

#: Derived keys kept (a few hundred bytes each); past it the cache starts again empty.
MAX_ENTRIES = 4096

_DERIVING = (rfc3961._SimplifiedEncryptionProfile, rfc3961._AESEncryptionType_SHA256_SHA384)


def _cached(derive):
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


def install() -> None:
    """Wrap scapy's derivations (once; a second call changes nothing).  Called when
    ``conformance.wire`` is imported, under the interpreter's import lock."""
    for profile in _DERIVING:
        current = profile.__dict__["derive"].__func__
        if not hasattr(current, "scapy_derive"):
            profile.derive = classmethod(_cached(current))
