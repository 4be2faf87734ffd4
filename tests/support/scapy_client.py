"""scapy's DCOM_Client pointed at a reference CA, for interop tests.

scapy's ``DCOM_Client.connect`` always asks ServerAlive2 on port 135; we connect
to the CA's activation port directly instead, which is what it would pick.
"""

from __future__ import annotations

import dataclasses

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL, find_com_interface
from scapy.layers.msrpce.msdcom import DCOM_Client, ObjectInstance
from scapy.layers.msrpce.rpcclient import DCERPC_Client
from scapy.layers.ntlm import NTLMSSP
from scapy.layers.spnego import SPNEGOSSP

import conformance.wire  # noqa: F401  (registers ICertRequestD/D2)
from conformance.wire import wcce

ICERTREQUESTD = find_com_interface("ICertRequestD")
ICERTREQUESTD2 = find_com_interface("ICertRequestD2")


@dataclasses.dataclass
class Session:
    client: DCOM_Client
    obj: ObjectInstance
    level: RPC_C_AUTHN_LEVEL

    def call(self, request, *, d2: bool = False):
        return self.obj.sr1_req(request, iface=ICERTREQUESTD2 if d2 else ICERTREQUESTD,
                                auth_level=self.level)

    def call_raw(self, request, *, d2: bool = False):
        """Like :meth:`call`, but return scapy's raw answer (a DceRpc5 fault included);
        scapy's ObjectInstance.sr1_req raises IndexError when a fault comes back."""
        from scapy.layers.msrpce.raw.ms_dcom import ORPCTHIS

        iface = ICERTREQUESTD2 if d2 else ICERTREQUESTD
        oid_entry = self.client.OID_table[self.obj.oid]
        ipid = next(i for i in oid_entry.ipids if self.client.IPID_table[i].iid == iface.uuid)
        oxid = self.client.OXID_table[self.client.IPID_table[ipid].oxid]
        if oxid.client is None:  # open the exporter connection through scapy's own path
            try:
                self.call(wcce.Ping_Request(pwszAuthority=None, ndr64=False), d2=d2)
            except IndexError:
                pass
        oxid.client.bind_or_alter(iface, target_name=oxid.target_name)
        request.ndr64 = False
        pkt = ORPCTHIS(version=oxid.version, cid=self.client.cid, ndr64=False) / request
        opnum = next(o for o, op in iface.opnums.items() if isinstance(request, op.request))
        return oxid.client.sr1_req(pkt, opnum=opnum, objectuuid=ipid)

    def close(self) -> None:
        for oxid in self.client.OXID_table.values():
            if oxid.client is not None:
                oxid.client.close()
        if self.client.sock is not None:
            self.client.close()


def ntlm(user: str, password: str, *, spnego: bool = True):
    inner = NTLMSSP(UPN=f"{user}@lab.test", PASSWORD=password)
    return SPNEGOSSP([inner]) if spnego else inner


def activate(host: str, port: int, *, level: int = 6, ssp=None,
             iids=(ICERTREQUESTD, ICERTREQUESTD2)) -> Session:
    level = RPC_C_AUTHN_LEVEL(level)
    client = DCOM_Client(ssp=ssp, auth_level=level, verb=False)
    DCERPC_Client.connect(client, host, port=port, timeout=10)
    obj = client.RemoteCreateInstance(clsid=wcce.CLSID_CCERTREQUESTD, iids=list(iids))
    return Session(client=client, obj=obj, level=level)
