"""An NTLM AUTHENTICATE's MIC checked over the bytes received ([MS-NLMP] 3.2.5.1.2) says what
scapy's ``verify_mic`` (a copy, its MIC zeroed, built again) says for every message scapy builds
back to its bytes, and what the spec says for one it does not; the acceptor and the passive
reading use it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.gssapi import GSS_S_BAD_MIC, GSS_S_COMPLETE
from scapy.layers.ntlm import HMAC_MD5, NTLM_AUTHENTICATE, NTLM_Header, NTLMSSP

from conformance.model.verdicts import Direction
from conformance.refca.rpc.ntlm import NtlmAcceptor, NtlmBehaviour
from conformance.wire.gss import mic_over_received_bytes, nt_hash
from conformance.wire.passive import PassiveContext

PASSWORD = "Passw0rd!"
MIC = slice(72, 88)
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0@\\"), min_size=1, max_size=20)


def _exchange(user: str = "alice", domain: str = "LAB"):
    """(NEGOTIATE, CHALLENGE, AUTHENTICATE) as sent, and the client's ExportedSessionKey."""
    client = NTLMSSP(UPN=f"{user}@{domain}", PASSWORD=PASSWORD)
    server = NTLMSSP(IDENTITIES={user: nt_hash(PASSWORD)}, DOMAIN_NB_NAME="LAB")
    ctx, negotiate, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
    _, challenge, _ = server.GSS_Accept_sec_context(None, NTLM_Header(bytes(negotiate)))
    ctx, authenticate, _ = client.GSS_Init_sec_context(ctx, input_token=NTLM_Header(bytes(challenge)),
                                                       target_name="host/ca")
    return bytes(negotiate), bytes(challenge), bytes(authenticate), ctx.ExportedSessionKey


def _verdicts(auth: bytes, negotiate: bytes, challenge: bytes, key: bytes) -> tuple[bool, bool]:
    """(ours over the bytes, scapy's own) for the AUTHENTICATE ``auth``."""
    ours = NTLM_Header(auth)
    assert mic_over_received_bytes(ours)
    scapys = NTLM_Header(auth)
    args = (key, NTLM_Header(negotiate), NTLM_Header(challenge))
    return ours.verify_mic(*args), NTLM_AUTHENTICATE.verify_mic(scapys, *args)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _scapy_builds_back(auth: bytes) -> bool:
    """Whether scapy, building the dissected AUTHENTICATE again with its MIC zeroed (as its
    ``verify_mic`` does), makes the bytes received with the MIC zeroed."""
    packet = NTLM_Header(auth)
    packet.MIC = bytes(16)
    return bytes(packet) == auth[:MIC.start] + bytes(16) + auth[MIC.stop:]


#: bytes whose change leaves an AUTHENTICATE: the flags, the MIC, the payload (names, responses)
changeable = st.one_of(st.integers(60, 63), st.integers(MIC.start, MIC.stop - 1), st.integers(88, 10_000))


@settings(max_examples=40, deadline=None)
@given(user=names, domain=names, at=changeable)
def test_over_the_bytes_received_says_what_scapys_check_says(user, domain, at):
    negotiate, challenge, auth, key = _exchange(user, domain)
    ours, scapys = _verdicts(auth, negotiate, challenge, key)
    assert ours is True
    # scapy agrees wherever it builds the message back to its bytes; where it does not (a name
    # it encodes otherwise than it came: 'Ā' …) its check refuses its own client's valid MIC
    assert scapys is _scapy_builds_back(auth)
    assert _verdicts(auth, negotiate, challenge, bytes(16)) == (False, False)  # another session key
    changed = _flip(auth, MIC.stop + (at - MIC.stop) % (len(auth) - MIC.stop) if at >= MIC.stop else at)
    ours, scapys = _verdicts(changed, negotiate, challenge, key)
    assert ours is False
    # scapy's check takes the message it rebuilt from what it read: a change it does not read
    # back (a byte of a name it decodes lossily) passes there
    assert scapys is False or not _scapy_builds_back(changed)
    assert _verdicts(auth, _flip(negotiate, 20), challenge, key) == (False, False)
    assert _verdicts(auth, negotiate, _flip(challenge, 24), key) == (False, False)


