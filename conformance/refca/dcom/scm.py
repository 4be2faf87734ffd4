"""The activation port: OXID resolver (IObjectExporter) and SCM (IRemoteSCMActivator).

[MS-DCOM] 3.1.2.5.1 (IObjectExporter) and 3.1.2.5.2 (IRemoteSCMActivator).  The
SCM activates exactly one class, the CA's CCertRequestD ([MS-WCCE] 1.9), and
answers with an ActivationPropertiesOut blob holding PropsOutInfo then
ScmReplyInfoData, in that order (impacket reads them by position).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import secrets
import threading
import uuid
from collections.abc import Callable

from scapy.layers.msrpce.msdcom import (
    CLSID_ActivationPropertiesOut, CLSID_PropsOutInfo, CLSID_ScmReplyInfo, InstantiationInfoData,
    OBJREF, PropsOutInfo, ScmReplyInfoData, ScmRequestInfoData, customREMOTE_REPLY_SCM_INFO,
)
from scapy.layers.dcerpc import ndr_serialize1
from scapy.layers.msrpce.raw import ms_dcom
from scapy.layers.msrpce.raw.ms_dcom import COMVERSION, MInterfacePointer, ORPCTHAT

from conformance.refca import answers
from conformance.refca.dcom.exporter import guid_bytes, guid_uuid, signed_hresult
from conformance.refca.dcom.objects import ObjectTable
from conformance.refca.rpc.calls import Call, Fault
from conformance.refca.rpc.dispatch import InterfaceSpec
from conformance.wire import wcce
from conformance.wire.activation import activation_objref
from conformance.wire.dcom import (
    COM_VERSION, IID_IACTIVATION_PROPERTIES_OUT, IID_IOBJECT_EXPORTER,
    IID_IREMOTE_SCM_ACTIVATOR, IID_IUNKNOWN, HResult, DualStringArray, ObjectExporterOpnum, RemoteActivatorOpnum,
    StringBinding,
    TowerId, objref_standard, parse_network_address,
)
from conformance.wire.ndrcodec import record
from conformance.wire.rpc import FaultStatus

__all__ = ["ExporterBindings", "ScmBehaviour", "ScmServices"]

LogFn = Callable[..., None]

#: What the SCM can activate: the CA's CCertRequestD ([MS-WCCE] 1.9).
_REGISTERED_CLASSES = frozenset({wcce.CLSID_CCERTREQUESTD})
#: Interfaces an activation of CCertRequestD can return.
_ACTIVATABLE = {wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2, IID_IUNKNOWN}
#: Public references handed out with each activated interface.
_REFS = 5


class ExporterBindings(enum.Enum):
    """How the exporter's string bindings name the server in the activation's reply and
    in ResolveOxid(2) ([MS-DCOM] 2.2.19.3: ``aNetworkAddr`` is ``host[endpoint]``)."""

    ADDRESS = "address"  # the address the client reached the SCM at (a client can always use it)
    NAME_ONLY = "name-only"  # only the computer's NetBIOS name, no address (a multi-homed server can)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScmBehaviour:
    """The SCM's declared behaviour; defaults are the reference (Windows) rules.

    A server mutant (conformance.mutation.server) replaces one field.
    """

    #: Lowest auth level RemoteCreateInstance is served at, instead of the configured
    #: ``policy.activation_min_level`` (None: that one; KB5004442 hardening makes it
    #: PKT_INTEGRITY, [MS-DCOM] 3.2.4.1.1.1).
    activation_min_level_override: int | None = None
    #: Only the CA's CCertRequestD activates ([MS-WCCE] 1.9, 2.1); a CLSID the server does
    #: not register is REGDB_E_CLASSNOTREG.
    activate_unknown_classes: bool = False
    #: The exporter's string bindings carry the address the client used ([MS-WCCE] 2.1: the
    #: object exporter on the port its string binding names, reachable from the client).
    exporter_bindings: ExporterBindings = ExporterBindings.ADDRESS
    #: ServerAlive2 is unauthenticated: "the object resolver MUST NOT check permissions"
    #: ([MS-DCOM] 3.1.2.5.1.6).  True: it is refused (access denied) to an unauthenticated caller,
    #: as ResolveOxid and ComplexPing are.
    server_alive_needs_auth: bool = False


class ScmServices:
    """IObjectExporter and IRemoteSCMActivator handlers for the activation port."""

    def __init__(self, *, objects: ObjectTable, exporter_bindings: Callable[[Call], DualStringArray],
                 activation_min_level: int, authn_hint: int, server_names: tuple[str, ...] = (),
                 behaviour: ScmBehaviour | None = None, log: LogFn | None = None) -> None:
        self.behaviour = behaviour or ScmBehaviour()
        self.objects = objects
        self._server_names = server_names
        self._bindings = exporter_bindings
        override = self.behaviour.activation_min_level_override
        self.activation_min_level = activation_min_level if override is None else override
        self._authn_hint = authn_hint
        self._log = log or (lambda event, **fields: None)

    def interfaces(self) -> list[InterfaceSpec]:
        return [
            InterfaceSpec(name="IObjectExporter", uuid=IID_IOBJECT_EXPORTER, version=0,
                          opnums=ms_dcom.IOBJECTEXPORTER_OPNUMS, handlers={
                              ObjectExporterOpnum.RESOLVE_OXID: self.resolve_oxid,
                              ObjectExporterOpnum.SIMPLE_PING: self.simple_ping,
                              ObjectExporterOpnum.COMPLEX_PING: self.complex_ping,
                              ObjectExporterOpnum.SERVER_ALIVE: self.server_alive,
                              ObjectExporterOpnum.RESOLVE_OXID2: self.resolve_oxid2,
                              ObjectExporterOpnum.SERVER_ALIVE2: self.server_alive2}),
            InterfaceSpec(name="IRemoteSCMActivator", uuid=IID_IREMOTE_SCM_ACTIVATOR, version=0,
                          opnums=ms_dcom.IREMOTESCMACTIVATOR_OPNUMS, handlers={
                              RemoteActivatorOpnum.REMOTE_GET_CLASS_OBJECT: self.remote_get_class_object,
                              RemoteActivatorOpnum.REMOTE_CREATE_INSTANCE: self.remote_create_instance},
                          compiled=frozenset({RemoteActivatorOpnum.REMOTE_GET_CLASS_OBJECT,
                                              RemoteActivatorOpnum.REMOTE_CREATE_INSTANCE})),
        ]

    # -- IObjectExporter -----------------------------------------------------------------

    def server_alive2(self, call: Call, _req):
        """"the object resolver MUST NOT check permissions"; the bindings "MUST NOT
        contain endpoints" ([MS-DCOM] 3.1.2.5.1.6)."""
        if self.behaviour.server_alive_needs_auth and not call.auth.authenticated:
            return Fault(FaultStatus.ACCESS_DENIED)
        resolver = self._resolver_bindings(call)
        return ms_dcom.ServerAlive2_Response(
            pComVersion=COMVERSION(MajorVersion=COM_VERSION[0], MinorVersion=COM_VERSION[1]),
            ppdsaOrBindings=resolver.to_ndr(), pReserved=0, status=0, ndr64=False)

    def _resolver_bindings(self, call: Call) -> DualStringArray:
        """The resolver's own bindings: the address the client used, then the
        server's names, as Windows lists addresses and names.

        Which names are listed is chosen so that the array has an even number of
        entries: the NDR of ServerAlive2's response then needs no alignment pad
        before pReserved, which dissectors that read it at a fixed offset (tshark
        4.0 reports "Long frame") would otherwise misread.
        """
        security = self._bindings(call).security_bindings
        first = StringBinding(tower_id=TowerId.NCACN_IP_TCP, network_address=call.connection.local_host)
        names = [StringBinding(tower_id=TowerId.NCACN_IP_TCP, network_address=n)
                 for n in self._server_names]
        candidates = [names, names[:1], names[1:], [], [first]]
        for extra in candidates:
            dsa = DualStringArray(string_bindings=(first, *extra), security_bindings=security)
            if len(dsa.to_packet_bytes()) % 4 == 0:
                return dsa
        return dsa

    def server_alive(self, call: Call, _req):
        return ms_dcom.ServerAlive_Response(status=0, ndr64=False)

    def _resolve(self, call: Call, req):
        if not call.auth.authenticated:
            return Fault(FaultStatus.ACCESS_DENIED)
        if int(req.pOxid) != self.objects.oxid:
            return None
        if TowerId.NCACN_IP_TCP not in [int(p) for p in req.valueof("arRequestedProtseqs") or []]:
            return None
        return self._exporter_bindings(call).to_ndr()

    def _exporter_bindings(self, call: Call) -> DualStringArray:
        """The exporter's bindings as this SCM names them (:class:`ExporterBindings`)."""
        bindings = self._bindings(call)
        if self.behaviour.exporter_bindings is ExporterBindings.ADDRESS or not self._server_names:
            return bindings
        computer = self._server_names[0]
        named = []
        for binding in bindings.string_bindings:
            _, port = parse_network_address(binding.network_address)
            address = computer if port is None else f"{computer}[{port}]"
            named.append(StringBinding(tower_id=binding.tower_id, network_address=address))
        return DualStringArray(string_bindings=tuple(named), security_bindings=bindings.security_bindings)

    def resolve_oxid(self, call: Call, req):
        bindings = self._resolve(call, req)
        if isinstance(bindings, Fault):
            return bindings
        if bindings is None:
            return ms_dcom.ResolveOxid_Response(ppdsaOxidBindings=None, status=FaultStatus.OR_INVALID_OXID,
                                                ndr64=False)
        return ms_dcom.ResolveOxid_Response(
            ppdsaOxidBindings=bindings, pipidRemUnknown=guid_bytes(self.objects.ipid_remunknown),
            pAuthnHint=self._authn_hint, status=0, ndr64=False)

    def resolve_oxid2(self, call: Call, req):
        bindings = self._resolve(call, req)
        if isinstance(bindings, Fault):
            return bindings
        if bindings is None:
            return ms_dcom.ResolveOxid2_Response(ppdsaOxidBindings=None, status=FaultStatus.OR_INVALID_OXID,
                                                 ndr64=False)
        return ms_dcom.ResolveOxid2_Response(
            ppdsaOxidBindings=bindings, pipidRemUnknown=guid_bytes(self.objects.ipid_remunknown),
            pAuthnHint=self._authn_hint,
            pComVersion=COMVERSION(MajorVersion=COM_VERSION[0], MinorVersion=COM_VERSION[1]),
            status=0, ndr64=False)

    def simple_ping(self, call: Call, req):
        ok = self.objects.simple_ping(int(req.pSetId))
        return ms_dcom.SimplePing_Response(status=0 if ok else FaultStatus.OR_INVALID_SET, ndr64=False)

    def complex_ping(self, call: Call, req):
        if not call.auth.authenticated:
            return Fault(FaultStatus.ACCESS_DENIED)
        setid = self.objects.complex_ping(int(req.pSetId), [int(o) for o in req.valueof("AddToSet") or []],
                                          [int(o) for o in req.valueof("DelFromSet") or []])
        if setid is None:
            return ms_dcom.ComplexPing_Response(pSetId=0, pPingBackoffFactor=0,
                                                status=FaultStatus.OR_INVALID_SET, ndr64=False)
        # "Windows servers return PingBackoffFactor 0" ([MS-DCOM] note <58>)
        return ms_dcom.ComplexPing_Response(pSetId=setid, pPingBackoffFactor=0, status=0, ndr64=False)

    # -- IRemoteSCMActivator ---------------------------------------------------------------

    def remote_get_class_object(self, call: Call, req):
        # The CA registers no class factory for remote callers: every requested
        # interface of the class object is unavailable.
        return self._activation_error(req, ms_dcom.RemoteGetClassObject_Response, HResult.E_NOINTERFACE)

    def _activation_error(self, req, response_cls, hresult: int):
        return record(response_cls, orpcthat=_NO_ORPCTHAT, ppActProperties=None, status=hresult)

    def remote_create_instance(self, call: Call, req):
        response = ms_dcom.RemoteCreateInstance_Response
        if call.auth.auth_level < self.activation_min_level:
            # KB5004442 hardening: "raise the activation authentication level at least
            # to RPC_C_AUTHN_LEVEL_PKT_INTEGRITY" (event 10036 on the server).
            self._log("activation_refused", auth_level=call.auth.auth_level,
                      min_level=self.activation_min_level)
            return Fault(answers.fault_status("dcom/activation/below-integrity"))
        # pUnkOuter "MUST be NULL and MUST be ignored by the recipient" (3.1.2.5.2.3.2)
        try:
            properties = req.valueof("pActProperties").abData
        except Exception:  # a NULL pActProperties (or one scapy could not make sense of)
            return Fault(FaultStatus.RPC_X_BAD_STUB_DATA)
        read = _activation_request(bytes(properties))
        if read is None:
            return Fault(FaultStatus.RPC_X_BAD_STUB_DATA)
        clsid, iids, complete = read
        if not complete:
            return self._activation_error(req, response, HResult.E_INVALIDARG)
        if clsid not in _REGISTERED_CLASSES and not self.behaviour.activate_unknown_classes:
            self._log("activation_refused", clsid=str(clsid), why="class not registered")
            return self._activation_error(req, response, HResult.REGDB_E_CLASSNOTREG)
        if not iids:
            return self._activation_error(req, response, HResult.E_INVALIDARG)
        wanted = [iid for iid in iids if iid in _ACTIVATABLE]
        oid, made = self.objects.create_object(clsid, wanted, refs=_REFS, owner=call.auth.user)
        self._log("activated", clsid=str(clsid), iids=[str(i) for i in iids], oid=hex(oid),
                  user=call.auth.user, auth_level=call.auth.auth_level)
        status = HResult.S_OK if made else HResult.E_NOINTERFACE
        ipids = tuple(made[iid].ipid if iid in made else None for iid in iids)
        out = properties_out(ActivationReply(iids=tuple(iids), made=tuple(i is not None for i in ipids),
                                             oxid=self.objects.oxid, bindings=self._exporter_bindings(call),
                                             ipid_remunknown=self.objects.ipid_remunknown,
                                             authn_hint=self._authn_hint),
                             oid=oid, ipids=tuple(i for i in ipids if i is not None))
        return record(response, orpcthat=_NO_ORPCTHAT, ppActProperties=record(MInterfacePointer, abData=out),
                      status=status)


