"""What scapymemo remembers is what scapy computes: the RFC 3961/8009 key derivation for every
encryption type scapy derives keys for, and an OID's name in the MIB as it is now."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.asn1.asn1 import ASN1_OID
from scapy.asn1.mib import MIBDict
from scapy.libs.rfc3961 import EncryptionType, Key, _AESEncryptionType_SHA256_SHA384, _enctypes

import conformance.wire  # noqa: F401  (installs the cache)
from conformance.wire import scapymemo

DERIVING = [EncryptionType.AES128_CTS_HMAC_SHA1_96, EncryptionType.AES256_CTS_HMAC_SHA1_96,
            EncryptionType.AES128_CTS_HMAC_SHA256_128, EncryptionType.AES256_CTS_HMAC_SHA384_192,
            EncryptionType.DES3_CBC_SHA1_KD]


def _derive(etype, key_bytes, usage, kind):
    key = Key(etype, key=key_bytes)
    profile = key.ep
    constant = struct.pack(">IB", usage, kind)
    if issubclass(profile, _AESEncryptionType_SHA256_SHA384):
        return key, profile, (constant, 128)
    return key, profile, (constant,)


@settings(max_examples=200, deadline=None)
@given(etype=st.sampled_from(DERIVING), seed=st.binary(min_size=48, max_size=48),
       usage=st.integers(0, (1 << 32) - 1), kind=st.sampled_from([0x55, 0xAA, 0x99]))
def test_a_remembered_derivation_is_scapys(etype, seed, usage, kind):
    key, profile, constant = _derive(etype, seed[:_enctypes[etype].keysize], usage, kind)
    scapy_derive = profile.derive.__func__.scapy_derive
    assert profile.derive(key, *constant) == scapy_derive(profile, key, *constant)
    assert profile.derive(key, *constant) == scapy_derive(profile, key, *constant)  # from the cache


def test_the_same_key_bytes_and_constant_under_another_enctype_or_length_are_another_key():
    """The cache keys by the enctype's class and every constant argument: two enctypes with
    keys of the same size, and RFC 8009's output length, give scapy's different derivations."""
    key_bytes, constant = bytes(range(16)), struct.pack(">IB", 24, 0xAA)
    sha1, sha256 = (Key(etype, key=key_bytes) for etype in (EncryptionType.AES128_CTS_HMAC_SHA1_96,
                                                             EncryptionType.AES128_CTS_HMAC_SHA256_128))
    first = sha1.ep.derive(sha1, constant)
    second = sha256.ep.derive(sha256, constant, 128)
    assert first == sha1.ep.derive.__func__.scapy_derive(sha1.ep, sha1, constant)
    assert second == sha256.ep.derive.__func__.scapy_derive(sha256.ep, sha256, constant, 128)
    assert first != second
    for bits in (128, 256, 128):
        assert sha256.ep.derive(sha256, constant, bits) == \
            sha256.ep.derive.__func__.scapy_derive(sha256.ep, sha256, constant, bits)
    assert len(sha256.ep.derive(sha256, constant, 256)) == 32
    # the class itself is part of the key: AES-256's derivation from the same 16 octets is another
    aes256 = _enctypes[EncryptionType.AES256_CTS_HMAC_SHA1_96]
    cached = sha1.ep.derive.__func__
    assert cached(sha1.ep, sha1, constant) == first
    assert cached(aes256, sha1, constant) == cached.scapy_derive(aes256, sha1, constant) != first


def test_kerberos_round_trips_through_the_cache():
    for etype in DERIVING:
        key = Key(etype, key=bytes(range(_enctypes[etype].keysize)))
        for usage in (11, 22, 24):
            assert key.decrypt(usage, key.encrypt(usage, b"payload!" * 9)) == b"payload!" * 9  # DES3 pads to 8


def test_a_derivation_is_made_once_and_the_cache_is_bounded(monkeypatch):
    key = Key(EncryptionType.AES256_CTS_HMAC_SHA1_96, key=bytes(32))
    function = key.ep.derive.__func__
    calls = []
    original = function.scapy_derive
    # count scapy's derivations behind the cache (the wrapper holds scapy's function)
    monkeypatch.setattr(scapymemo, "MAX_ENTRIES", 8)
    wrapped = scapymemo._cached_derive(lambda cls, k, *c: calls.append(c) or original(cls, k, *c))
    first = wrapped(key.ep, key, b"\0\0\0\x0bU")
    assert wrapped(key.ep, key, b"\0\0\0\x0bU") == first and len(calls) == 1
    for usage in range(20):
        wrapped(key.ep, key, struct.pack(">IB", usage, 0xAA))
    assert len(wrapped.memo) <= 8


def test_install_twice_wraps_once():
    scapymemo.install()
    assert not hasattr(MIBDict._oidname.scapy_oidname, "scapy_oidname")
    assert not hasattr(MIBDict.__setitem__.scapy_setitem, "scapy_setitem")
    for profile in scapymemo._DERIVING:
        function = profile.__dict__["derive"].__func__
        assert not hasattr(function.scapy_derive, "scapy_derive")


@settings(max_examples=200, deadline=None)
@given(arcs=st.lists(st.integers(0, 1 << 20), min_size=0, max_size=6),
       root=st.sampled_from(["1.2.840.113549.1.1", "1.3.6.1.4.1.311.2.2", "1.3.6.1.5.5.2", "2.5.29", "1.9.9.9"]))
def test_a_remembered_oid_name_is_scapys(root, arcs):
    from scapy.config import conf

    oid = ".".join([root, *map(str, arcs)])
    scapy_oidname = type(conf.mib)._oidname.scapy_oidname
    assert conf.mib._oidname(oid) == scapy_oidname(conf.mib, oid)
    assert conf.mib._oidname(oid) == scapy_oidname(conf.mib, oid)  # from the cache
    assert ASN1_OID(oid).oidname == scapy_oidname(conf.mib, oid)


def test_a_name_the_mib_gains_or_changes_is_the_one_given():
    mib = MIBDict(_name="test", **{"1.2.3": "root"})
    assert mib._oidname("1.2.3.4.5") == "root.4.5"
    mib["1.2.3.4"] = "child"  # gained
    assert mib._oidname("1.2.3.4.5") == "child.5"
    mib["1.2.3.4"] = "renamed"  # changed, same size
    assert mib._oidname("1.2.3.4.5") == "renamed.5"
    mib.d["1.2.3.4.5"] = "leaf"  # behind __setitem__'s back: the size changed
    assert mib._oidname("1.2.3.4.5") == "leaf"


def test_the_oid_names_are_made_once():
    mib = MIBDict(_name="test", **{"1.2.3": "root"})
    calls = []
    scapy_oidname = MIBDict._oidname.scapy_oidname
    cached = scapymemo._cached_oidname(lambda m, x: calls.append(x) or scapy_oidname(m, x))
    assert cached(mib, "1.2.3.9") == cached(mib, "1.2.3.9") == "root.9" and calls == ["1.2.3.9"]


def test_a_remembered_packet_answers_its_bytes_until_a_field_changes():
    from scapy.layers.dcerpc import DceRpc5, DceRpc5Bind
    from scapy.layers.ntlm import NTLM_NEGOTIATE

    packet = NTLM_NEGOTIATE(NegotiateFlags=0x62088215, ProductBuild=26100)
    built = bytes(packet)
    assert scapymemo.remember_bytes(packet, b"remembered") is packet
    assert bytes(packet) == b"remembered"  # not built again
    packet.ProductBuild = 1
    assert bytes(packet) != b"remembered" and bytes(packet) == bytes(NTLM_NEGOTIATE(
        NegotiateFlags=0x62088215, ProductBuild=1)) != built
    with pytest.raises(ValueError, match="one layer"):
        scapymemo.remember_bytes(DceRpc5() / DceRpc5Bind(), b"x")


def test_a_remembered_packet_changed_in_place_is_what_a_dissected_one_is():
    """scapy's own cache for a dissected packet, field for field: a flag changed in place drops
    the bytes of both; whatever scapy does not watch (an item inside the payload's list) it does
    not watch for either."""
    from scapy.layers.ntlm import AV_PAIR, NTLM_CHALLENGE, NTLM_Header

    def challenge():
        return NTLM_CHALLENGE(NegotiateFlags=0x62898215, ServerChallenge=b"12345678",
                              Payload=[("TargetName", ""), ("TargetInfo", [AV_PAIR(AvId=2, Value="LAB"), AV_PAIR()])])

    data = bytes(challenge())

    def flag(p):
        p.NegotiateFlags.NEGOTIATE_KEY_EXCH = False

    def item(p):
        p.TargetInfo[0].Value = "OTHERLAB"

    for change in (flag, item):
        remembered, dissected = scapymemo.remember_bytes(challenge(), data), NTLM_Header(data)
        assert isinstance(dissected, NTLM_CHALLENGE) and bytes(remembered) == bytes(dissected) == data
        change(remembered), change(dissected)
        assert (bytes(remembered) == data) is (bytes(dissected) == data)  # both kept, or both built again
    changed = scapymemo.remember_bytes(challenge(), data)
    flag(changed)
    assert bytes(changed) != data  # the flag: built again


# -- built_as_is ------------------------------------------------------------------------------


def _tokens_made_by_scapy():
    """Packets scapy's SSPs make (not dissected): a SPNEGO NegTokenInit around an NTLM
    NEGOTIATE, the NegTokenResp around the AUTHENTICATE and its mechListMIC, a Kerberos AP-REQ
    in SPNEGO, and the authenticator scapy's initiator encrypts into it."""
    from scapy.layers.kerberos import KerberosSSP, KRB_Ticket
    from scapy.layers.ntlm import NTLMSSP
    from scapy.layers.spnego import SPNEGOSSP
    from scapy.libs.rfc3961 import Key
    from scapy.packet import Packet

    from conformance.wire.gss import nt_hash, token_packet
    from tests.unit.wire.kerberos_lab import FLAGS, SPN, UPN, kerberos_lab

    client = SPNEGOSSP([NTLMSSP(UPN="alice@LAB", PASSWORD="Passw0rd!")])
    server = SPNEGOSSP([NTLMSSP(IDENTITIES={"alice": nt_hash("Passw0rd!")}, DOMAIN_NB_NAME="LAB")])
    ctx, init, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
    _, challenge, _ = server.GSS_Accept_sec_context(None, token_packet(9, bytes(init.copy())))
    _, resp, _ = client.GSS_Init_sec_context(ctx, input_token=token_packet(9, bytes(challenge.copy())),
                                             target_name="host/ca")
    encrypted: list = []

    class Recording(Key):  # the session key, keeping what scapy's initiator encrypts with it
        def encrypt(self, keyusage, plaintext, confounder=None, **kwargs):
            if isinstance(plaintext, Packet):
                encrypted.append(plaintext)
            return super().encrypt(keyusage, plaintext, confounder, **kwargs)

    lab = kerberos_lab()
    session = Recording(lab["session"].etype, key=lab["session"].key)
    ticket = KRB_Ticket(bytes(lab["initiator"].ssps[0].ST))
    _, ap_req, _ = SPNEGOSSP([KerberosSSP(ST=ticket, KEY=session, UPN=UPN, SPN=SPN)]).GSS_Init_sec_context(
        None, req_flags=FLAGS)
    (authenticator,) = encrypted
    assert authenticator.cksum is not None and authenticator.subkey is not None  # the one scapy writes
    return {"spnego-negotiate": init, "spnego-authenticate": resp, "spnego-ap-req": ap_req,
            "authenticator": authenticator}


@pytest.mark.parametrize("name", ["spnego-negotiate", "spnego-authenticate", "spnego-ap-req", "authenticator"])
def test_a_packet_built_as_is_is_what_scapy_builds(name, monkeypatch):
    from scapy.packet import Packet

    packet = _tokens_made_by_scapy()[name]
    assert not packet.explicit
    expected = bytes(packet.copy())  # scapy's way: a copy (not explicit) built after its first generated packet
    clones: list = []
    real = Packet.clone_with
    monkeypatch.setattr(Packet, "clone_with", lambda self, *a, **k: clones.append(self) or real(self, *a, **k))
    assert bytes(scapymemo.built_as_is(packet)) == expected
    assert clones == []  # no copy made on the way
    assert bytes(packet) == expected  # and again


def test_a_packet_with_random_values_or_a_set_of_values_is_left_to_scapy():
    from scapy.layers.inet import IP, TCP
    from scapy.volatile import RandShort

    for packet in [IP(dst="127.0.0.1") / TCP(sport=RandShort()), IP(dst="127.0.0.1", ttl=[1, 2]) / TCP(),
                   IP(dst="127.0.0.1", ttl=(1, 3)), IP(dst="127.0.0.1", id=RandShort())]:
        scapymemo.built_as_is(packet)
        assert not packet.explicit and not any(layer.explicit for layer in packet.iterpayloads())
    fixed = scapymemo.built_as_is(IP(dst="127.0.0.1") / TCP(sport=1234))
    assert all(layer.explicit for layer in fixed.iterpayloads())
    fixed.ttl = 9  # a field set afterwards: scapy's way again
    assert not fixed.explicit