def _relaid(auth: bytes, key: bytes, negotiate: bytes, challenge: bytes) -> bytes:
    """The AUTHENTICATE with its payload in Windows' order (domain, user, workstation, LM, NT,
    session key) instead of scapy's, the offsets rewritten and the MIC made over the new bytes."""
    fields = {name: 12 + 8 * i for i, name in enumerate(["lm", "nt", "domain", "user", "workstation", "key"])}
    buffers = {}
    for name, at in fields.items():
        length, _, offset = struct.unpack_from("<HHI", auth, at)
        buffers[name] = auth[offset:offset + length]
    head, payload = bytearray(auth[:88]), b""
    for name in ["domain", "user", "workstation", "lm", "nt", "key"]:
        struct.pack_into("<HHI", head, fields[name], len(buffers[name]), len(buffers[name]), 88 + len(payload))
        payload += buffers[name]
    head[MIC] = bytes(16)
    head[MIC] = HMAC_MD5(key, negotiate + challenge + bytes(head) + payload)
    return bytes(head) + payload


def test_a_message_laid_out_in_another_order_is_checked_over_its_bytes():
    negotiate, challenge, auth, key = _exchange()
    relaid = _relaid(auth, key, negotiate, challenge)
    assert relaid != auth and len(relaid) == len(auth)
    ours, _ = _verdicts(relaid, negotiate, challenge, key)
    assert ours is True  # [MS-NLMP]: the MIC is over the messages as exchanged (scapy's own check,
    # which builds this layout back, takes it too)
    assert _verdicts(_flip(relaid, 90), negotiate, challenge, key)[0] is False


def test_only_a_dissection_left_as_received_with_a_mic_is_changed():
    negotiate, challenge, auth, key = _exchange()
    changed = NTLM_Header(auth)
    changed.Workstation = "OTHER"  # a field set: scapy's own check (it builds the packet as it is)
    assert not mic_over_received_bytes(changed)
    assert "verify_mic" not in vars(changed)
    assert not mic_over_received_bytes(NTLM_Header(negotiate))  # not an AUTHENTICATE
    moved = bytearray(auth)
    moved[MIC] = bytes(16)  # the MIC field scapy read is not the bytes at 72 (here: not read as sent)
    unread = NTLM_Header(bytes(moved))
    unread.fields["MIC"] = b"\x01" * 16
    assert not mic_over_received_bytes(unread)
    received = NTLM_Header(auth)
    assert mic_over_received_bytes(received)
    assert "verify_mic" not in vars(received.copy())  # a copy is scapy's again


@pytest.mark.parametrize("user", ["alice", "Ā"])  # 'Ā': scapy does not build the message back to its bytes
@pytest.mark.parametrize("tamper", [False, True])
def test_the_acceptor_and_the_passive_reading_take_the_mic_over_the_bytes(user, tamper):
    client = NTLMSSP(UPN=f"{user}@LAB", PASSWORD=PASSWORD)
    acceptor = NtlmAcceptor(behaviour=NtlmBehaviour(), IDENTITIES={user: nt_hash(PASSWORD)}, DOMAIN_NB_NAME="LAB")
    passive = PassiveContext(auth_type=10, identities={user.upper(): nt_hash(PASSWORD)})
    ctx, negotiate, _ = client.GSS_Init_sec_context(None, target_name="host/ca")
    passive.feed(bytes(negotiate), Direction.TO_SERVER)
    a_ctx, challenge, _ = acceptor.GSS_Accept_sec_context(None, NTLM_Header(bytes(negotiate)))
    passive.feed(bytes(challenge), Direction.TO_CLIENT)
    ctx, auth, _ = client.GSS_Init_sec_context(ctx, input_token=NTLM_Header(bytes(challenge)), target_name="host/ca")
    sent = _flip(bytes(auth), 80) if tamper else bytes(auth)
    assert _scapy_builds_back(bytes(auth)) is (user == "alice")
    received = NTLM_Header(sent)
    a_ctx, _, status = acceptor.GSS_Accept_sec_context(a_ctx, received)
    assert "verify_mic" in vars(received)  # the check made was the one over the bytes
    passive.feed(sent, Direction.TO_SERVER)
    # a valid MIC is taken by both, whether or not scapy could build the message back (scapy's
    # own check refused 'Ā''s: GSS_S_BAD_MIC, and no keys for the transcript); a changed one by neither
    assert status == (GSS_S_BAD_MIC if tamper else GSS_S_COMPLETE)
    assert passive.facts.keys is not tamper
