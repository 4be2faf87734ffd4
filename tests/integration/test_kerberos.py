"""Kerberos against a real MIT KDC: SPNEGO (9) and raw Kerberos (16), DCE style, at every
level, against the reference CA; the transcript opens the AP-REQ and the sealed stubs with
the CA's keytab; the checks read the checksum flags and the SPNs."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from conformance.capture.tap import Tap
from conformance.client import methods
from conformance.client.kerberos import KerberosError, TicketCache
from conformance.client.session import WcceSession
from conformance.client.settings import ClientSettings
from conformance.judge import checks
from conformance.wire.kerberos import GssFlag, ServiceKeys
from conformance.wire.rpc import PType
from tests.conftest import CA_NAME, USERS


def settings(ca, realm, provider="spnego-kerberos", **knobs) -> ClientSettings:
    return ClientSettings.from_mapping({"provider": provider, **knobs}, host=ca.config.listen.host,
                                       port=ca.activation_port, user="alice", domain="lab.test",
                                       password=USERS["alice"], kdc=f"127.0.0.1:{realm.port}", realm=realm.realm,
                                       service_host="ca01.lab.test")


def enroll(ca, realm, **knobs):
    tap = Tap()
    session = WcceSession.from_settings(settings(ca, realm, **knobs), tap=tap)
    try:
        outcome, activation = session.activate()
        result = None
        if activation is not None and activation.status == 0:
            session.connect_exporter()
            result = session.call(methods.request(CA_NAME, methods.new_pkcs10("kerberos-test")))
        return outcome, activation, result, tap.transcript(service_keys=ca.service_keys), session
    finally:
        session.close()


@pytest.mark.parametrize("provider, auth_type", [("spnego-kerberos", 9), ("kerberos", 16)])
def test_call_level_is_refused(kerberos_ca, realm, provider, auth_type):
    """The exporter's bind at CALL (3) gets bind_nak 9 whatever the provider (ledger
    rpc/bind/level-call)."""
    session = WcceSession.from_settings(settings(kerberos_ca, realm, provider=provider, level=3))
    try:
        _, activation = session.activate()
        assert activation is not None and activation.status == 0
        outcome = session.connect_exporter()
        assert (outcome.ptype, outcome.packet().provider_reject_reason) == (PType.BIND_NAK, 9)
    finally:
        session.close()


@pytest.mark.parametrize("provider, auth_type", [("spnego-kerberos", 9), ("kerberos", 16)])
@pytest.mark.parametrize("level", [2, 4, 5, 6])
def test_levels(kerberos_ca, realm, provider, auth_type, level):
    _, activation, result, t, _ = enroll(kerberos_ca, realm, provider=provider, level=level)
    assert activation is not None and activation.status == 0
    if level == 6:
        assert result.response is not None and int(result.response.pdwDisposition) == 3
    else:  # IF_ENFORCEENCRYPTICERTREQUEST: refused below PKT_PRIVACY
        assert result.fault_status == 5
    assert {s.auth_type for s in t.security} == {auth_type}
    assert checks.auth_type_consistent(t).verdict.value == "PASS"
    calls = [p for p in t.pdus if p.ptype in (PType.REQUEST, PType.RESPONSE) and p.sec_trailer
             and p.sec_trailer.auth_level > 2]
    assert calls and all(p.verified for p in calls)  # opened with the keytab: signed or sealed
    request = next(p for p in t.pdus if p.decoded and p.decoded.name == "Request_Request")
    assert request.decoded.ok
    if level == 6:
        confidentiality = checks.stub_confidentiality(t, [CA_NAME.encode("utf-16-le")])
        assert confidentiality.verdict.value == "PASS", confidentiality


def test_tickets_name_rpcss_for_activation_and_the_binding_principal_for_orpcs(kerberos_ca, realm):
    _, _, result, t, session = enroll(kerberos_ca, realm)
    assert int(result.response.pdwDisposition) == 3
    assert session.exporter_spn() == "host/ca01.lab.test" == kerberos_ca.config.orpc_principal
    snames = {s.facts.kerberos.sname for s in t.security}
    assert snames == {"RPCSS/ca01.lab.test", "host/ca01.lab.test"}
    assert all(s.facts.kerberos.cname == "alice@LAB.TEST" for s in t.security)
    assert checks.kerberos_spn(t, exporter_spn="host/ca01.lab.test").verdict.value == "PASS"
    assert checks.spnego_mechanism(t).actual == "Kerberos (MS)"


@pytest.mark.parametrize("impersonation, identify", [(1, True), (2, True), (3, False), (4, False)])
def test_checksum_flags_follow_the_impersonation_level(kerberos_ca, realm, impersonation, identify):
    _, _, result, t, _ = enroll(kerberos_ca, realm, impersonation=impersonation)
    assert int(result.response.pdwDisposition) == 3
    for s in t.security:
        flags = GssFlag(s.facts.kerberos.checksum_flags)
        assert bool(flags & GssFlag.IDENTIFY) is identify
        assert not flags & GssFlag.DELEG  # scapy cannot delegate; the lab CA is not ok-as-delegate
        assert flags & GssFlag.CONF and flags & GssFlag.DCE_STYLE
    judged = checks.impersonation_flags(t, impersonation=3)
    assert judged.verdict.value == ("FAIL" if identify else "PASS")


def test_ca_refuses_privacy_without_conf(kerberos_ca, realm):
    outcome, activation, _, t, _ = enroll(kerberos_ca, realm, kerberos_flags_clear=int(GssFlag.CONF))
    assert activation is None  # the activation context itself is at PKT_PRIVACY
    assert outcome.ptype in (PType.BIND_NAK, PType.FAULT) or outcome.closed
    assert checks.privacy_requested(t).verdict.value == "WARN"


def test_ca_refuses_a_ticket_for_a_principal_not_in_its_keytab(ca_factory, realm, tmp_path):
    """A keytab that lacks RPCSS/: the activation ticket opens nothing."""
    from scapy.modules.ticketer import Keytab

    keytab = Keytab(realm.keytab.read_bytes())
    keytab.entries = [e for e in keytab.entries if not e.getPrincipal().lower().startswith("rpcss/")]
    partial = tmp_path / "partial.keytab"
    partial.write_bytes(bytes(keytab))
    ca = ca_factory(kerberos_keytab=partial)
    outcome, activation, *_ = enroll(ca, realm)
    assert activation is None and outcome.ptype == PType.BIND_NAK


def test_without_the_keytab_the_transcript_cannot_read_but_does_not_guess(kerberos_ca, realm):
    tap = Tap()
    session = WcceSession.from_settings(settings(kerberos_ca, realm), tap=tap)
    session.activate()
    session.connect_exporter()
    session.call(methods.request(CA_NAME, methods.new_pkcs10("no-keys")))
    session.close()
    t = tap.transcript()
    assert all(s.facts.kerberos.sname and not s.facts.kerberos.opened for s in t.security)
    assert checks.impersonation_flags(t).verdict.value == "N/A"  # never PASS on what it could not see
    assert checks.kerberos_spn(t).verdict.value == "PASS"  # the ticket names its service in clear


def test_ticket_cache_errors_are_one_line(realm):
    cache = TicketCache(kdc_host="127.0.0.1", kdc_port=realm.port, realm=realm.realm, user="alice",
                        password="not-the-password")
    with pytest.raises(KerberosError, match="no TGT"):
        cache.tgt()
    down = dataclasses.replace(cache, kdc_port=1, password=USERS["alice"])
    with pytest.raises(KerberosError, match="KDC 127.0.0.1:1"):
        down.tgt()


def test_service_keys_match_case_insensitively(realm):
    keys = ServiceKeys.from_keytab(realm.keytab)
    assert keys.realm == "LAB.TEST"
    assert keys.find("RPCSS/CA01.LAB.TEST@LAB.TEST", 18) is not None
    assert keys.find("cifs/ca01.lab.test", 18) is None
    assert {p.split("/")[0] for p in keys.principals()} == {"rpcss", "host"}


def test_a_killed_run_leaves_no_kdc_behind(tmp_path):
    """The throwaway krb5kdc dies with the process that started it, even under SIGKILL."""
    import os
    import signal
    import subprocess
    import sys
    import time

    starter = subprocess.Popen(
        [sys.executable, "-c", "from conformance.targets.kdc import MitRealm; import time\n"
         "realm = MitRealm(users={}).start(); print(realm._process.pid, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=pathlib.Path(__file__).resolve().parents[2])
    try:
        kdc = int(starter.stdout.readline())
        assert pathlib.Path(f"/proc/{kdc}").exists()
    finally:
        starter.kill()
        starter.wait(10)
    for _ in range(100):  # bounded: up to 10 s for the KDC to get its SIGTERM and exit
        if not pathlib.Path(f"/proc/{kdc}").exists() or "krb5kdc" not in _cmdline(kdc):
            return
        time.sleep(0.1)
    os.kill(kdc, signal.SIGKILL)
    pytest.fail("krb5kdc outlived the killed process that started it")


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
