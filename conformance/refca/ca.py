"""The embedded reference CA: configuration, issuer, store, DCOM and RPC, assembled.

``ReferenceCA(config).start()`` listens on the activation port (OXID resolver and
SCM) and on the object exporter's port, and serves until ``stop()``.
``ReferenceCA(config, behaviour=...)`` serves with other declared behaviour (a server
mutant's): each component gets its part of the :class:`CABehaviour` value here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from scapy.layers.dcerpc import RPC_C_AUTHN, RPC_C_AUTHN_LEVEL
from scapy.layers.spnego import SPNEGOSSP

from conformance.refca import answers
from conformance.refca.behaviour import CABehaviour
from conformance.refca.config import CAConfig
from conformance.refca.dcom.exporter import ObjectExporter
from conformance.refca.dcom.objects import ObjectTable
from conformance.refca.dcom.scm import ScmServices
from conformance.refca.issuer import CertificateAuthority
from conformance.refca.listener import Listener
from conformance.refca.rpc.association import Association
from conformance.refca.rpc.calls import AssocGroups, Call, ConnectionInfo
from conformance.refca.rpc.dispatch import InterfaceDispatcher
from conformance.refca.rpc.kerberos import KeytabKerberosSSP
from conformance.refca.rpc.ntlm import NtlmAcceptor
from conformance.refca.service import WcceService
from conformance.refca.store import RequestStore
from conformance.refca.templates import load_templates
from conformance.wire.dcom import DualStringArray, SecurityBinding, StringBinding, TowerId
from conformance.wire.kerberos import ServiceKeys

__all__ = ["ReferenceCA", "event_logger"]

log = logging.getLogger("conformance.refca")


def event_logger(prefix: str) -> Callable[..., None]:
    def emit(event: str, **fields) -> None:
        if log.isEnabledFor(logging.INFO):
            detail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            log.info("%s %s %s", prefix, event, detail)
    return emit


class ReferenceCA:
    def __init__(self, config: CAConfig, behaviour: CABehaviour | None = None) -> None:
        answers.check()  # every answer the CA takes from the ledger is one it can give
        self.config = config
        self.behaviour = behaviour or CABehaviour()
        self.service_keys = (ServiceKeys.from_keytab(config.kerberos_keytab) if config.kerberos_keytab
                             else ServiceKeys(keys={}))
        self.templates = load_templates(config.templates_file)
        self.ca = CertificateAuthority(state_dir=config.state_dir, ca_name=config.ca_name,
                                       key_algorithm=config.key_algorithm)
        self.store = RequestStore(config.state_dir / "requests.sqlite3")
        self.objects = ObjectTable()
        self.groups = AssocGroups()
        self.service = WcceService(config=config, ca=self.ca, store=self.store,
                                   templates=self.templates, behaviour=self.behaviour.service,
                                   log=event_logger("wcce"))
        policy = config.policy
        # The hint is the level the exporter wants: privacy when the CA enforces it.
        authn_hint = (RPC_C_AUTHN_LEVEL.PKT_PRIVACY if policy.enforce_privacy
                      else max(policy.exporter_min_level, RPC_C_AUTHN_LEVEL.PKT_INTEGRITY))
        self.exporter = ObjectExporter(objects=self.objects, wcce_handlers=self.service.handlers(),
                                       min_level=policy.exporter_min_level,
                                       bindings=self._exporter_bindings,
                                       behaviour=self.behaviour.exporter,
                                       log=event_logger("exporter"))
        self.scm = ScmServices(objects=self.objects, exporter_bindings=self._exporter_bindings,
                               activation_min_level=policy.activation_min_level,
                               authn_hint=authn_hint,
                               server_names=(config.computer, config.dns_name),
                               behaviour=self.behaviour.scm,
                               log=event_logger("scm"))
        self.activation_dispatcher = InterfaceDispatcher(self.scm.interfaces())
        self.association_policy = self.behaviour.association
        self.recorder = None  # a capture.tap.Tap: every byte of every connection (probe-client)
        self._activation: Listener | None = None
        self._exporter: Listener | None = None

    # -- security providers -------------------------------------------------------------

    def _ntlm(self) -> NtlmAcceptor:
        return NtlmAcceptor(behaviour=self.behaviour.ntlm, IDENTITIES=dict(self.config.users),
                            DOMAIN_NB_NAME=self.config.domain, DOMAIN_FQDN=self.config.dns_domain,
                            COMPUTER_NB_NAME=self.config.computer)

    def kerberos_acceptor(self) -> KeytabKerberosSSP:
        return KeytabKerberosSSP(self.service_keys, domain_member=self.config.kerberos_domain_member,
                                 behaviour=self.behaviour.kerberos)

    def acceptors(self) -> dict[int, Callable]:
        if not self.service_keys:
            return {RPC_C_AUTHN.GSS_NEGOTIATE: lambda: SPNEGOSSP([self._ntlm()]),
                    RPC_C_AUTHN.WINNT: self._ntlm}
        return {
            RPC_C_AUTHN.GSS_NEGOTIATE: lambda: SPNEGOSSP([self.kerberos_acceptor(), self._ntlm()]),
            RPC_C_AUTHN.WINNT: self._ntlm,
            RPC_C_AUTHN.GSS_KERBEROS: self.kerberos_acceptor,
        }

    # -- bindings -------------------------------------------------------------------------

    def _exporter_bindings(self, call: Call) -> DualStringArray:
        """The exporter's string bindings carry the address the client connected to
        (impacket requires it) and the exporter's port."""
        assert self._exporter is not None
        host = call.connection.local_host
        return DualStringArray(
            string_bindings=(StringBinding(tower_id=TowerId.NCACN_IP_TCP,
                                           network_address=f"{host}[{self._exporter.port}]"),),
            # Kerberos-capable services name the principal ORPCs are to use ([MS-DCOM] 2.2.19.4)
            security_bindings=tuple(SecurityBinding(authn_svc=svc, principal_name=self._principal_for(svc))
                                    for svc in sorted(self.acceptors())),
        )

    def _principal_for(self, authn_svc: int) -> str:
        if self.service_keys and authn_svc in (RPC_C_AUTHN.GSS_NEGOTIATE, RPC_C_AUTHN.GSS_KERBEROS):
            return self.config.orpc_principal
        return ""

    # -- administration -------------------------------------------------------------------

    def resolve_pending(self, request_id: int, *, approve: bool):
        """Issue (approve) or deny a pending request, as a CA manager would."""
        return self.service.resolve_pending(request_id, approve=approve)

    # -- lifecycle --------------------------------------------------------------------------

    def _association_factory(self, dispatcher, name: str):
        acceptors = self.acceptors()

        def make(connection: ConnectionInfo) -> Association:
            return Association(dispatcher=dispatcher, acceptors=acceptors, connection=connection,
                               groups=self.groups, policy=self.association_policy,
                               log=event_logger(f"{name} {connection.peer_host}:{connection.peer_port}"))
        return make

    def start(self) -> "ReferenceCA":
        listen = self.config.listen
        self._exporter = Listener(name="exporter", host=listen.host, port=listen.exporter_port,
                                  make_association=self._association_factory(self.exporter, "exporter"),
                                  recorder=self.recorder)
        try:
            self._activation = Listener(
                name="activation", host=listen.host, port=listen.activation_port,
                make_association=self._association_factory(self.activation_dispatcher, "activation"),
                recorder=self.recorder)
        except Exception:
            self._exporter.stop()
            raise
        self._exporter.start()
        self._activation.start()
        log.info("reference CA %r: activation %s:%s, exporter %s:%s", self.config.ca_name,
                 listen.host, self._activation.port, listen.host, self._exporter.port)
        return self

    @property
    def activation_port(self) -> int:
        assert self._activation is not None
        return self._activation.port

    @property
    def exporter_port(self) -> int:
        assert self._exporter is not None
        return self._exporter.port

    def stop(self) -> None:
        for listener in (self._activation, self._exporter):
            if listener is not None:
                listener.stop()
        self.store.close()

    def __enter__(self) -> "ReferenceCA":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
