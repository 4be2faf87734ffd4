"""The PAC reader, its server-signature check and the two tickets no KDC issues, on a real
service ticket from a Samba 4.17 AD DC (tests/data/pac, recorded from the lab's domain)."""

from __future__ import annotations

import json
import pathlib
import struct

import pytest
from scapy.layers.kerberos import KRB_Ticket
from scapy.libs.rfc3961 import Key

from conformance.wire import pac

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "pac"
FACTS = json.loads((DATA / "samba-4.17-service-ticket.json").read_text())


@pytest.fixture
def ticket():
    return KRB_Ticket((DATA / "samba-4.17-service-ticket.der").read_bytes())


@pytest.fixture
def key():
    return Key(FACTS["etype"], key=bytes.fromhex(FACTS["key"]))


def _raw(ticket, key) -> bytes:
    return pac.find_pac(ticket.encPart.decrypt(key))


def test_the_pac_names_the_user_the_kdc_issued_the_ticket_to(ticket, key):
    facts = pac.read_pac(_raw(ticket, key))
    assert (facts.account, facts.domain, facts.user_rid) == (FACTS["account"], FACTS["domain"], FACTS["user_rid"])
    assert facts.identity == "LAB\\wcce-suite"
    assert facts.sid == f"{FACTS['domain_sid']}-{FACTS['user_rid']}" and facts.sid.startswith("S-1-5-21-")


def test_the_kdcs_server_signature_verifies_with_the_service_key_only(ticket, key):
    raw = _raw(ticket, key)
    assert pac.server_signature_verifies(raw, key)
    other = Key(FACTS["etype"], key=bytes(32))
    assert not pac.server_signature_verifies(raw, other)


@pytest.mark.parametrize("where", ["logon-info", "client-info", "upn"])
def test_any_changed_byte_outside_the_signatures_breaks_the_server_signature(ticket, key, where):
    raw = bytearray(_raw(ticket, key))
    kinds = {"logon-info": 0x1, "client-info": 0xA, "upn": 0xC}
    offset = next(o for kind, o, _ in pac.buffers(bytes(raw)) if kind == kinds[where])
    raw[offset + 30] ^= 0x01
    assert not pac.server_signature_verifies(bytes(raw), key)


def test_the_signature_fields_themselves_are_what_is_zeroed(ticket, key):
    raw = _raw(ticket, key)
    zeroed, signatures = pac._zeroed_signatures(raw)
    assert set(signatures) == {pac.SERVER_CHECKSUM, pac.KDC_CHECKSUM}
    assert len(zeroed) == len(raw) and zeroed != raw
    assert all(len(value) == 12 for _, value in signatures.values())  # HMAC-SHA1-96-AES256


def test_a_ticket_without_its_pac_still_opens_and_carries_none(ticket, key):
    stripped = pac.ticket_without_pac(ticket, key)
    enc = stripped.encPart.decrypt(key)
    assert pac.find_pac(enc) is None
    assert bytes(enc.key.keyvalue.val) == bytes(ticket.encPart.decrypt(key).key.keyvalue.val)  # same session key


def test_a_changed_pac_names_the_administrator_and_no_longer_verifies(ticket, key):
    changed = pac.ticket_with_changed_pac(ticket, key)
    raw = _raw(changed, key)
    assert pac.read_pac(raw).user_rid == 500
    assert not pac.server_signature_verifies(raw, key)


@pytest.mark.parametrize("damage", [
    b"", b"\x01\x00\x00\x00\x00\x00\x00\x00",  # shorter than its buffers
    struct.pack("<II", 1000, 0) + bytes(64),  # too many buffers
    struct.pack("<II", 1, 0) + struct.pack("<IIQ", 1, 100, 8),  # a buffer past the end
])
def test_a_malformed_pac_is_a_pac_error(damage):
    with pytest.raises(pac.PacError):
        pac.read_pac(damage)
    with pytest.raises(pac.PacError):
        pac.server_signature_verifies(damage, None)


def test_a_pac_without_logon_info_names_nobody(ticket, key):
    raw = bytearray(_raw(ticket, key))
    struct.pack_into("<I", raw, 8, 0x7F)  # the first buffer (LOGON_INFO) becomes an unknown type
    with pytest.raises(pac.PacError, match="LOGON_INFO"):
        pac.read_pac(bytes(raw))


def test_rebuilding_a_pac_with_nothing_replaced_gives_its_bytes(ticket, key):
    raw = _raw(ticket, key)
    assert pac._rebuilt(raw, {}) == raw


@pytest.mark.parametrize("how, kinds, verifies, any_type", [
    ("changed", [1, 10, 12, 6, 7, 16, 19], False, False),
    ("no-server-signature", [1, 10, 12, 7, 16, 19], False, False),
    ("unkeyed-signature", [1, 10, 12, 6, 7, 16, 19], False, True),  # a CRC32 verifies only if any type goes
    ("no-logon-info", [10, 12, 6, 7, 16, 19], True, True),  # signed afresh with the service key
])
def test_each_changed_pac_is_what_its_name_says(ticket, key, how, kinds, verifies, any_type):
    raw = _raw(pac.ticket_with_changed_pac(ticket, key, how), key)
    assert [kind for kind, _, _ in pac.buffers(raw)] == kinds
    assert pac.server_signature_verifies(raw, key) is verifies
    assert pac.server_signature_verifies(raw, key, keyed_only=False) is any_type
    if how != "no-logon-info":
        assert pac.read_pac(raw).user_rid == 500


def test_a_keyed_signature_of_the_wrong_type_for_the_key_does_not_verify(ticket, key):
    raw = _raw(ticket, key)
    md5 = pac._server_signed(raw, key, -138)  # HMAC-MD5 goes with an RC4 key, not this AES256 one
    assert not pac.server_signature_verifies(md5, key)
