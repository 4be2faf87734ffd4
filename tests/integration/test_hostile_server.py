"""ERROR means the suite is broken, nothing else: a hostile server cannot make a case ERROR.

A selection of shipped cases (calls, activations, binds, raw negatives, the pending
flow) runs through the engine against :class:`tests.support.hostile.HostileServer`, which
answers with malformed bind_acks, broken string bindings, faults, truncated, oversized and
reordered fragments, garbage stubs, resets and silence, seeded.  Whatever it sends, every
verdict is FAIL, INCONCLUSIVE or N/A with a reason (or PASS where the answer happened to
be harmless), never ERROR and never a traceback; and the suite never connects anywhere but
loopback, whatever the bindings name.
"""

from __future__ import annotations

import collections
import ipaddress
import socket
import time

import pytest

from conformance.judge.engine import Engine
from conformance.judge.tables import load_cases
from conformance.model.cases import case_files
from conformance.model.catalogue import load_catalogue
from conformance.model.profile import Claims, Target
from conformance.model.verdicts import Verdict
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config
from conformance.wire.gss import nt_hash
from tests.support.hostile import ELSEWHERE, HostileServer
from tests.support.hosts import fresh_loopback

USER, PASSWORD, CA_NAME = "hostile-suite", "Hostile-Passw0rd!", "WCCE-LAB-CA"
SEED = 14
ROUNDS = 20  # each round runs every selected case once, against fresh connections
#: the share of connections whose plan answers one thing with hostility: on the activation
#: port, and on the exporter (which a run reaches only when its activation succeeded)
HOSTILITY = (0.6, 0.9)
BUDGET = 60.0  # seconds: on a slow machine the test stops early rather than run longer
TIMEOUT = 0.5  # the client's every wait: silence costs this much (loopback answers take milliseconds)
#: raw negatives of different shapes: fragments, a second connection by address, flags, an alter leg
RAW_ACTIONS = ("fragments-in-order", "unknown-assoc-group", "pfc-maybe", "alter-change-level")
CALL_METHODS = ("Request", "GetCACert", "Ping2")

CATALOGUE = load_catalogue()


def _selection(target: Target) -> list:
    """Cases of each kind the engine drives (one per raw action and call method, two of the
    others), over NTLM, whose claims
    the hostile server makes, with no second account and no refusal-effect probe."""
    chosen, per_kind = [], collections.Counter()
    for case in sorted(load_cases(case_files(), CATALOGUE), key=lambda c: c.id):
        client = dict(case.client)
        if client.get("provider") not in ("spnego-ntlm", "ntlm") or case.params.credentials != "target" \
                or "refusal-effect" in case.checks or not all(target.claims.holds(c) for c in case.claims):
            continue
        if case.kind == "raw":
            if case.action in RAW_ACTIONS and case.action not in {c.action for c in chosen if c.kind == "raw"}:
                chosen.append(case)
        elif case.kind == "call":  # a certificate request (a large response) and a small call
            if case.method in CALL_METHODS and case.method not in {c.method for c in chosen if c.kind == "call"}:
                chosen.append(case)
        elif per_kind[case.kind] < 2:
            per_kind[case.kind] += 1
            chosen.append(case)
    return chosen


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    host = fresh_loopback()
    config = load_config(None, host=host, port=0, state_dir=tmp_path_factory.mktemp("hostile-ca"),
                         users={USER: nt_hash(PASSWORD)}, ca_name=CA_NAME)
    ca = ReferenceCA(config)  # its parts only: the hostile server listens, not the CA
    try:
        with HostileServer(ca, host=host, seed=SEED, hostility=HOSTILITY) as server:
            yield server, host
    finally:
        ca.store.close()


def test_no_answer_of_a_hostile_server_makes_a_case_error(hostile, monkeypatch):
    server, host = hostile
    dialled = []  # every address the suite connects to, whatever path it takes
    connect = socket.create_connection

    def watched(address, *args, **kwargs):
        dialled.append(address[0])
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", watched)
    target = Target(host=host, activation_port=server.activation_port, ca_name=CA_NAME, user=USER, domain="",
                    password=PASSWORD, templates={"issue": "User", "pending": "UserApproval"},
                    claims=Claims(enforce_privacy=True, hardened_activation=True, pending_template=True, dcom=True))
    selection = _selection(target)
    assert {c.kind for c in selection} == {"call", "activation", "bind", "raw", "flow"}
    assert {c.action for c in selection if c.kind == "raw"} == set(RAW_ACTIONS)
    results, started, rounds = [], time.monotonic(), 0
    while rounds < ROUNDS and time.monotonic() - started < BUDGET:
        rounds += 1
        shared = Engine(target, CATALOGUE, timeout=TIMEOUT)
        for case in selection:
            # even rounds: a fresh engine, so every case activates through the server's plans;
            # odd rounds: one engine, whose first good activation the other cases share
            engine = shared if rounds % 2 else Engine(target, CATALOGUE, timeout=TIMEOUT)
            results.append((case, engine.run(case)))
    verdicts = collections.Counter(r.verdict for _, r in results)
    answers = collections.Counter(label.split("/")[0] for label in server.delivered)
    print(f"\n{rounds} rounds, {len(results)} case runs in {time.monotonic() - started:.1f}s, {len(server.delivered)} hostile "
          f"answers ({dict(answers)}): {dict((v.value, n) for v, n in verdicts.items())}")

    errors = [f"{c.id}: {r.actual}\n{r.reason}" for c, r in results if r.verdict is Verdict.ERROR]
    assert errors == []
    for case, result in results:
        assert "Traceback" not in result.reason + result.actual, case.id
        if result.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.NA):
            assert result.reason.strip() or any(c.actual for c in result.checks), (case.id, result)
    assert dialled and all(ipaddress.ip_address(a).is_loopback for a in dialled), \
        sorted(set(dialled))  # loopback only, whatever the bindings named (ELSEWHERE among them)
    assert ELSEWHERE not in dialled
    assert len(server.delivered) >= (200 if rounds == ROUNDS else 100), "too few hostile answers to mean anything"
    assert set(answers) == {"pdu", "stub", "bindings"}
    assert verdicts[Verdict.FAIL] and verdicts[Verdict.INCONCLUSIVE]
