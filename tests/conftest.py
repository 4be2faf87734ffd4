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



# -- xdist workers (CI runs ``pytest -n 3 --dist loadgroup``) ------------------------------------
# xdist's own loadgroup does not group under pytest 9.2 (its node-ID suffix no longer takes:
# pytest-dev/pytest-xdist#1386), so the groups are made here, from the node IDs, in one place.

#: Test files that must share a worker: the Samba tests' DCs share 127.0.0.3 (their ports are
#: fixed), and the report tests share the session's full runs (tests/report/conftest.py).
SHARED_WORKER = {"tests/integration/test_samba.py": "samba-dc",
                 "tests/integration/test_samba_kerberos.py": "samba-dc",
                 "tests/calibration/": "samba-dc",
                 "tests/report/": "report-runs"}
#: Started first, longest first (CI's --durations): a long group started last runs alone at the end.
START_FIRST = ("tests/mutants/", "tests/report/", "tests/calibration/", "tests/integration/test_hostile_server.py",
               "tests/integration/test_samba.py", "tests/integration/test_samba_kerberos.py")


def worker_group(nodeid: str) -> str:
    """What runs on one worker: a test file (its module fixtures are made once), a
    SHARED_WORKER group, or a conformance case alone (``cases/*.toml``: they spread)."""
    path = nodeid.split("::", 1)[0]
    if not path.startswith("tests/"):
        return nodeid
    return next((group for prefix, group in SHARED_WORKER.items() if path.startswith(prefix)), path)


def _first(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return next((rank for rank, prefix in enumerate(START_FIRST) if path.startswith(prefix)), len(START_FIRST))


def pytest_collection_modifyitems(config, items):
    if config.getoption("dist", None) == "loadgroup" or config.getoption("loadgroup", None):
        items.sort(key=_first)  # stable: within a rank, collection order


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler.loadscope import LoadScopeScheduling

    class WorkerGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    config.option.loadscopereorder = False  # the collection's order (START_FIRST), not group sizes
    return WorkerGroups(config, log)
