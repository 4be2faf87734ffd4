"""The lab's Active Directory domain (conformance.targets.domain): a Samba AD DC on 127.0.0.1
with the reference CA as computer CA01$.  Its tickets carry a PAC, the CA takes the requester
from it and refuses tickets whose PAC is missing or changed, and the independent clients'
Kerberos paths (impacket's DCOMConnection, certipy in tests/probe) enroll."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from conformance.client import methods
from conformance.client.kerberos import TicketCache
from conformance.client.session import WcceSession
from conformance.client.settings import ClientSettings
from conformance.mutation.server import MUTANTS
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config
from conformance.targets.domain import domain_wanted, shared_domain
from conformance.wire.gss import nt_hash
from conformance.wire.kerberos import ServiceKeys
from conformance.wire.pac import find_pac, read_pac, server_signature_verifies
from tests.support.hosts import can_bind_privileged, fresh_loopback

REPO = pathlib.Path(__file__).resolve().parents[2]
USER = "wcce-suite"

pytestmark = pytest.mark.skipif(not domain_wanted(), reason="the lab's AD domain needs Samba and root "
                                                            "(bash .ci/install), and WCCE_KDC not 'mit'")


@pytest.fixture(scope="module")
def domain():
    return shared_domain()


@pytest.fixture
def domain_ca(domain, tmp_path):
    started = []

    def start(behaviour=None, port=0):
        config = load_config(None, host=fresh_loopback(), port=port, state_dir=tmp_path / f"ca{len(started)}",
                             users={USER: nt_hash(domain.users[USER])}, kerberos_keytab=pathlib.Path(domain.keytab),
                             kerberos_domain_member=True)
        ca = ReferenceCA(config, behaviour=behaviour).start()
        started.append(ca)
        return ca

    yield start
    for ca in started:
        ca.stop()


def _enroll(ca, domain, **knobs):
    settings = ClientSettings.from_mapping(
        {"provider": "spnego-kerberos", **knobs}, host=ca.config.listen.host, port=ca.activation_port, user=USER,
        domain=domain.realm.lower(), password=domain.users[USER], kdc=f"{domain.kdc[0]}:{domain.kdc[1]}",
        realm=domain.realm, service_host=domain.service_host, service_keytab=pathlib.Path(domain.keytab))
    session = WcceSession.from_settings(settings)
    try:
        _, activation = session.activate()
        if activation is None or activation.status != 0:
            return activation, None
        session.connect_exporter()
        return activation, session.call(methods.request(ca.config.ca_name, methods.new_pkcs10("domain-test")))
    finally:
        session.close()


def test_the_ca_is_a_computer_whose_spns_and_rpcss_alias_open_with_its_keytab(domain):
    keys = ServiceKeys.from_keytab(pathlib.Path(domain.keytab))
    assert keys.account == "ca01$" and {e for _, e in keys.keys} >= {17, 18, 23}
    tickets = TicketCache(kdc_host=domain.kdc[0], kdc_port=domain.kdc[1], realm=domain.realm, user=USER,
                          password=domain.users[USER])
    for spn in ("RPCSS/ca01.lab.test", "HOST/ca01.lab.test", "host/ca01"):  # RPCSS/: AD's sPNMappings
        ticket, _ = tickets.service_ticket(spn)
        assert int(ticket.encPart.etype.val) == 18  # AES256: msDS-SupportedEncryptionTypes as a member sets it
        key = keys.find(spn, 18)
        pac = find_pac(ticket.encPart.decrypt(key))
        assert pac is not None and server_signature_verifies(pac, key)
        assert read_pac(pac).identity == "LAB\\wcce-suite"


def test_the_requester_is_who_the_pac_names(domain, domain_ca):
    ca = domain_ca()
    activation, result = _enroll(ca, domain)
    assert activation.status == 0 and int(result.response.pdwDisposition) == 3
    stored = ca.store.get(int(result.response.pdwRequestId))
    assert stored.requester == "LAB\\wcce-suite"


@pytest.mark.parametrize("ticket_pac, refusal", [("absent", "carries no PAC"),
                                                 ("changed", "server signature does not verify")])
def test_a_ticket_without_or_with_a_changed_pac_is_refused_and_nothing_is_entered(domain, domain_ca, ticket_pac,
                                                                                   refusal, caplog):
    ca = domain_ca()
    with caplog.at_level("INFO"):
        activation, result = _enroll(ca, domain, ticket_pac=ticket_pac)
    assert result is None and (activation is None or activation.status != 0)
    assert ca.store.count() == 0
    assert refusal in caplog.text  # refused for its PAC, not for something else


@pytest.mark.parametrize("mutant, ticket_pac", [("pac-not-required", "absent"),
                                                ("pac-signature-unchecked", "changed")])
def test_each_pac_mutant_serves_the_ticket_the_reference_refuses(domain, domain_ca, mutant, ticket_pac):
    ca = domain_ca(MUTANTS[mutant].behaviour())
    activation, result = _enroll(ca, domain, ticket_pac=ticket_pac)
    assert activation.status == 0 and int(result.response.pdwDisposition) == 3


def test_impacket_dcomconnection_enrolls_over_kerberos(domain, domain_ca, tmp_path):
    """impacket's DCOMConnection with doKerberos and the ticket of a kinit/kvno credential cache
    (its own TGS-REQ is refused by an AD KDC: tests/support/impacket_client.ccache_ticket)."""
    from tests.support.impacket_client import enroll

    if not can_bind_privileged():
        pytest.skip("DCOMConnection knows only port 135 (needs root)")
    ca = domain_ca(port=135)
    env = {**os.environ, "KRB5_CONFIG": str(domain.krb5_conf), "KRB5CCNAME": str(tmp_path / "ccache")}
    subprocess.run(["kinit", f"{USER}@{domain.realm}"], input=domain.users[USER] + "\n", text=True, env=env,
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["kvno", f"HOST/{domain.service_host}"], env=env, check=True, capture_output=True, timeout=30)
    reply = enroll(ca.config.listen.host, user=USER, password="", domain=domain.realm, ca_name=ca.config.ca_name,
                   template="User", csr=methods.new_pkcs10("impacket-kerberos"), kerberos_ccache=str(tmp_path / "ccache"),
                   spn=f"HOST/{domain.service_host}", kdc_host=domain.kdc[0])
    assert int(reply["pdwDisposition"]) == 3
    assert ca.store.get(int(reply["pdwRequestId"])).requester == "LAB\\wcce-suite"  # from the PAC


def test_another_process_attaches_to_the_same_domain(domain):
    """One DC per machine run: a second process (an xdist worker, a CLI run) attaches."""
    out = subprocess.run([sys.executable, "-c", "from conformance.targets.domain import shared_domain\n"
                          "i = shared_domain(); print(i.owner_pid, i.directory)"],
                         capture_output=True, text=True, timeout=60, cwd=REPO, check=True)
    pid, directory = out.stdout.split()
    assert (int(pid), directory) == (domain.owner_pid, domain.directory)
    assert domain.owner_pid != os.getpid()  # the keeper's DC: no user owns it, none waits for another


def test_the_keeper_stops_the_dc_when_its_last_user_has_gone(tmp_path):
    """A second lab domain in a directory and on an address of its own: two users attach in
    turn; the first leaves at once though the second is still there (nobody waits for anybody),
    and when the second is gone the keeper stops the DC and frees its ports."""
    env = {**os.environ, "WCCE_LAB_DOMAIN_DIR": str(tmp_path / "lab"), "WCCE_LAB_DOMAIN_HOST": "127.0.0.4"}
    code = ("import sys, time\nfrom conformance.targets.domain import shared_domain\n"
            "i = shared_domain(); print(i.owner_pid, flush=True); sys.stdin.readline()")
    first = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env, cwd=REPO)
    keeper = int(first.stdout.readline())
    second = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env, cwd=REPO)
    try:
        assert int(second.stdout.readline()) == keeper
        first.communicate("\n", timeout=10)  # leaves at once, the second still attached
        time.sleep(1)
        assert _alive(keeper) and _answers("127.0.0.4", 135)
        second.communicate("\n", timeout=10)
        for _ in range(150):  # bounded: 30 s for the keeper to stop the DC and exit
            if not _alive(keeper):
                break
            time.sleep(0.2)
        assert not _alive(keeper) and not _answers("127.0.0.4", 135)
        assert not (tmp_path / "lab" / "domain.json").exists()
    finally:
        for process in (first, second):
            process.kill()
        if _alive(keeper):
            os.kill(keeper, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # not our child: ChildProcessError
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return pathlib.Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False
