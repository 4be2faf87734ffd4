"""Transcript building and the checks never raise on random byte streams."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dcerpc import DceRpc5, DceRpc5Bind, DceRpc5Request
from scapy.packet import Raw

from conformance.judge import checks
from conformance.wire.transcript import Chunk, Connection, Direction, Endpoint, build_transcript

CONNS = [Connection(conn=i, client=Endpoint("127.0.0.1", 40000 + i), server=Endpoint("127.0.0.2", 135),
                    opened=0.0) for i in (1, 2)]
SEEDS = [bytes(DceRpc5(call_id=1) / DceRpc5Bind()),
         bytes(DceRpc5(call_id=2) / DceRpc5Request(opnum=3) / Raw(b"\x00" * 40))]


def run_all(chunks):
    t = build_transcript(chunks, CONNS, identities={"alice": b"\x11" * 16})
    for check in (checks.interface_version, checks.security_provider, checks.auth_type_consistent,
                  checks.auth_level, checks.impersonation_flags, checks.privacy_requested,
                  checks.not_anonymous, checks.spnego_mechanism, checks.even_legs):
        check(t)
    checks.stub_confidentiality(t, [b"x"])
    return t


chunk = st.builds(lambda conn, d, data, i: Chunk(conn=conn, direction=d, time=float(i), data=data),
                  st.sampled_from([1, 2]), st.sampled_from(list(Direction)),
                  st.one_of(st.binary(max_size=300), st.sampled_from(SEEDS).flatmap(
                      lambda s: st.binary(min_size=0, max_size=len(s)).map(
                          lambda noise: bytes(a ^ b for a, b in zip(s, noise + b"\0" * len(s)))))),
                  st.integers(0, 1000))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chunk, max_size=12))
def test_random_streams(chunks):
    run_all(chunks)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=200))
def test_a_valid_looking_header_with_random_body(body):
    header = bytearray(SEEDS[0][:16])
    header[8:10] = (16 + len(body)).to_bytes(2, "little")
    run_all([Chunk(conn=1, direction=Direction.TO_SERVER, time=0.0, data=bytes(header) + body)])


def test_an_auth3_whose_padding_is_longer_than_its_body_is_an_error_and_opens_nothing():
    """scapy's dissection judges an rpc_auth3 (the transcript's reply readers are compiled, its
    auth3 reading is not): a sec_trailer whose auth_pad_length reaches into the common header
    makes the PDU an error, and its NTLM AUTHENTICATE gives no keys."""
    from conformance.wire.protection import SecTrailer
    from conformance.wire.rpc import PType
    from tests.support.recorded import load

    for name in ("spnego-auth3", "raw-ntlm"):
        recording = load(name)
        auth3 = next(p for p in recording.transcript().pdus if p.ptype == PType.AUTH3)
        assert auth3.error is None and any(p.verified for p in recording.transcript().pdus)
        raw = bytearray(auth3.raw)
        raw[auth3.sec_trailer.offset + 2] = 12  # auth_pad_length: 12 octets of a 4-octet body
        changed = recording.with_pdu(auth3.index, bytes(raw)).transcript()
        assert changed.pdus[auth3.index].error, name
        context = next(s for s in changed.security if s.conn == auth3.conn)
        assert not context.facts.keys, name
        assert not any(p.verified for p in changed.pdus if p.conn == auth3.conn), name
