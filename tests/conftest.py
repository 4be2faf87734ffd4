"""Fixtures: reference CAs on fresh loopback addresses, with known lab users."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config
from conformance.wire.gss import nt_hash
from tests.support.hosts import can_bind_privileged, fresh_loopback

USERS = {"alice": "Alice-Passw0rd!", "bob": "Bob-Passw0rd!"}
CA_NAME = "WCCE-LAB-CA"


@pytest.fixture
def ca_factory(tmp_path_factory):
    """Start reference CAs; each gets its own loopback address and state directory."""
    started: list[ReferenceCA] = []

    def start(*, state_dir=None, policy=None, **overrides) -> ReferenceCA:
        host = overrides.pop("host", None) or fresh_loopback()
        port = 135 if can_bind_privileged() else 0
        config = load_config(
            None, host=host, port=overrides.pop("port", port),
            state_dir=state_dir or tmp_path_factory.mktemp("ca-state"),
            users={name: nt_hash(pw) for name, pw in USERS.items()}, ca_name=CA_NAME,
            **overrides)
        if policy is not None:
            config = dataclasses.replace(config, policy=policy)
        ca = ReferenceCA(config).start()
        started.append(ca)
        return ca

    yield start
    for ca in started:
        ca.stop()


@pytest.fixture
def ca(ca_factory) -> ReferenceCA:
    return ca_factory()


@pytest.fixture(scope="session")
def realm():
    """A throwaway MIT realm LAB.TEST on 127.0.0.1 with the lab users and the CA's keytab."""
    from conformance.targets.kdc import MitRealm

    with MitRealm(realm="LAB.TEST", service_host="ca01.lab.test", users=dict(USERS)) as running:
        yield running


@pytest.fixture
def kerberos_ca(ca_factory, realm) -> ReferenceCA:
    """A reference CA that accepts Kerberos with the realm's keytab (and NTLM)."""
    return ca_factory(kerberos_keytab=realm.keytab)


@pytest.fixture(autouse=True)
def _quiet_scapy():
    logging.getLogger("scapy").setLevel(logging.ERROR)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's ``--dist loadgroup`` (CI runs ``-n 2``), a test file's tests run on
    one worker, so its module fixtures (a DC, a full run) are made once: each file is a group
    unless its tests name a wider one (``samba-dc``: the Samba tests' DCs share an address), and
    the report tests are one (their session runs serve every file).  The conformance cases
    (``cases/*.toml``) stay ungrouped: they spread one by one."""
    for item in items:
        path = item.path.relative_to(config.rootpath) if item.path.is_relative_to(config.rootpath) else item.path
        if path.parts[:1] != ("tests",) or item.get_closest_marker("xdist_group") is not None:
            continue
        group = "tests/report" if path.parts[:2] == ("tests", "report") else path.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))
