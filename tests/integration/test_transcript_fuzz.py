"""Structure-aware garbage: a real recorded transcript, mutated, never makes the
transcript builder or the checks raise."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.client import methods
from conformance.client.settings import Provider
from conformance.wire.gss import nt_hash
from conformance.judge import checks
from conformance.wire.transcript import Chunk, build_transcript
from tests.conftest import USERS
from tests.integration.test_transcript import enroll, relaxed_ca, settings_for  # noqa: F401

IDENTITIES = {"alice": nt_hash(USERS["alice"])}


@pytest.fixture(scope="module")
def recorded(relaxed_ca):
    tap, _ = enroll(settings_for(relaxed_ca, Provider.SPNEGO_NTLM, 6), methods.new_pkcs10("fuzz"))
    return tap.transcript(IDENTITIES)


mutation = st.tuples(st.sampled_from(["flip", "truncate", "drop", "duplicate", "swap", "insert"]),
                     st.integers(0, 10_000), st.integers(0, 255), st.binary(max_size=40))


def mutate(pdus, ops):
    raws = [[p.conn, p.direction, p.time, bytearray(p.raw)] for p in pdus]
    for op, where, value, blob in ops:
        if not raws:
            break
        item = raws[where % len(raws)]
        data = item[3]
        if op == "flip" and data:
            data[where % len(data)] ^= value or 1
        elif op == "truncate":
            del data[where % (len(data) + 1):]
        elif op == "drop":
            raws.remove(item)
        elif op == "duplicate":
            raws.insert(where % len(raws), [*item[:3], bytearray(data)])
        elif op == "swap":
            other = raws[value % len(raws)]
            item[3], other[3] = other[3], item[3]
        elif op == "insert":
            data[where % (len(data) + 1):where % (len(data) + 1)] = blob
    return [Chunk(conn=c, direction=d, time=t, data=bytes(b)) for c, d, t, b in raws]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=6))
def test_mutated_recordings(recorded, ops):
    t = build_transcript(mutate(recorded.pdus, ops), recorded.connections, identities=IDENTITIES)
    for check in (checks.interface_version, checks.security_provider, checks.auth_type_consistent,
                  checks.auth_level, checks.impersonation_flags, checks.privacy_requested,
                  checks.not_anonymous, checks.spnego_mechanism, checks.even_legs):
        assert check(t).verdict is not None
    checks.stub_confidentiality(t, [b"WCCE-LAB-CA"])
