"""impacket's DCOMConnection driving ICertRequestD::Request, written from the IDL.

impacket has no MS-WCCE module; these NDR definitions follow [MS-WCCE] 3.2.1.4.2.1
with impacket's own types, as an enrollment tool built on impacket would.
"""

from __future__ import annotations

from impacket.dcerpc.v5.dcomrt import DCOMANSWER, DCOMCALL, DCOMConnection, IRemUnknown2
from impacket.dcerpc.v5.dtypes import DWORD, LPWSTR, NULL, PBYTE, ULONG
from impacket.dcerpc.v5.ndr import NDRSTRUCT
from impacket.dcerpc.v5.rpcrt import RPC_C_AUTHN_LEVEL_PKT_PRIVACY
from impacket.uuid import string_to_bin, uuidtup_to_bin

CLSID_CCERTREQUESTD = string_to_bin("d99e6e74-fc88-11d0-b498-00a0c90312f3")
IID_ICERTREQUESTD = uuidtup_to_bin(("d99e6e70-fc88-11d0-b498-00a0c90312f3", "0.0"))


class CERTTRANSBLOB(NDRSTRUCT):
    structure = (("cb", ULONG), ("pb", PBYTE))


class Request(DCOMCALL):
    opnum = 3
    structure = (
        ("dwFlags", DWORD),
        ("pwszAuthority", LPWSTR),
        ("pdwRequestId", DWORD),
        ("pwszAttributes", LPWSTR),
        ("pctbRequest", CERTTRANSBLOB),
    )


class RequestResponse(DCOMANSWER):
    structure = (
        ("pdwRequestId", DWORD),
        ("pdwDisposition", ULONG),
        ("pctbCertChain", CERTTRANSBLOB),
        ("pctbEncodedCert", CERTTRANSBLOB),
        ("pctbDispositionMessage", CERTTRANSBLOB),
        ("ErrorCode", DWORD),
    )


class ICertRequestD(IRemUnknown2):
    def __init__(self, interface):
        IRemUnknown2.__init__(self, interface)
        self._iid = IID_ICERTREQUESTD


def blob_bytes(value) -> bytes:
    return b"".join(value["pb"]) if value["pb"] not in (NULL, None) else b""


def enroll(host: str, *, user: str, password: str, domain: str, ca_name: str, template: str,
           csr: bytes, level: int = RPC_C_AUTHN_LEVEL_PKT_PRIVACY):
    dcom = DCOMConnection(host, username=user, password=password, domain=domain)
    try:
        unknown = dcom.CoCreateInstanceEx(CLSID_CCERTREQUESTD, IID_ICERTREQUESTD)
        unknown.get_cinstance().set_auth_level(level)
        iface = ICertRequestD(unknown)
        request = Request()
        request["dwFlags"] = 0
        request["pwszAuthority"] = ca_name + "\x00"
        request["pdwRequestId"] = 0
        request["pwszAttributes"] = f"CertificateTemplate:{template}\x00"
        blob = CERTTRANSBLOB()
        blob["cb"] = len(csr)
        blob["pb"] = csr
        request["pctbRequest"] = blob
        return iface.request(request, iid=IID_ICERTREQUESTD, uuid=iface.get_iPid())
    finally:
        dcom.disconnect()
