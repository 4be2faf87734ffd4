"""``keytab_entries`` reads keytabs entry by entry, by each entry's size: the MIT shape
(what scapy writes and reads) and Heimdal's (Samba's ``exportkeytab``: a 32-bit kvno and
32-bit flags after the key), which scapy's reader misreads."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from scapy.modules.ticketer import Keytab, KeytabEntry, KTCountedOctetString, KTKeyBlock

from scapy.libs.rfc3961 import EncryptionType, Key

from conformance.wire.gss import nt_hash
from conformance.wire.kerberos import ServiceKeys, keytab_entries

AES256 = 18
RC4 = 23


def _entry(principal: str, realm: str, etype: int, key: bytes, *, vno: int = 2) -> KeytabEntry:
    return KeytabEntry(realm=KTCountedOctetString(data=realm.encode()),
                       components=[KTCountedOctetString(data=c.encode()) for c in principal.split("/")],
                       name_type=1, timestamp=0, vno8=vno, key=KTKeyBlock(keytype=etype, keyvalue=key), vno=vno)


def _mit(entry: KeytabEntry) -> bytes:
    """``entry`` in MIT's shape: scapy's fields, with the size MIT writes (not counting itself)."""
    body = bytes(Keytab(entries=[entry]))[6:]
    return struct.pack("!I", len(body)) + body


def _heimdal(entry: KeytabEntry, flags: int = 0) -> bytes:
    """``entry`` as Heimdal writes it: the flags word after the 32-bit kvno, counted in size."""
    body = _mit(entry)[4:] + struct.pack("!I", flags)
    return struct.pack("!I", len(body)) + body


@pytest.mark.skipif(shutil.which("ktutil") is None, reason="MIT ktutil (krb5-user) not installed")
def test_a_keytab_written_by_mit_ktutil(tmp_path):
    """MIT's own writer (sizes exclude themselves; scapy's writer counts them, so it cannot
    be the reference): every entry read, with the key derived from the password."""
    path, principal = tmp_path / "mit.keytab", "host/ca01.wcce.test@WCCE.TEST"
    script = "".join(f"addent -password -p {principal} -k 2 -e {etype}\nPassw0rd!\n"
                     for etype in ("aes256-cts-hmac-sha1-96", "rc4-hmac")) + f"wkt {path}\nquit\n"
    subprocess.run(["ktutil"], input=script, text=True, capture_output=True, check=True, timeout=30)
    aes = Key.string_to_key(EncryptionType.AES256_CTS_HMAC_SHA1_96, b"Passw0rd!", b"WCCE.TESThostca01.wcce.test")
    assert keytab_entries(path.read_bytes()) == [(principal, AES256, aes.key),
                                                 (principal, RC4, nt_hash("Passw0rd!"))]


def test_heimdal_entries_with_flags_read_whole():
    first = _entry("host/dc1.samba.test", "SAMBA.TEST", AES256, b"\x11" * 32)
    second = _entry("HOST/DC1", "SAMBA.TEST", RC4, b"\x22" * 16)
    data = b"\x05\x02" + _heimdal(first, flags=1) + _heimdal(second)
    assert keytab_entries(data) == [("host/dc1.samba.test@SAMBA.TEST", AES256, b"\x11" * 32),
                                    ("HOST/DC1@SAMBA.TEST", RC4, b"\x22" * 16)]


def test_a_deleted_entry_is_skipped():
    kept = _entry("host/ca01", "WCCE.TEST", RC4, b"\x33" * 16)
    hole = struct.pack("!i", -8) + bytes(8)
    data = b"\x05\x02" + hole + _mit(kept)
    assert keytab_entries(data) == [("host/ca01@WCCE.TEST", RC4, b"\x33" * 16)]


def test_service_keys_from_a_heimdal_keytab(tmp_path):
    path = tmp_path / "dc.keytab"
    path.write_bytes(b"\x05\x02" + _heimdal(_entry("host/dc1.samba.test", "SAMBA.TEST", AES256, b"\x44" * 32)))
    keys = ServiceKeys.from_keytab(path)
    assert keys.realm == "SAMBA.TEST" and keys


def test_not_a_keytab_is_refused():
    with pytest.raises(ValueError, match="0x0502"):
        keytab_entries(b"\x05\x01" + bytes(10))


def test_a_keytab_we_write_reads_back():
    from conformance.wire.kerberos import keytab_bytes

    entries = [("alice@LAB.TEST", 23, bytes(range(16))), ("CA01$@LAB.TEST", 18, bytes(range(32))),
               ("HOST/ca01.lab.test@LAB.TEST", 17, bytes(16))]
    assert keytab_entries(keytab_bytes(entries)) == entries


@pytest.mark.skipif(shutil.which("ktutil") is None, reason="MIT ktutil (krb5-user) not installed")
def test_mit_ktutil_reads_a_keytab_we_write(tmp_path):
    from conformance.wire.kerberos import keytab_bytes

    path = tmp_path / "ours.keytab"
    path.write_bytes(keytab_bytes([("alice@LAB.TEST", 23, bytes(range(16))), ("HOST/ca01.lab.test@LAB.TEST", 18,
                                                                               bytes(range(32)))]))
    listed = subprocess.run(["ktutil"], input=f"rkt {path}\nlist -e\n", text=True, capture_output=True, timeout=30)
    assert "alice@LAB.TEST" in listed.stdout and "HOST/ca01.lab.test@LAB.TEST" in listed.stdout, listed
    assert "arcfour-hmac" in listed.stdout and "aes256-cts-hmac-sha1-96" in listed.stdout
