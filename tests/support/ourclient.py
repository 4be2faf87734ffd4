"""The suite's own client (conformance.client) set up for reference-CA tests."""

from __future__ import annotations

from conformance.client.rpc import Credentials, Security
from conformance.client.session import WcceSession
from conformance.wire import wcce
from tests.conftest import CA_NAME, USERS
from tests.support.certs import make_csr


def security(auth_type: int = 9, level: int = 6, user: str = "alice", password: str | None = None,
             **kwargs) -> Security:
    if auth_type == 0:
        return Security(auth_type=0, level=1, **kwargs)
    creds = Credentials(user=user, domain="lab.test",
                        password=USERS.get(user, "") if password is None else password)
    return Security(auth_type=auth_type, level=level, credentials=creds, **kwargs)


def open_session(ca, sec: Security, **kwargs) -> WcceSession:
    """Activate and connect to the exporter; asserts both steps worked."""
    session = WcceSession(ca.config.listen.host, ca.activation_port, security=sec, **kwargs)
    outcome, activation = session.activate()
    assert activation is not None, f"activation failed: ptype {outcome.ptype}, fault {outcome.fault_status}"
    assert activation.status == 0, hex(activation.status)
    session.connect_exporter()
    return session


def request(template: str = "User", csr: bytes | None = None, ca_name: str = CA_NAME):
    return wcce.Request_Request(dwFlags=0, pwszAuthority=ca_name, pdwRequestId=0,
                                pwszAttributes=f"CertificateTemplate:{template}",
                                pctbRequest=wcce.blob(csr or make_csr()), ndr64=False)