_NO_ORPCTHAT = record(ORPCTHAT, flags=0, extensions=None)


@functools.lru_cache(maxsize=256)
def _activation_request(properties: bytes) -> tuple[uuid.UUID, tuple[uuid.UUID, ...], bool] | None:
    """(CLSID, IIDs, whether both InstantiationInfo and ScmRequestInfo are there) of an
    ActivationPropertiesIn blob; None when it does not dissect.  A function of the bytes alone,
    so a client that activates again with the same blob is answered from the cache (scapy's
    dissection of the blob is most of an activation's reading)."""
    try:
        props = OBJREF(properties).pObjectData.Property
        inst = next((p[InstantiationInfoData] for p in props if InstantiationInfoData in p), None)
        scm_req = next((p[ScmRequestInfoData] for p in props if ScmRequestInfoData in p), None)
        # the properties are dissected as they are read: a pIID array that claims more
        # GUIDs than it holds, or a NULL one, surfaces here, not at OBJREF()
        clsid = guid_uuid(inst.classId) if inst is not None else None
        iids = tuple(guid_uuid(g) for g in inst.valueof("pIID") or ()) if inst is not None else ()
    except Exception:
        return None
    return clsid, iids, inst is not None and scm_req is not None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ActivationReply:
    """What an ActivationPropertiesOut blob says apart from the object's OID and IPIDs."""

    iids: tuple[uuid.UUID, ...]
    made: tuple[bool, ...]  # per IID: an interface pointer (else E_NOINTERFACE, NULL)
    oxid: int
    bindings: DualStringArray
    ipid_remunknown: uuid.UUID
    authn_hint: int


