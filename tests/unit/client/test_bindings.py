"""The exporter's string bindings, tried in order as Windows clients try them
(conformance.client.bindings): which ones are candidates, why the others are passed
over, what the suite may contact, and the bounded waits.  Names resolve through tables
here (to loopback only); no DNS, and no socket but loopback ones."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conformance.client.bindings import (
    MAX_ATTEMPTS, AddressPolicy, Candidate, Resolver, Unresolved, candidates, connect_in_order, quoted,
)
from conformance.client.errors import BindingProblem, NoUsableBinding
from conformance.wire.dcom import StringBinding, TowerId

TCP = TowerId.NCACN_IP_TCP


def table(names: dict[str, tuple[str, ...]]):
    """A resolver lookup that knows ``names`` and nothing else (like getaddrinfo's EAI_NONAME)."""
    def lookup(name: str) -> tuple[str, ...]:
        if name not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return names[name]
    return lookup


def binding(text: str, tower: int = TCP) -> StringBinding:
    return StringBinding(tower_id=tower, network_address=text)


NAMES = Resolver(lookup=table({"localhost": ("127.0.0.1", "::1"), "ca01.lab.test": ("192.0.2.10",),
                               "ca01-loop": ("127.9.9.9",)}))
LOOPBACK = AddressPolicy(lab=False)


def test_each_binding_in_order_and_why_the_others_are_passed_over():
    found, problems = candidates([
        binding("CA01[49667]"),  # a computer name that does not resolve (the name-only CA)
        binding("127.0.0.2"),  # no endpoint
        binding("127.0.0.3[49667]", tower=0x1F),  # ncacn_http
        binding("127.0.0.4[70000]"),  # not a TCP port
        binding("0.0.0.0[49667]"),  # the unspecified address
        binding("ca01.lab.test[49667]"),  # resolves elsewhere: not contacted on a loopback run
        binding("localhost[49667]"),  # both loopback addresses, in the resolver's order
        binding("127.0.0.5[1234]"),
    ], LOOPBACK, NAMES)
    assert found == [Candidate(binding="ncacn_ip_tcp:localhost[49667]", address="127.0.0.1", port=49667),
                     Candidate(binding="ncacn_ip_tcp:localhost[49667]", address="::1", port=49667),
                     Candidate(binding="ncacn_ip_tcp:127.0.0.5[1234]", address="127.0.0.5", port=1234)]
    assert [(p.binding, p.conclusive) for p in problems] == [
        ("ncacn_ip_tcp:CA01[49667]", True), ("ncacn_ip_tcp:127.0.0.2", True),
        ("tower 0x001f:127.0.0.3[49667]", True), ("ncacn_ip_tcp:127.0.0.4[70000]", True),
        ("ncacn_ip_tcp:0.0.0.0[49667]", True), ("ncacn_ip_tcp:ca01.lab.test[49667]", False)]
    assert "does not resolve" in problems[0].why and "no endpoint" in problems[1].why
    assert "outside loopback" in problems[5].why


def test_a_lab_run_follows_the_bindings_to_the_ca_s_other_addresses():
    """The profile names a lab CA: its bindings may name any of its addresses."""
    lab = AddressPolicy.for_host("ca01.lab.test", NAMES)
    assert lab.lab and not AddressPolicy.for_host("localhost", NAMES).lab
    assert not AddressPolicy.for_host("127.0.0.1", NAMES).lab
    found, problems = candidates([binding("ca01.lab.test[49667]")], lab, NAMES)
    assert [c.address for c in found] == ["192.0.2.10"] and problems == []


def test_a_loopback_run_never_gets_a_candidate_outside_loopback():
    found, problems = candidates([binding("192.0.2.1[135]"), binding("::ffff:192.0.2.1[135]"),
                                  binding("::ffff:127.0.0.1[135]"), binding("::1[135]")], LOOPBACK, NAMES)
    assert [c.address for c in found] == ["::ffff:7f00:1", "::1"]  # ::ffff:127.0.0.1, as ipaddress writes it
    assert [p.conclusive for p in problems] == [False, False]


def test_names_are_looked_up_once_and_at_most_max_attempts_per_exporter():
    asked = []

    def lookup(name):
        asked.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    resolver = Resolver(lookup=lookup)
    bindings = [binding(f"host{i}.invalid[135]") for i in range(3 * MAX_ATTEMPTS)] + [binding("127.0.0.1[135]")]
    found, problems = candidates(bindings, LOOPBACK, resolver)
    assert [c.address for c in found] == ["127.0.0.1"]
    assert len(asked) == MAX_ATTEMPTS
    assert sum(not p.conclusive for p in problems) == 2 * MAX_ATTEMPTS  # not looked up: says nothing
    candidates(bindings, LOOPBACK, resolver)
    assert len(asked) == MAX_ATTEMPTS  # remembered


def test_a_slow_resolver_is_waited_for_a_bounded_time():
    release = threading.Event()

    def lookup(name):
        release.wait(5)
        return ("127.0.0.1",)

    resolver = Resolver(timeout=0.1, lookup=lookup)
    started = time.monotonic()
    with pytest.raises(Unresolved) as caught:
        resolver.resolve("slow.example")
    release.set()
    assert time.monotonic() - started < 1.0
    assert not caught.value.conclusive  # it ran out of time: that says nothing about the name


@pytest.mark.parametrize("error, conclusive", [(socket.EAI_NONAME, True), (socket.EAI_AGAIN, False)])
def test_a_temporary_resolver_failure_is_not_conclusive(error, conclusive):
    def lookup(name):
        raise socket.gaierror(error, "no")

    with pytest.raises(Unresolved) as caught:
        Resolver(lookup=lookup).resolve("CA01")
    assert caught.value.conclusive is conclusive


@pytest.mark.parametrize("text", ["\x00[135]", "a" * 300 + "[135]", "\udcff[135]", "[135]", " [135]"])
def test_a_host_no_resolver_can_ask_for_is_a_problem_not_an_exception(text):
    found, problems = candidates([binding(text)], LOOPBACK, Resolver())
    assert found == [] and len(problems) == 1 and problems[0].conclusive


def test_the_first_candidate_that_connects_is_used():
    attempts = []

    def connect(candidate: Candidate):
        attempts.append(candidate.port)
        if candidate.port != 3:
            raise ConnectionRefusedError(111, "Connection refused")
        return "connection"

    found = [Candidate(binding=f"ncacn_ip_tcp:127.0.0.1[{p}]", address="127.0.0.1", port=p) for p in (1, 2, 3, 4)]
    assert connect_in_order(found, (), (), connect) == ("connection", found[2])
    assert attempts == [1, 2, 3]


def test_none_connecting_is_not_conclusive_and_quotes_every_binding():
    def refuse(candidate):
        raise ConnectionRefusedError(111, "Connection refused")

    found = [Candidate(binding="ncacn_ip_tcp:127.0.0.1[1]", address="127.0.0.1", port=1)]
    earlier = (BindingProblem(binding="ncacn_ip_tcp:CA01[1]", why="'CA01' does not resolve", conclusive=True),)
    with pytest.raises(NoUsableBinding) as caught:
        connect_in_order(found, earlier, ("ncacn_ip_tcp:CA01[1]", "ncacn_ip_tcp:127.0.0.1[1]"), refuse)
    fault = caught.value
    assert not fault.conclusive  # a refused connection: the target may be down, or a firewall
    assert fault.observed == "no usable string binding"
    assert "CA01[1]" in str(fault) and "127.0.0.1[1] did not connect" in str(fault)


def test_at_most_max_attempts_connections_are_tried():
    tried = []

    def refuse(candidate):
        tried.append(candidate)
        raise TimeoutError("timed out")

    found = [Candidate(binding="b", address="127.0.0.1", port=p) for p in range(1, 3 * MAX_ATTEMPTS)]
    with pytest.raises(NoUsableBinding):
        connect_in_order(found, (), ("b",), refuse)
    assert len(tried) == MAX_ATTEMPTS


def test_unusable_bindings_are_conclusive_only_when_every_binding_says_nothing_usable():
    conclusive = BindingProblem(binding="a", why="no endpoint", conclusive=True)
    unreached = BindingProblem(binding="b", why="did not connect", conclusive=False)
    assert NoUsableBinding(("a",), (conclusive,)).conclusive
    assert not NoUsableBinding(("a", "b"), (conclusive, unreached)).conclusive


def test_quoted_as_the_target_sent_it():
    assert quoted(binding("CA01[49667]")) == "ncacn_ip_tcp:CA01[49667]"
    assert quoted(binding("x", tower=0x1F)) == "tower 0x001f:x"
