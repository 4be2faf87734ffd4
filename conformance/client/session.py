"""Activation, then WCCE calls on the object exporter: the driven client's main flow.

Each step returns what the CA answered; nothing here decides pass or fail.  The exporter
is reached through the activation's string bindings, tried in order as Windows clients
try them (:mod:`conformance.client.bindings`).
"""

from __future__ import annotations

import dataclasses
import uuid

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL

from conformance.client.bindings import (
    CONNECT_TIMEOUT, AddressPolicy, Candidate, Resolver, candidates, connect_in_order, quoted,
)
from conformance.client.dcom import (
    Activation, activation_request, orpc_request_stub, parse_activation, request_class, split_orpc_response,
)
from conformance.client.errors import BindingProblem, NoUsableBinding
from conformance.client.rpc import Outcome, RpcConnection, Security
from conformance.wire import wcce
from conformance.wire.dcom import (
    IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR, IID_IREMUNKNOWN, IID_IREMUNKNOWN2,
    IREMUNKNOWN2_OPNUMS,
    IREMUNKNOWN_OPNUMS, ObjectExporterOpnum, RemoteActivatorOpnum, TowerId,
)
from conformance.wire.rpc import PType

__all__ = ["WcceSession", "CallResult"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallResult:
    outcome: Outcome
    response: object | None  # the dissected [out] parameters when a response came back

    @property
    def fault_status(self) -> int | None:
        return self.outcome.fault_status


class WcceSession:
    def __init__(self, host: str, port: int, *, security: Security,
                 activation_security: Security | None = None,
                 clsid: uuid.UUID = wcce.CLSID_CCERTREQUESTD,
                 iids: tuple[uuid.UUID, ...] = (wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2),
                 if_version: int = 0, timeout: float = 10.0, tap=None, resolver: Resolver | None = None) -> None:
        self.host, self.port = host, port
        self.tap = tap
        #: names in string bindings resolve through this (an engine shares one across cases)
        self.names = resolver or Resolver()
        self._exporter_at: Candidate | None = None  # the binding address that connected
        self.security = security
        self.activation_security = activation_security or dataclasses.replace(
            security, level=max(security.level, RPC_C_AUTHN_LEVEL.PKT_INTEGRITY)
            if security.auth_type else security.level)
        self.clsid, self.iids, self.if_version = clsid, iids, if_version
        self.timeout = timeout
        self.activation: Activation | None = None
        self.exporter: RpcConnection | None = None
        self.server_alive2 = False  # ask the resolver first, as Windows clients do
        self.orpc_version: tuple[int, int] = (5, 7)
        self.orpc_flags = 0
        self.object_uuid = True
        self.resolve_security: Security | None = None  # ResolveOxid2 after activating
        self.max_recv_frag: int | None = None  # what the exporter connections bind with (None: default)
        self.server_alive: Outcome | None = None  # ServerAlive2's answer, once asked

    @classmethod
    def from_settings(cls, settings, *, tap=None, resolver: Resolver | None = None) -> "WcceSession":
        """A session configured by :class:`conformance.client.settings.ClientSettings`."""
        session = cls(settings.host, settings.port, security=settings.security(),
                      activation_security=settings.activation_security(), clsid=settings.clsid,
                      iids=settings.iids, if_version=settings.if_version,
                      timeout=settings.timeout, tap=tap, resolver=resolver)
        session.server_alive2 = settings.server_alive2
        session.orpc_version = settings.orpc_version
        session.orpc_flags = settings.orpc_flags
        session.object_uuid = settings.object_uuid
        session.max_recv_frag = settings.max_recv_frag
        if settings.resolve_oxid_level is not None:
            session.resolve_security = dataclasses.replace(settings.security(),
                                                           level=settings.resolve_oxid_level)
        return session

    def close(self) -> None:
        if self.exporter is not None:
            self.exporter.close()

    def __enter__(self) -> "WcceSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ping_resolver(self) -> Outcome:
        """IObjectExporter::ServerAlive2, unauthenticated ([MS-DCOM] 3.2.4.1.1.1: "MUST
        NOT specify security")."""
        with RpcConnection(self.host, self.port, timeout=self.timeout, tap=self.tap) as resolver:
            bound = resolver.bind(IID_IOBJECT_EXPORTER, 0)
            if bound.ptype != PType.BIND_ACK:
                self.server_alive = bound
                return bound
            self.server_alive, _ = resolver.call(IID_IOBJECT_EXPORTER, ObjectExporterOpnum.SERVER_ALIVE2, b"")
        return self.server_alive

    @staticmethod
    def _rpcss(security: Security | None) -> Security | None:
        """Activation and the OXID resolver authenticate to RPCSS/<server> ([MS-DCOM] 3.2.4.1.1.2)."""
        if security is None or security.kerberos is None:
            return security
        return dataclasses.replace(security, target_name=security.kerberos.activation_spn)

    def exporter_spn(self) -> str | None:
        """ORPCs use the principal the exporter's SECURITYBINDING names for this service."""
        kerberos = self.security.kerberos
        if kerberos is None:
            return None
        bindings = self.activation.bindings if self.activation is not None else None
        for binding in (bindings.security_bindings if bindings is not None else ()):
            if binding.authn_svc == self.security.auth_type and binding.principal_name:
                return binding.principal_name
        return kerberos.fallback_spn

    def activate(self) -> tuple[Outcome, Activation | None]:
        if self.server_alive2 and self.server_alive is None:
            self.ping_resolver()
        with RpcConnection(self.host, self.port, security=self._rpcss(self.activation_security),
                           timeout=self.timeout, tap=self.tap) as scm:
            bound = scm.bind(IID_IREMOTE_SCM_ACTIVATOR, 0)
            if bound.ptype != PType.BIND_ACK and bound.ptype != PType.ALTER_CONTEXT_RESP:
                return bound, None
            request = activation_request(clsid=self.clsid, iids=list(self.iids),
                                         server_name=self.host,
                                         default_level=self.security.level)
            outcome, stub = scm.call(IID_IREMOTE_SCM_ACTIVATOR, RemoteActivatorOpnum.REMOTE_CREATE_INSTANCE,
                                     bytes(request))
        if stub is None:
            return outcome, None
        self.activation = parse_activation(stub)
        self._exporter_at = None
        if self.resolve_security is not None and self.activation.oxid is not None:
            self.resolve_oxid()
        return outcome, self.activation

    def resolve_oxid(self) -> Outcome:
        """IObjectExporter::ResolveOxid2 for the activated OXID ([MS-DCOM] 3.2.4.1.2.2)."""
        from scapy.layers.msrpce.raw.ms_dcom import ResolveOxid2_Request

        request = ResolveOxid2_Request(pOxid=self.activation.oxid, arRequestedProtseqs=[TowerId.NCACN_IP_TCP],
                                       ndr64=False)
        with RpcConnection(self.host, self.port, security=self._rpcss(self.resolve_security),
                           timeout=self.timeout, tap=self.tap) as resolver:
            resolver.bind(IID_IOBJECT_EXPORTER, 0)
            if IID_IOBJECT_EXPORTER not in resolver.contexts:
                return Outcome(pdus=())
            outcome, _ = resolver.call(IID_IOBJECT_EXPORTER, ObjectExporterOpnum.RESOLVE_OXID2, bytes(request))
        return outcome

    # -- the object exporter, through the activation's string bindings -----------------

    def exporter_candidates(self) -> list[Candidate]:
        """The addresses the activation's string bindings name that the client may try, in
        the server's order; none raises :class:`NoUsableBinding` quoting every binding."""
        return self._candidates()[0]

    def _candidates(self) -> tuple[list[Candidate], list[BindingProblem]]:
        assert self.activation is not None
        bindings = self.activation.bindings
        if bindings is None:  # an activation that succeeded without an ScmReplyInfo
            raise NoUsableBinding((), (BindingProblem(binding="(none)", why="the activation's reply carries no "
                                                      "DUALSTRINGARRAY", conclusive=True),))
        policy = AddressPolicy.for_host(self.host, self.names)
        found, problems = candidates(bindings.string_bindings, policy, self.names)
        if not found:
            raise NoUsableBinding(self._quoted(), tuple(problems))
        return found, problems

    def _quoted(self) -> tuple[str, ...]:
        bindings = self.activation.bindings if self.activation is not None else None
        return tuple(quoted(b) for b in bindings.string_bindings) if bindings is not None else ()

    def exporter_address(self) -> tuple[str, int]:
        """Where the exporter is: the binding address a connection of this session reached,
        else the only candidate, else the first of them that accepts a connection."""
        if self._exporter_at is None:
            found = self.exporter_candidates()
            if len(found) == 1:
                return found[0].address, found[0].port
            self._connect(self.security).close()
        return self._exporter_at.address, self._exporter_at.port

    def exporter_connection(self) -> RpcConnection:
        """A new connection to the object exporter with the session's security (for Kerberos,
        aimed at the principal the exporter's SECURITYBINDING names); not yet bound.  The
        string bindings are tried in order; one that resolved and connected before goes first."""
        security = self.security
        spn = self.exporter_spn()
        if spn is not None:
            security = dataclasses.replace(security, target_name=spn)
        return self._connect(security)

    def _connect(self, security: Security) -> RpcConnection:
        found, problems = self._candidates()
        if self._exporter_at is not None and self._exporter_at in found:
            found.remove(self._exporter_at)
            found.insert(0, self._exporter_at)
        wait = min(self.timeout, CONNECT_TIMEOUT)
        connection, self._exporter_at = connect_in_order(
            found, problems, self._quoted(),
            lambda c: RpcConnection(c.address, c.port, security=security, timeout=self.timeout,
                                    connect_timeout=wait, tap=self.tap, max_recv_frag=self.max_recv_frag))
        return connection

    def connect_exporter(self, interface: uuid.UUID = wcce.IID_ICERTREQUESTD) -> Outcome:
        self.exporter = self.exporter_connection()
        return self.exporter.bind(interface, self.if_version)

    def call(self, request, *, interface: uuid.UUID = wcce.IID_ICERTREQUESTD,
             orpc_flags: int | None = None, orpc_version: tuple[int, int] | None = None,
             ipid: uuid.UUID | None = None) -> CallResult:
        """One ORPC: ``request`` is the [in] parameters of a method of ``interface``
        (ICertRequestD, ICertRequestD2, IRemUnknown or IRemUnknown2)."""
        assert self.exporter is not None and self.activation is not None
        if interface not in self.exporter.contexts:
            bound = self.exporter.bind(interface, self.if_version)
            if interface not in self.exporter.contexts:
                return CallResult(outcome=bound, response=None)
        opnums = _OPNUMS[interface]
        declared = request_class(request)
        opnum = next(int(o) for o, op in opnums.items() if issubclass(declared, op.request))
        if ipid is None:
            ipid = (self.activation.ipid_remunknown if interface in _REMUNKNOWN
                    else self.activation.ipid(interface))
        if not self.object_uuid:
            ipid = None
        stub = orpc_request_stub(
            request, flags=self.orpc_flags if orpc_flags is None else orpc_flags,
            version=self.orpc_version if orpc_version is None else orpc_version)
        outcome, reply = self.exporter.call(interface, opnum, stub, object_uuid=ipid)
        if reply is None:
            return CallResult(outcome=outcome, response=None)
        _, response = split_orpc_response(reply, opnums[opnum].response, request)
        return CallResult(outcome=outcome, response=response)


_REMUNKNOWN = {IID_IREMUNKNOWN, IID_IREMUNKNOWN2}
_OPNUMS = {
    wcce.IID_ICERTREQUESTD: wcce.ICERTREQUESTD_OPNUMS,
    wcce.IID_ICERTREQUESTD2: wcce.ICERTREQUESTD2_OPNUMS,
    IID_IREMUNKNOWN: IREMUNKNOWN_OPNUMS,
    IID_IREMUNKNOWN2: IREMUNKNOWN2_OPNUMS,
}
