"""IF_ENFORCEENCRYPTICERTREQUEST and the DCOM activation hardening.

[MS-WCCE] 2.1: a CA with IF_ENFORCEENCRYPTICERTREQUEST "MUST refuse to establish
a connection with the client by returning a nonzero error" below PKT_PRIVACY; the
carrier is UNCONFIRMED, so each documented alternative is a configuration of the
reference CA and is checked here.  KB5004442: activation below PKT_INTEGRITY fails.
"""

from __future__ import annotations

import pytest

from conformance.refca.config import Policy, RequestDenial
from conformance.wire import wcce
from conformance.wire.rpc import FaultStatus, PType
from conformance.wire.wcce import Disposition, HResult, InterfaceFlag
from tests.conftest import CA_NAME, USERS
from tests.support.ourclient import open_session, request, security
from tests.support.scapy_client import activate, ntlm

ENFORCED = InterfaceFlag.ENFORCEENCRYPTICERTREQUEST


def _observed(result) -> tuple[str, int]:
    """The refusal as (carrier, value)."""
    if result.response is None:
        return "fault", result.fault_status
    if getattr(result.response, "status", 0):
        return "hresult", result.response.status
    return "disposition", result.response.pdwDisposition


@pytest.mark.parametrize("denial, expected", [
    (RequestDenial.FAULT_ACCESS_DENIED, ("fault", FaultStatus.ACCESS_DENIED)),
    (RequestDenial.HRESULT_E_ACCESSDENIED, ("hresult", HResult.E_ACCESSDENIED)),
    (RequestDenial.HRESULT_LEGACY, ("hresult", HResult.E_ACCESSDENIED_LEGACY)),
    (RequestDenial.DISPOSITION, ("disposition", HResult.E_ACCESSDENIED)),
])
@pytest.mark.parametrize("level", [2, 4, 5])
def test_request_below_privacy_is_refused(ca_factory, denial, expected, level):
    ca = ca_factory(policy=Policy(interface_flags=ENFORCED, request_denial=denial))
    session = open_session(ca, security(9, level))
    try:
        assert _observed(session.call(request())) == expected
    finally:
        session.close()
    assert ca.store.count() == 0  # refused before anything was stored


def test_request_at_privacy_is_accepted_with_enforcement(ca):
    assert ca.config.policy.enforce_privacy  # the Windows Server 2012+ default
    session = open_session(ca, security(10, 6))
    try:
        assert session.call(request()).response.pdwDisposition == Disposition.ISSUED
    finally:
        session.close()


def test_request_at_integrity_is_accepted_without_enforcement(ca_factory):
    ca = ca_factory(policy=Policy(interface_flags=InterfaceFlag(0)))
    session = open_session(ca, security(9, 5))
    try:
        assert session.call(request()).response.pdwDisposition == Disposition.ISSUED
    finally:
        session.close()


@pytest.mark.parametrize("method", ["GetCACert", "Ping", "GetCAProperty", "GetCAPropertyInfo", "Ping2"])
def test_every_method_is_refused_below_privacy(ca, method):
    args = {
        "GetCACert": wcce.GetCACert_Request(fchain=0, pwszAuthority=CA_NAME),
        "Ping": wcce.Ping_Request(pwszAuthority=CA_NAME),
        "GetCAProperty": wcce.GetCAProperty_Request(pwszAuthority=CA_NAME, PropID=6, PropIndex=0,
                                                    PropType=4),
        "GetCAPropertyInfo": wcce.GetCAPropertyInfo_Request(pwszAuthority=CA_NAME),
        "Ping2": wcce.Ping2_Request(pwszAuthority=CA_NAME),
    }[method]
    interface = wcce.IID_ICERTREQUESTD2 if method in ("GetCAProperty", "GetCAPropertyInfo", "Ping2") \
        else wcce.IID_ICERTREQUESTD
    session = open_session(ca, security(9, 5))
    try:
        assert session.call(args, interface=interface).fault_status == FaultStatus.ACCESS_DENIED
    finally:
        session.close()


def test_scapy_client_at_integrity_is_refused(ca):
    s = activate(ca.config.listen.host, ca.activation_port, level=5, ssp=ntlm("alice", USERS["alice"]))
    try:
        answer = s.call_raw(request())
        assert (answer.ptype, answer.status) == (PType.FAULT, FaultStatus.ACCESS_DENIED)
    finally:
        s.close()


@pytest.mark.parametrize("level", [2, 3, 4])
def test_activation_below_integrity_is_refused(ca, level):
    from conformance.client.session import WcceSession

    session = WcceSession(ca.config.listen.host, ca.activation_port,
                          security=security(9, level), activation_security=security(9, level))
    outcome, activation = session.activate()
    assert activation is None
    if level == 3:  # CALL: the bind is refused before any activation (ledger dcom/activation/level-call)
        assert (outcome.ptype, outcome.packet().provider_reject_reason) == (PType.BIND_NAK, 9)
    else:
        assert (outcome.ptype, outcome.fault_status) == (PType.FAULT, FaultStatus.ACCESS_DENIED)
    assert ca.objects.object_count() == 0


def test_activation_level_is_configurable(ca_factory):
    ca = ca_factory(policy=Policy(activation_min_level=2))
    from conformance.client.session import WcceSession

    session = WcceSession(ca.config.listen.host, ca.activation_port,
                          security=security(9, 6), activation_security=security(9, 2))
    _, activation = session.activate()
    assert activation is not None and activation.status == 0
