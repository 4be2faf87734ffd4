"""The embedded reference CA as a suite target (the default of every run)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import secrets
import tempfile
from collections.abc import Iterator

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL

from conformance.targets.domain import DomainInfo, domain_wanted, shared_domain
from conformance.targets.kdc import MitRealm, kdc_available
from conformance.model.profile import Account, Claims, KerberosTarget, Target
from conformance.refca.behaviour import CABehaviour
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config
from conformance.wire.gss import nt_hash
from conformance.refca.listener import PortInUse
from conformance.refca.rpc.association import AssociationPolicy
from conformance.wire.rpc import BindTimeFeature

__all__ = ["embedded_target", "lab_realm", "LAB_USER"]

LAB_USER = "wcce-suite"
SECOND_USER = "wcce-other"  # the second account of the cross-client (foreign IPID) cases


def _loopback_candidates() -> Iterator[tuple[str, int]]:
    # Port 135 where it can be bound (certipy and scapy's ServerAlive2 know no other);
    # each process takes its own 127.x address so parallel workers do not collide.
    pid = os.getpid()
    base = f"127.{(pid >> 8) & 0xFF}.{pid & 0xFF}"
    for last in range(200, 255):
        yield f"{base}.{last}", 135
    yield "127.0.0.1", 0


def _claims(policy, kerberos: bool, pac: bool = False) -> Claims:
    return Claims(enforce_privacy=policy.enforce_privacy, pac=pac,
                  hardened_activation=policy.activation_min_level >= RPC_C_AUTHN_LEVEL.PKT_INTEGRITY,
                  pending_template=True, kerberos=kerberos, second_identity=True, dcom=True, sole_requester=True,
                  security_context_multiplexing=bool(
                      AssociationPolicy().bind_time_features & BindTimeFeature.SECURITY_CONTEXT_MULTIPLEXING))


def lab_realm(users: dict[str, str]) -> MitRealm:
    """The throwaway realm of the reference CA's default names (realm = its DNS domain,
    service principals for its DNS name), with ``users`` as principals; not started."""
    defaults = load_config(None)
    return MitRealm(realm=defaults.dns_domain.upper(), service_host=defaults.dns_name, users=users)


#: The reference CA closes a connection in the step that answers (its listener closes the socket
#: when the association says drop), on loopback, in this process: the close follows the answer by
#: 0.1 ms (median) to 2.4 ms (the most of 105, three workers on two cores); 50 ms is twenty times
#: that, where a remote target's profile gets 0.2 s (conformance.model.profile.DEFAULT_DROP_WAIT).
EMBEDDED_DROP_WAIT = 0.05


@contextlib.contextmanager
def embedded_target(*, behaviour: CABehaviour | None = None, label: str | None = None,
                    state_dir: pathlib.Path | None = None) -> Iterator[tuple[Target, ReferenceCA]]:
    """Start the reference CA (with ``behaviour``, a server mutant's, when given: whoever names
    mutants resolves the name) and describe it as a Target; ``label`` names the mutant in the
    description ("embedded reference CA (mutant NAME)")."""
    domain: DomainInfo | None = shared_domain() if domain_wanted() else None
    if domain is not None:  # the domain's accounts; the CA is its computer CA01$
        password = domain.users[LAB_USER]
        second = Account(user=SECOND_USER, domain="", password=domain.users[SECOND_USER])
    else:
        password = secrets.token_urlsafe(18)  # in memory only
        second = Account(user=SECOND_USER, domain="", password=secrets.token_urlsafe(18))
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="wcce-ca-"))
        state = state_dir or pathlib.Path(scratch)
        realm = None
        if domain is None and kdc_available():
            realm = stack.enter_context(lab_realm({LAB_USER: password}))
        keytab = pathlib.Path(domain.keytab) if domain is not None else realm.keytab if realm else None
        ca = None
        for host, port in _loopback_candidates():
            try:
                config = load_config(None, host=host, port=port, state_dir=state,
                                     users={LAB_USER: nt_hash(password), second.user: nt_hash(second.password)},
                                     kerberos_keytab=keytab, kerberos_domain_member=domain is not None)
                ca = ReferenceCA(config, behaviour=behaviour)
                ca.start()
                break
            except PortInUse:
                if ca is not None:
                    ca.store.close()
                ca = None
                continue
        if ca is None:
            raise PortInUse("no loopback address could be bound for the reference CA")
        policy = ca.config.policy
        kerberos = None
        if domain is not None:
            kerberos = KerberosTarget(realm=domain.realm, kdc_host=domain.kdc[0], kdc_port=domain.kdc[1],
                                      service_host=ca.config.dns_name, keytab=keytab)
        elif realm is not None:
            kerberos = KerberosTarget(realm=realm.realm, kdc_host=realm.kdc[0], kdc_port=realm.kdc[1],
                                      service_host=ca.config.dns_name)
        target = Target(
            host=ca.config.listen.host, activation_port=ca.activation_port, ca_name=ca.config.ca_name,
            user=LAB_USER, domain=ca.config.dns_domain, password=password,
            templates={"issue": "User", "pending": "UserApproval"},
            claims=_claims(policy, kerberos is not None, pac=domain is not None), kerberos=kerberos,
            second=dataclasses.replace(second, domain=ca.config.dns_domain),
            description="embedded reference CA" + (f" (mutant {label})" if label else ""),
            drop_wait=EMBEDDED_DROP_WAIT)
        try:
            yield target, ca
        finally:
            ca.stop()