def properties_out_scapy(reply: ActivationReply, *, oid: int, ipids: tuple[uuid.UUID, ...]) -> bytes:
    """The ActivationPropertiesOut OBJREF, built by scapy: PropsOutInfo then ScmReplyInfoData."""
    hresults, pointers, left = [], [], iter(ipids)
    for iid, made in zip(reply.iids, reply.made):
        if not made:
            hresults.append(signed_hresult(HResult.E_NOINTERFACE))
            pointers.append(None)  # "NULL where phresults is a failure"
            continue
        hresults.append(0)
        pointers.append(MInterfacePointer(abData=objref_standard(
            iid=iid, oxid=reply.oxid, oid=oid, ipid=next(left), public_refs=_REFS, bindings=reply.bindings),
            ndr64=False))
    props_out = PropsOutInfo(piid=[guid_bytes(i) for i in reply.iids], phresults=hresults, ppIntfData=pointers,
                             ndr64=False)
    return activation_objref(iid=IID_IACTIVATION_PROPERTIES_OUT, clsid=CLSID_ActivationPropertiesOut,
                             property_clsids=[CLSID_PropsOutInfo, CLSID_ScmReplyInfo],
                             properties=[props_out, _scm_reply(reply.oxid, reply.bindings, reply.ipid_remunknown,
                                                               reply.authn_hint)])


