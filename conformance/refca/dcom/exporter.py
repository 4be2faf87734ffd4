"""The object exporter: ORPC dispatch by IPID, and IRemUnknown2 ([MS-DCOM] 3.1.1.5).

Every ORPC request carries PFC_OBJECT_UUID with the IPID of the interface it
calls and starts its stub with ORPCTHIS; every response starts with ORPCTHAT.
Server rules applied, in the order of [MS-DCOM] 3.1.1.5.4: COM version, the
exporter's minimum authentication level, ORPCTHIS.flags, the IPID.  Where the ledger
has a situation for a refusal, its fault status is the ledger's reference answer
(:mod:`conformance.refca.answers`).
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Callable, Mapping

from scapy.layers.msrpce.raw import ms_dcom
from scapy.layers.msrpce.raw.ms_dcom import GUID, ORPCTHAT, ORPCTHIS

from conformance.refca import answers
from conformance.refca.dcom.objects import ObjectTable
from conformance.refca.rpc.calls import Call, Fault, Reply
from conformance.refca.rpc.dispatch import BadStubData, dissect_stub, encode
from conformance.wire import wcce
from conformance.wire.dcom import (
    COM_VERSION, IID_IREMUNKNOWN, IID_IREMUNKNOWN2, IID_IUNKNOWN, IREMUNKNOWN2_OPNUMS,
    IREMUNKNOWN_OPNUMS, HResult, DualStringArray, RemQueryInterface_Response, objref_standard,
)
from conformance.wire.ndrcodec import codec
from conformance.wire.rpc import FaultStatus

#: Every response's ORPCTHAT: no flags, no extensions — the same bytes each time (scapy built
#: them per call)
_ORPCTHAT = bytes(ORPCTHAT(flags=0, extensions=None, ndr64=False))
#: ORPCTHIS read by the codec compiled from scapy's declaration; one with extensions is scapy's
_ORPCTHIS_CODEC = codec(ORPCTHIS)
#: Their requests are read by the compiled codecs (``dissect_stub(compiled=True)``); their
#: handlers take NdrRecords and answer with them
_WCCE_INTERFACES = frozenset({wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2})

__all__ = ["ExporterBehaviour", "UnknownIpid", "ObjectExporter", "guid_bytes", "guid_uuid", "signed_hresult"]

LogFn = Callable[..., None]

#: COM interface -> the interfaces it inherits from (a call bound as a base interface
#: may address the IPID of a derived one).
_BASES = {
    wcce.IID_ICERTREQUESTD2: {wcce.IID_ICERTREQUESTD, IID_IUNKNOWN},
    wcce.IID_ICERTREQUESTD: {IID_IUNKNOWN},
    IID_IREMUNKNOWN2: {IID_IREMUNKNOWN, IID_IUNKNOWN},
}
_OPNUMS = {
    wcce.IID_ICERTREQUESTD: wcce.ICERTREQUESTD_OPNUMS,
    wcce.IID_ICERTREQUESTD2: wcce.ICERTREQUESTD2_OPNUMS,
    IID_IREMUNKNOWN: IREMUNKNOWN_OPNUMS,
    IID_IREMUNKNOWN2: IREMUNKNOWN2_OPNUMS,
}


def signed_hresult(hresult: int) -> int:
    """HRESULT as the signed 32-bit value an NDR ``HRESULT``/``long`` field holds."""
    return hresult - (1 << 32) if hresult & 0x80000000 else hresult



class UnknownIpid(enum.Enum):
    """What an ORPC addressed to an IPID the exporter does not know gets."""

    DISCONNECTED = "disconnected"  # RPC_E_DISCONNECTED ([MS-DCOM] 3.1.1.5.4)
    ANY_OBJECT = "any-object"  # served by some object of the called interface


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExporterBehaviour:
    """The object exporter's declared behaviour; defaults are the reference (Windows) rules.

    A server mutant (conformance.mutation.server) replaces one field.
    """

    #: "The RPC version number for all interfaces MUST be 0.0" ([MS-WCCE] 2.1, [MS-DCOM] 2.1).
    interface_versions: frozenset[int] = frozenset({0})
    #: ORPCTHIS.version: another major or a higher minor is refused, RPC_E_VERSION_MISMATCH
    #: ([MS-DCOM] 1.7, 3.1.1.5.4; ledger dcom/orpc/com-version-unsupported).
    check_com_version: bool = True
    #: ORPCTHIS.flags other than 0 is refused, RPC_E_INVALID_HEADER ([MS-DCOM] 3.1.1.5.4;
    #: ledger dcom/orpc/orpcthis-flags).
    check_orpcthis_flags: bool = True
    #: An object serves the identity that activated it (as Windows' access check would a CA's
    #: requesters); another client's IPID gets E_ACCESSDENIED (DCOM-IPID-01).
    check_owner: bool = True
    #: An unknown IPID is RPC_E_DISCONNECTED ([MS-DCOM] 3.1.1.5.4; ledger dcom/orpc/unknown-ipid).
    unknown_ipid: UnknownIpid = UnknownIpid.DISCONNECTED
    #: The fault an opnum the interface lacks gets; None: the ledger's answer to
    #: rpc/request/opnum-out-of-range (nca_s_op_rng_error, C706 appendix N, [MS-RPCE] 3.3.1.5.7).
    opnum_out_of_range_fault: int | None = None
    #: A bind's interface version is compared whole, minor version included ([MS-WCCE] 2.1:
    #: 0.0).  False: only the major version (the low 16 bits of if_version) is compared.
    check_minor_version: bool = True
    #: ORPCTHIS.version's minor is compared with the server's too ([MS-DCOM] 3.1.1.5.4).
    #: False: only the major version is checked.
    check_com_minor_version: bool = True
    #: The fault an ORPC to an unknown IPID gets; None: the ledger's answer to
    #: dcom/orpc/unknown-ipid (RPC_E_DISCONNECTED, [MS-DCOM] 3.1.1.5.4).
    unknown_ipid_fault: int | None = None
    #: IRemUnknown(2) applies the object's access check to the IPIDs it is given (RemQueryInterface,
    #: RemAddRef, RemRelease) as the exporter does to the IPID an ORPC addresses (DCOM-IPID-01).
    check_owner_on_remunknown: bool = True


def guid_uuid(value: GUID) -> uuid.UUID:
    return uuid.UUID(bytes_le=bytes(value))


def guid_bytes(value: uuid.UUID) -> GUID:
    return GUID(value.bytes_le)


class ObjectExporter:
    """Dispatcher for the exporter port (implements rpc.calls.Dispatcher)."""

    def __init__(self, *, objects: ObjectTable, wcce_handlers: Mapping[int, Callable],
                 min_level: int, bindings: Callable[[Call], DualStringArray],
                 behaviour: ExporterBehaviour | None = None, log: LogFn | None = None) -> None:
        self.behaviour = behaviour or ExporterBehaviour()
        self.objects = objects
        self._wcce = wcce_handlers
        self._min_level = min_level
        self._bindings = bindings
        self._log = log or (lambda event, **fields: None)

    def supports_interface(self, if_uuid: uuid.UUID, if_version: int) -> bool:
        # "The RPC version number for all interfaces MUST be 0.0" ([MS-WCCE] 2.1, [MS-DCOM] 2.1)
        if not self.behaviour.check_minor_version:
            if_version &= 0xFFFF  # the major version only
        return if_uuid in _OPNUMS and if_version in self.behaviour.interface_versions

    def dispatch(self, call: Call) -> Reply | Fault:
        # little-endian whatever the call's data representation, as scapy's ORPCTHIS reads it
        if (compiled := _ORPCTHIS_CODEC.read(call.stub)) is not None:
            orpc, args = compiled
        else:
            try:
                orpc = ORPCTHIS(call.stub, ndr64=False)
                args = orpc.load if orpc.payload else b""
            except Exception:
                return Fault(FaultStatus.RPC_X_BAD_STUB_DATA)
        major, minor = orpc.version.MajorVersion, orpc.version.MinorVersion
        minor_too_high = minor > COM_VERSION[1] and self.behaviour.check_com_minor_version
        if self.behaviour.check_com_version and (major != COM_VERSION[0] or minor_too_high):
            return Fault(answers.fault_status("dcom/orpc/com-version-unsupported"))
        if call.auth.auth_level < self._min_level:
            # "Windows returns E_ACCESSDENIED for IRemUnknown/IRemUnknown2 and
            # ERROR_ACCESS_DENIED for all other interfaces" ([MS-DCOM] 3.1.1.5.4 <40>)
            if call.interface in (IID_IREMUNKNOWN, IID_IREMUNKNOWN2):
                return Fault(HResult.E_ACCESSDENIED)
            return Fault(FaultStatus.ACCESS_DENIED)
        if self.behaviour.check_orpcthis_flags and orpc.flags != 0:
            return Fault(answers.fault_status("dcom/orpc/orpcthis-flags"))
        target = self.objects.lookup(call.object_uuid) if call.object_uuid else None
        if target is None and self.behaviour.unknown_ipid is UnknownIpid.ANY_OBJECT:
            target = self.objects.any_interface(call.interface)
        if target is None:
            status = self.behaviour.unknown_ipid_fault
            return Fault(answers.fault_status("dcom/orpc/unknown-ipid") if status is None else status)
        if self.behaviour.check_owner and not self.objects.may_use(target.ipid, call.auth.user):
            self._log("foreign_ipid", ipid=str(target.ipid), user=call.auth.user)
            return Fault(HResult.E_ACCESSDENIED)
        if call.interface != target.iid and call.interface not in _BASES.get(target.iid, ()):
            return Fault(FaultStatus.NCA_S_UNK_IF)
        op = _OPNUMS[call.interface].get(call.opnum)
        if op is None:
            status = self.behaviour.opnum_out_of_range_fault
            return Fault(answers.fault_status("rpc/request/opnum-out-of-range") if status is None else status)
        try:
            request = dissect_stub(op.request, args, little_endian=call.little_endian,
                                   compiled=call.interface in _WCCE_INTERFACES)
        except BadStubData:
            return Fault(FaultStatus.RPC_X_BAD_STUB_DATA)
        self.objects.touch(target.ipid)
        if call.interface in (IID_IREMUNKNOWN, IID_IREMUNKNOWN2):
            result = self._rem_unknown(call, request)
        else:
            result = self._wcce[call.opnum](call, request)
        if isinstance(result, Fault):
            return result
        return Reply(_ORPCTHAT + encode(result, call.little_endian))

    # -- IRemUnknown / IRemUnknown2 ([MS-DCOM] 3.1.1.5.6, 3.1.1.5.7) -----------------------

    def _rem_unknown(self, call: Call, request):
        user = call.auth.user
        if isinstance(request, ms_dcom.RemQueryInterface_Request):
            return self._rem_query_interface(request, user)
        if isinstance(request, ms_dcom.RemAddRef_Request):
            results = [signed_hresult(self.objects.add_ref(guid_uuid(ref.ipid), int(ref.cPublicRefs))
                               if self._may_use(guid_uuid(ref.ipid), user) else HResult.E_ACCESSDENIED)
                       for ref in request.valueof("InterfaceRefs")]
            return ms_dcom.RemAddRef_Response(pResults=results, status=HResult.S_OK, ndr64=False)
        if isinstance(request, ms_dcom.RemRelease_Request):
            for ref in request.valueof("InterfaceRefs"):
                if self._may_use(guid_uuid(ref.ipid), user):  # no releasing another client's object
                    self.objects.release(guid_uuid(ref.ipid), int(ref.cPublicRefs))
            return ms_dcom.RemRelease_Response(status=HResult.S_OK, ndr64=False)
        return self._rem_query_interface2(call, request)

    def _may_use(self, ipid: uuid.UUID, user: str | None) -> bool:
        if not self.behaviour.check_owner_on_remunknown:
            return True
        return not self.behaviour.check_owner or self.objects.may_use(ipid, user)

    def _rem_query_interface(self, request, user: str | None):
        ripid = guid_uuid(request.ripid)
        if not self._may_use(ripid, user):
            return RemQueryInterface_Response(ppQIResults=None, status=HResult.E_ACCESSDENIED, ndr64=False)
        if self.objects.lookup(ripid) is None:
            return RemQueryInterface_Response(ppQIResults=None, status=HResult.RPC_E_INVALID_OBJECT,
                                                      ndr64=False)
        results, overall = [], HResult.S_OK
        for iid_guid in request.valueof("iids"):
            iid = guid_uuid(iid_guid)
            entry = None
            if iid in _OPNUMS and iid not in (IID_IREMUNKNOWN, IID_IREMUNKNOWN2):
                entry = self.objects.query_interface(ripid, iid, int(request.cRefs) or 1)
            if entry is None:
                overall = HResult.E_NOINTERFACE
                results.append(ms_dcom.REMQIRESULT(hResult=signed_hresult(HResult.E_NOINTERFACE),
                                                   std=ms_dcom.STDOBJREF(), ndr64=False))
                continue
            results.append(ms_dcom.REMQIRESULT(
                hResult=0,
                std=ms_dcom.STDOBJREF(flags=0, cPublicRefs=int(request.cRefs) or 1,
                                      oxid=self.objects.oxid, oid=entry.oid,
                                      ipid=guid_bytes(entry.ipid), ndr64=False),
                ndr64=False))
        if any(r.hResult == 0 for r in results):
            overall = HResult.S_OK
        return RemQueryInterface_Response(ppQIResults=results, status=overall, ndr64=False)

    def _rem_query_interface2(self, call: Call, request):
        ripid = guid_uuid(request.ripid)
        count = len(request.valueof("iids"))
        if not self._may_use(ripid, call.auth.user):
            return ms_dcom.RemQueryInterface2_Response(
                phr=[signed_hresult(HResult.E_ACCESSDENIED)] * count, ppMIF=[None] * count,
                status=HResult.E_ACCESSDENIED, ndr64=False)
        if self.objects.lookup(ripid) is None:
            # the [out, size_is(cIids)] arrays keep their size; every entry fails
            return ms_dcom.RemQueryInterface2_Response(
                phr=[signed_hresult(HResult.RPC_E_INVALID_OBJECT)] * count, ppMIF=[None] * count,
                status=HResult.RPC_E_INVALID_OBJECT, ndr64=False)
        hrs, mifs = [], []
        for iid_guid in request.valueof("iids"):
            iid = guid_uuid(iid_guid)
            entry = None
            if iid in _OPNUMS and iid not in (IID_IREMUNKNOWN, IID_IREMUNKNOWN2):
                entry = self.objects.query_interface(ripid, iid, 1)
            if entry is None:
                hrs.append(signed_hresult(HResult.E_NOINTERFACE))
                mifs.append(None)
                continue
            hrs.append(0)
            mifs.append(ms_dcom.MInterfacePointer(abData=objref_standard(
                iid=iid, oxid=self.objects.oxid, oid=entry.oid, ipid=entry.ipid, public_refs=1,
                bindings=self._bindings(call)), ndr64=False))
        return ms_dcom.RemQueryInterface2_Response(phr=hrs, ppMIF=mifs, status=HResult.S_OK,
                                                   ndr64=False)

