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


def ccache_ticket(ccache: str, spn: str) -> dict:
    """The service ticket for ``spn`` from an MIT ccache (``kinit`` + ``kvno``), as impacket
    takes it (``TGS=``): impacket 0.13's own TGS-REQ carries no authenticator checksum and an
    AD KDC (Samba's) refuses it (KRB_AP_ERR_INAPP_CKSUM; fortra/impacket pull request 2211)."""
    from impacket.krb5.ccache import CCache

    cache = CCache.loadFile(ccache)
    credential = cache.getCredential(f"{spn}@{cache.principal.realm['data'].decode()}", anySPN=False)
    if credential is None:
        raise LookupError(f"no ticket for {spn} in {ccache}")
    return credential.toTGS(spn)


def enroll(host: str, *, user: str, password: str, domain: str, ca_name: str, template: str,
           csr: bytes, level: int = RPC_C_AUTHN_LEVEL_PKT_PRIVACY, kerberos_ccache: str | None = None,
           spn: str | None = None, kdc_host: str | None = None):
    """Enroll once; with ``kerberos_ccache`` (and the CA's ``spn``, ``HOST/<its DNS name>``)
    over SPNEGO/Kerberos with the ccache's ticket, else with the password over NTLM."""
    if kerberos_ccache is not None:
        dcom = DCOMConnection(host, username=user, domain=domain, doKerberos=True, kdcHost=kdc_host,
                              TGS=ccache_ticket(kerberos_ccache, spn))
    else:
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