def properties_out(reply: ActivationReply, *, oid: int, ipids: tuple[uuid.UUID, ...]) -> bytes:
    """``properties_out_scapy``'s bytes, from a template scapy built once per reply shape with
    marker OID and IPIDs, the activation's own written where the markers were."""
    with _TEMPLATE_LOCK:  # the first activations arrive together: one builds, the others wait for it
        template = _properties_template(reply)
    if template is None:
        return properties_out_scapy(reply, oid=oid, ipids=ipids)
    blob, oid_at, ipid_at = template
    out = bytearray(blob)
    oid_bytes = oid.to_bytes(8, "little")
    for at in oid_at:
        out[at:at + 8] = oid_bytes
    for at, ipid in zip(ipid_at, ipids):
        out[at:at + 16] = ipid.bytes_le
    return bytes(out)


_TEMPLATE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=64)
def _properties_template(reply: ActivationReply) -> tuple[bytes, tuple[int, ...], tuple[int, ...]] | None:
    """(blob, where the OID is, where each IPID is), or None when a marker is not found exactly
    where it should be (then scapy builds each reply)."""
    count = sum(reply.made)
    marker_oid = int.from_bytes(secrets.token_bytes(8), "little") | 1
    marker_ipids = tuple(uuid.UUID(bytes=secrets.token_bytes(16)) for _ in range(count))
    blob = properties_out_scapy(reply, oid=marker_oid, ipids=marker_ipids)
    oid_at = _all_at(blob, marker_oid.to_bytes(8, "little"))
    ipid_at = [_all_at(blob, ipid.bytes_le) for ipid in marker_ipids]
    if len(oid_at) != count or any(len(at) != 1 for at in ipid_at):
        return None
    return blob, oid_at, tuple(at[0] for at in ipid_at)


def _all_at(data: bytes, needle: bytes) -> tuple[int, ...]:
    found, start = [], data.find(needle)
    while start >= 0:
        found.append(start)
        start = data.find(needle, start + 1)
    return tuple(found)


@functools.lru_cache(maxsize=64)
def _scm_reply(oxid: int, bindings: DualStringArray, ipid_remunknown, authn_hint: int) -> bytes:
    """ScmReplyInfoData, serialized (NDR type serialization 1): the same for every activation
    this exporter answers on one address, so made once (scapy's serialization is the costly
    part of an activation's answer)."""
    return ndr_serialize1(ScmReplyInfoData(
        pdwReserved=None,
        remoteReply=customREMOTE_REPLY_SCM_INFO(
            Oxid=oxid, pdsaOxidBindings=bindings.to_ndr(), ipidRemUnknown=guid_bytes(ipid_remunknown),
            authnHint=authn_hint,
            serverVersion=COMVERSION(MajorVersion=COM_VERSION[0], MinorVersion=COM_VERSION[1]), ndr64=False),
        ndr64=False))
