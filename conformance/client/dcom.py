"""DCOM pieces of the driven client: the activation request, its reply, ORPC framing.

Sans-IO: builds and parses stubs; :mod:`conformance.client.rpc` moves them.
The activation properties follow [MS-DCOM] 2.2.22 as a Windows client sends
them (SpecialProperties, InstantiationInfo, ActivationContextInfo, SecurityInfo,
LocationInfo, ScmRequestInfo).
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
import uuid

from scapy.layers.msrpce.msdcom import (
    CLSID_ActivationContextInfo, CLSID_ActivationPropertiesIn, CLSID_InstantiationInfo,
    CLSID_ScmRequestInfo, CLSID_SecurityInfo, CLSID_ServerLocationInfo,
    CLSID_SpecialSystemProperties, COSERVERINFO, ActivationContextInfoData,
    InstantiationInfoData, LocationInfoData, PropsOutInfo, ScmReplyInfoData, ScmRequestInfoData,
    SecurityInfoData, SpecialPropertiesData, customREMOTE_REQUEST_SCM_INFO,
)
from scapy.layers.msrpce.raw.ms_dcom import (
    COMVERSION, GUID, MInterfacePointer, ORPCTHAT, ORPCTHIS, RemoteCreateInstance_Request,
    RemoteCreateInstance_Response,
)

from conformance.client.errors import PARSE_ERRORS, MalformedReply, malformed
from conformance.wire.activation import activation_objref
from conformance.wire.dcom import COM_VERSION, IID_IACTIVATION_PROPERTIES_IN, DualStringArray
from conformance.wire.ndrcodec import NdrRecord, codec, record

__all__ = ["ActivatedInterface", "Activation", "activation_request", "parse_activation",
           "orpc_request_stub", "split_orpc_response"]


def _guid(value: uuid.UUID) -> GUID:
    return GUID(value.bytes_le)


def _uuid(value: GUID) -> uuid.UUID:
    return uuid.UUID(bytes_le=bytes(value))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ActivatedInterface:
    iid: uuid.UUID
    hresult: int
    ipid: uuid.UUID | None
    oid: int | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Activation:
    status: int
    oxid: int | None = None
    bindings: DualStringArray | None = None
    ipid_remunknown: uuid.UUID | None = None
    authn_hint: int | None = None
    server_version: tuple[int, int] | None = None
    interfaces: tuple[ActivatedInterface, ...] = ()

    def ipid(self, iid: uuid.UUID) -> uuid.UUID | None:
        return next((i.ipid for i in self.interfaces if i.iid == iid and i.hresult == 0), None)


def activation_request(*, clsid: uuid.UUID, iids: list[uuid.UUID], server_name: str,
                       default_level: int, version: tuple[int, int] = COM_VERSION,
                       cid: uuid.UUID | None = None, orpc_flags: int = 1
                       ) -> RemoteCreateInstance_Request:
    """IRemoteSCMActivator::RemoteCreateInstance with a fresh causality ID."""
    blob = _activation_properties(clsid, tuple(iids), server_name, default_level, version)
    request = RemoteCreateInstance_Request(
        orpcthis=ORPCTHIS(version=COMVERSION(MajorVersion=version[0], MinorVersion=version[1]),
                          flags=orpc_flags, cid=_guid(cid or uuid.UUID(bytes=secrets.token_bytes(16))),
                          extensions=None),
        pActProperties=MInterfacePointer(abData=blob), ndr64=False)
    request.pUnkOuter = None
    return request


@functools.lru_cache(maxsize=64)
def _activation_properties(clsid: uuid.UUID, iids: tuple[uuid.UUID, ...], server_name: str,
                           default_level: int, version: tuple[int, int]) -> bytes:
    """The ActivationPropertiesIn OBJREF; its NDR type serialization is slow in scapy and
    depends only on these arguments, so it is built once per combination."""
    properties = [
        SpecialPropertiesData(dwDefaultAuthnLvl=default_level, dwOrigClsctx=16, dwFlags=2,
                              ndr64=False),
        InstantiationInfoData(classId=_guid(clsid), classCtx=16, actvflags=0, fIsSurrogate=0,
                              clientCOMVersion=COMVERSION(MajorVersion=version[0],
                                                          MinorVersion=version[1]),
                              pIID=[_guid(i) for i in iids], ndr64=False),
        ActivationContextInfoData(pIFDClientCtx=None, pIFDPrototypeCtx=None, ndr64=False),
        SecurityInfoData(pServerInfo=COSERVERINFO(pwszName=server_name), ndr64=False),
        LocationInfoData(ndr64=False),
        ScmRequestInfoData(remoteRequest=customREMOTE_REQUEST_SCM_INFO(pRequestedProtseqs=[7]),
                           ndr64=False),
    ]
    return activation_objref(
        iid=IID_IACTIVATION_PROPERTIES_IN, clsid=CLSID_ActivationPropertiesIn,
        property_clsids=[CLSID_SpecialSystemProperties, CLSID_InstantiationInfo,
                         CLSID_ActivationContextInfo, CLSID_SecurityInfo,
                         CLSID_ServerLocationInfo, CLSID_ScmRequestInfo],
        properties=properties)


def parse_activation(stub: bytes) -> Activation:
    """Decode a RemoteCreateInstance response stub; a stub that does not decode (the NDR, the
    ActivationPropertiesOut OBJREF, its DUALSTRINGARRAY) raises :class:`MalformedReply`."""
    if not stub:
        raise MalformedReply("activation reply", "the response stub is empty")
    try:
        return _activation(stub)
    except PARSE_ERRORS as exc:
        raise malformed("activation reply", exc) from exc


def _activation(stub: bytes) -> Activation:
    from scapy.layers.msrpce.msdcom import OBJREF as _OBJREF

    resp = RemoteCreateInstance_Response(stub, ndr64=False)
    status = int(resp.status) & 0xFFFFFFFF
    pointer = resp.valueof("ppActProperties")
    if status != 0 and not pointer:
        return Activation(status=status)
    blob = _OBJREF(pointer.abData).pObjectData
    result = {"status": status}
    interfaces = []
    for prop in blob.Property:
        if ScmReplyInfoData in prop:
            reply = prop[ScmReplyInfoData].valueof("remoteReply")
            dsa = reply.valueof("pdsaOxidBindings")
            array = dsa.aStringArray
            raw = array if isinstance(array, bytes) else array.encode("utf-16-le")
            result.update(oxid=int(reply.Oxid), authn_hint=int(reply.authnHint),
                          ipid_remunknown=_uuid(reply.ipidRemUnknown),
                          server_version=(int(reply.serverVersion.MajorVersion),
                                          int(reply.serverVersion.MinorVersion)),
                          bindings=DualStringArray.from_array(raw, int(dsa.wSecurityOffset)))
        if PropsOutInfo in prop:
            info = prop[PropsOutInfo]
            for iid, hr, mip in zip(info.valueof("piid"), info.valueof("phresults"),
                                    info.valueof("ppIntfData")):
                hr = int(hr) & 0xFFFFFFFF
                ipid = oid = None
                if hr == 0 and mip is not None and mip.abData:
                    ref = _OBJREF(mip.abData)
                    ipid, oid = uuid.UUID(str(ref.std.ipid)), int(ref.std.oid)
                interfaces.append(ActivatedInterface(iid=_uuid(iid), hresult=hr, ipid=ipid, oid=oid))
    return Activation(interfaces=tuple(interfaces), **result)


def orpc_request_stub(args, *, version: tuple[int, int] = COM_VERSION, flags: int = 0,
                      cid: uuid.UUID | None = None) -> bytes:
    """ORPCTHIS followed by the NDR of ``args`` ([MS-DCOM] 3.2.4.2): an NdrRecord (the WCCE
    methods, ``conformance.client.methods``) by its compiled codec, a scapy packet by scapy."""
    guid, _ = codec(GUID).read((cid or uuid.UUID(bytes=secrets.token_bytes(16))).bytes_le)
    orpcthis = record(ORPCTHIS, version=record(COMVERSION, MajorVersion=version[0], MinorVersion=version[1]),
                      flags=flags, reserved1=0, cid=guid, extensions=None)
    head = codec(ORPCTHIS).write(orpcthis)
    if isinstance(args, NdrRecord):
        return head + codec(args.cls).write(args)
    args.ndr64 = False
    return head + bytes(args)


def request_class(args) -> type:
    """The declaration a request is of (an NdrRecord's, or a scapy packet's class)."""
    return args.cls if isinstance(args, NdrRecord) else type(args)


def _split_compiled(stub: bytes, response_cls):
    """ORPCTHAT and the response read by the compiled codecs, or None: scapy reads (and judges)
    what they leave, as before."""
    response_codec = codec(response_cls)
    head = codec(ORPCTHAT).read(stub)
    if response_codec is None or head is None or not head[1]:
        return None
    body = response_codec.read(head[1])
    return None if body is None else (head[0], body[0])


def split_orpc_response(stub: bytes, response_cls, request=None):
    """(ORPCTHAT, dissected response) of an ORPC response stub.  ``request`` is needed
    when the response's sizes come from the request (``size_is(cIids)``).  A stub that
    does not decode as ORPCTHAT and the response, through its final status, raises
    :class:`MalformedReply`."""
    extra = {}
    if request is not None and not isinstance(request, NdrRecord):
        # sizes computed at build time are None on the object that was sent: use its
        # dissected twin, whose counts are concrete
        extra["request_packet"] = type(request)(bytes(request), ndr64=False)
    what = f"{response_cls.__name__.removesuffix('_Response')} response"
    if request is None or isinstance(request, NdrRecord):
        compiled = _split_compiled(stub, response_cls)
        if compiled is not None:
            return compiled
    try:
        orpcthat = ORPCTHAT(stub, ndr64=False)
        rest = orpcthat.load if orpcthat.payload else b""
        if not stub or not rest:  # scapy fills an empty packet with defaults (status 0)
            raise MalformedReply(what, f"the stub ends before the [out] parameters ({len(stub)} bytes)")
        response = response_cls(rest, ndr64=False, **extra)
        for field in response.fields_desc:  # the integers are there (dissected, not defaults)
            if getattr(field, "name", "") in ("status", "pdwDisposition", "pdwRequestId") \
                    and response.getfieldval(field.name) is None:
                raise MalformedReply(what, f"no {field.name}")
        int(response.status)
    except PARSE_ERRORS as exc:
        raise malformed(what, exc) from exc
    return orpcthat, response
