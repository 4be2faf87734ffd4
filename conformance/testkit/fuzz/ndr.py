"""The NDR of every WCCE and DCOM request: a valid stub, then bytes flipped,
truncated, extended, length words changed (sans-IO).

The I/O edge sends it in a correctly sealed call on the right IPID, so that it
gets past the RPC and ORPC checks and reaches the CA's NDR decoder.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import uuid
from collections.abc import Callable

from conformance.testkit.fuzz.choose import Chooser, Kind, Port, pick
from conformance.testkit.fuzz.fragments import complex_ping_stub
from conformance.testkit.fuzz.pdu import simple_ping_stub
from conformance.wire import wcce
from conformance.wire.dcom import IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR, IID_IREMUNKNOWN2

__all__ = ["CA_NAME", "NdrTarget", "NDR_TARGETS", "NdrInput", "ndr_input", "valid_stub"]

CA_NAME = "WCCE-LAB-CA"  # the name the valid WCCE stubs carry (tests' and bench's CA)



@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NdrTarget:
    name: str
    port: Port
    interface: uuid.UUID
    opnum: int
    build: Callable[[], bytes]  # the valid stub (ORPCTHIS included on the exporter)
    object_ipid: str = ""  # "" none, "remunknown", or the interface whose IPID is called


def _orpc(args) -> bytes:
    from conformance.client.dcom import orpc_request_stub

    return orpc_request_stub(args)


def _request_stub():
    from conformance.client import methods

    return methods.request(CA_NAME, methods.new_pkcs10("fuzz"))


def _request2_stub():
    from conformance.client import methods

    return methods.request2(CA_NAME, methods.new_pkcs10("fuzz2"))


def _dcom(name: str, **fields) -> Callable[[], bytes]:
    def build() -> bytes:
        from scapy.layers.msrpce.raw import ms_dcom

        return bytes(getattr(ms_dcom, name)(ndr64=False, **fields))
    return build


def _rem_unknown(name: str, **fields) -> Callable[[], bytes]:
    def build() -> bytes:
        from scapy.layers.msrpce.raw import ms_dcom

        return _orpc(getattr(ms_dcom, name)(ndr64=False, **fields))
    return build


def _activation():
    from conformance.client.dcom import activation_request

    return activation_request(clsid=wcce.CLSID_CCERTREQUESTD,
                              iids=[wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2],
                              server_name="127.0.0.1", default_level=6)


def _remote_create_instance() -> bytes:
    return bytes(_activation())


def _remote_get_class_object() -> bytes:
    from scapy.layers.msrpce.raw.ms_dcom import RemoteGetClassObject_Request

    request = _activation()
    return bytes(RemoteGetClassObject_Request(orpcthis=request.orpcthis,
                                              pActProperties=request.pActProperties, ndr64=False))


def _guid(value: uuid.UUID):
    from scapy.layers.msrpce.raw.ms_dcom import GUID

    return GUID(value.bytes_le)


def _iref():
    from scapy.layers.msrpce.raw.ms_dcom import REMINTERFACEREF

    return REMINTERFACEREF(ipid=_guid(uuid.UUID(int=7)), cPublicRefs=1, cPrivateRefs=0, ndr64=False)


_D, _D2 = wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2
_A = Port.ACTIVATION

NDR_TARGETS: tuple[NdrTarget, ...] = (
    NdrTarget(name="ICertRequestD.Request", port=Port.EXPORTER, interface=_D, opnum=3,
              build=lambda: _orpc(_request_stub()), object_ipid="d"),
    NdrTarget(name="ICertRequestD.GetCACert", port=Port.EXPORTER, interface=_D, opnum=4,
              build=lambda: _orpc(wcce.GetCACert_Request(fchain=0, pwszAuthority=CA_NAME, ndr64=False)),
              object_ipid="d"),
    NdrTarget(name="ICertRequestD.Ping", port=Port.EXPORTER, interface=_D, opnum=5,
              build=lambda: _orpc(wcce.Ping_Request(pwszAuthority=CA_NAME, ndr64=False)), object_ipid="d"),
    NdrTarget(name="ICertRequestD2.Request2", port=Port.EXPORTER, interface=_D2, opnum=6,
              build=lambda: _orpc(_request2_stub()), object_ipid="d2"),
    NdrTarget(name="ICertRequestD2.GetCAProperty", port=Port.EXPORTER, interface=_D2, opnum=7,
              build=lambda: _orpc(wcce.GetCAProperty_Request(pwszAuthority=CA_NAME, PropID=6, PropIndex=0,
                                                             PropType=4, ndr64=False)), object_ipid="d2"),
    NdrTarget(name="ICertRequestD2.GetCAPropertyInfo", port=Port.EXPORTER, interface=_D2, opnum=8,
              build=lambda: _orpc(wcce.GetCAPropertyInfo_Request(pwszAuthority=CA_NAME, ndr64=False)),
              object_ipid="d2"),
    NdrTarget(name="ICertRequestD2.Ping2", port=Port.EXPORTER, interface=_D2, opnum=9,
              build=lambda: _orpc(wcce.Ping2_Request(pwszAuthority=CA_NAME, ndr64=False)), object_ipid="d2"),
    NdrTarget(name="IRemUnknown2.RemQueryInterface", port=Port.EXPORTER, interface=IID_IREMUNKNOWN2,
              opnum=3, object_ipid="remunknown",
              build=_rem_unknown("RemQueryInterface_Request", ripid=_guid(uuid.UUID(int=7)), cRefs=1,
                                 iids=[_guid(_D2)])),
    NdrTarget(name="IRemUnknown2.RemAddRef", port=Port.EXPORTER, interface=IID_IREMUNKNOWN2, opnum=4,
              object_ipid="remunknown", build=_rem_unknown("RemAddRef_Request", InterfaceRefs=[_iref()])),
    NdrTarget(name="IRemUnknown2.RemRelease", port=Port.EXPORTER, interface=IID_IREMUNKNOWN2, opnum=5,
              object_ipid="remunknown", build=_rem_unknown("RemRelease_Request", InterfaceRefs=[_iref()])),
    NdrTarget(name="IRemUnknown2.RemQueryInterface2", port=Port.EXPORTER, interface=IID_IREMUNKNOWN2,
              opnum=6, object_ipid="remunknown",
              build=_rem_unknown("RemQueryInterface2_Request", ripid=_guid(uuid.UUID(int=7)),
                                 iids=[_guid(_D)])),
    NdrTarget(name="IRemoteSCMActivator.RemoteCreateInstance", port=_A, interface=IID_IREMOTE_SCM_ACTIVATOR,
              opnum=4, build=_remote_create_instance),
    NdrTarget(name="IRemoteSCMActivator.RemoteGetClassObject", port=_A, interface=IID_IREMOTE_SCM_ACTIVATOR,
              opnum=3, build=_remote_get_class_object),
    NdrTarget(name="IObjectExporter.ResolveOxid", port=_A, interface=IID_IOBJECT_EXPORTER, opnum=0,
              build=_dcom("ResolveOxid_Request", pOxid=1, arRequestedProtseqs=[7])),
    NdrTarget(name="IObjectExporter.SimplePing", port=_A, interface=IID_IOBJECT_EXPORTER, opnum=1,
              build=simple_ping_stub),
    NdrTarget(name="IObjectExporter.ComplexPing", port=_A, interface=IID_IOBJECT_EXPORTER, opnum=2,
              build=lambda: complex_ping_stub(3)),
    NdrTarget(name="IObjectExporter.ServerAlive", port=_A, interface=IID_IOBJECT_EXPORTER, opnum=3,
              build=lambda: b""),
    NdrTarget(name="IObjectExporter.ResolveOxid2", port=_A, interface=IID_IOBJECT_EXPORTER, opnum=4,
              build=_dcom("ResolveOxid2_Request", pOxid=1, arRequestedProtseqs=[7])),
    NdrTarget(name="IObjectExporter.ServerAlive2", port=_A, interface=IID_IOBJECT_EXPORTER, opnum=5,
              build=lambda: b""),
)
_BY_NAME = {t.name: t for t in NDR_TARGETS}


@functools.lru_cache(maxsize=None)
def valid_stub(name: str) -> bytes:
    return _BY_NAME[name].build()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NdrInput:
    label: str
    target: str  # an NDR_TARGETS name
    stub: bytes
    ops: tuple[str, ...] = ()  # the mutations, in order
    kind: Kind = Kind.NDR

    @property
    def only_truncated(self) -> bool:
        """A strict prefix of a valid stub is never a whole one: it must be refused."""
        return bool(self.ops) and set(self.ops) == {"truncate"}

    @property
    def spec(self) -> NdrTarget:
        return _BY_NAME[self.target]


_NDR_OPS = ("flip", "byte", "truncate", "extend", "insert", "delete", "dword")
_INTERESTING_32 = (0, 1, 2, 0x10, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def _mutate_stub(choose: Chooser, stub: bytearray, op: str) -> str:
    size = len(stub)
    at = choose.integer(0, max(size - 1, 0))
    if op == "flip" and size:
        stub[at] ^= 1 << choose.integer(0, 7)
    elif op == "byte" and size:
        stub[at] = choose.integer(0, 255)
    elif op == "truncate":
        del stub[at:]
    elif op == "extend":
        stub += choose.binary(1, 64)
    elif op == "insert":
        stub[at:at] = choose.binary(1, 8)
    elif op == "delete" and size:
        del stub[at:at + choose.integer(1, 8)]
    elif op == "dword" and size >= 4:
        # NDR counts, offsets and referent ids are aligned 32-bit words
        at = min(at - at % 4, (size - 4) // 4 * 4)
        old = struct.unpack_from("<I", stub, at)[0]
        value = pick(choose, _INTERESTING_32 + ((old + 1) & 0xFFFFFFFF, (old - 1) & 0xFFFFFFFF, size))
        struct.pack_into("<I", stub, at, value)
    else:
        stub += choose.binary(1, 8)
        return "extend"
    return op


def ndr_input(choose: Chooser, targets: tuple[NdrTarget, ...] = NDR_TARGETS) -> NdrInput:
    """``targets``: the methods to draw from."""
    target = pick(choose, targets)
    stub = bytearray(valid_stub(target.name))
    ops = [_mutate_stub(choose, stub, pick(choose, _NDR_OPS)) for _ in range(choose.integer(1, 3))]
    if stub == valid_stub(target.name):  # two changes undid each other
        ops.append(_mutate_stub(choose, stub, "extend"))
    return NdrInput(label=f"ndr/{target.name}/{'+'.join(ops)}", target=target.name, stub=bytes(stub),
                    ops=tuple(ops))

