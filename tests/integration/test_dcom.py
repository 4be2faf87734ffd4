"""The DCOM side of the reference CA: activation, the OXID resolver, the exporter's
ORPC rules ([MS-DCOM] 3.1.1.5.4) and IRemUnknown2."""

from __future__ import annotations

import struct
import uuid

import pytest
from scapy.layers.msrpce.msdcom import OBJREF
from scapy.layers.msrpce.raw import ms_dcom

from conformance.client.rpc import RpcConnection
from conformance.client.session import WcceSession
from conformance.wire import wcce
from conformance.wire.dcom import (
    IID_IOBJECT_EXPORTER, IID_IREMUNKNOWN2, IID_IUNKNOWN, HResult, parse_network_address,
)
from conformance.wire.rpc import FaultStatus, PType, ProviderReason
from conformance.wire.wcce import Disposition
from tests.support.ourclient import open_session, request, security


def _guid(value: uuid.UUID) -> ms_dcom.GUID:
    return ms_dcom.GUID(value.bytes_le)


# -- activation --------------------------------------------------------------------------


def test_activation_reply_names_the_exporter_at_the_address_used(ca):
    session = WcceSession(ca.config.listen.host, ca.activation_port, security=security(9, 6))
    _, activation = session.activate()
    assert activation.status == 0 and activation.server_version == (5, 7)
    assert activation.authn_hint == 6  # the CA enforces privacy
    host, port = session.exporter_address()
    assert (host, port) == (ca.config.listen.host, ca.exporter_port)
    assert {b.authn_svc for b in activation.bindings.security_bindings} == {9, 10}
    assert [i.hresult for i in activation.interfaces] == [0, 0]
    assert activation.ipid(wcce.IID_ICERTREQUESTD) != activation.ipid(wcce.IID_ICERTREQUESTD2)


def test_unknown_class_is_not_registered(ca):
    session = WcceSession(ca.config.listen.host, ca.activation_port, security=security(9, 6),
                          clsid=uuid.uuid4())
    _, activation = session.activate()
    assert activation.status == HResult.REGDB_E_CLASSNOTREG
    assert ca.objects.object_count() == 0


def test_unsupported_interface_gets_e_nointerface_beside_the_others(ca):
    session = WcceSession(ca.config.listen.host, ca.activation_port, security=security(9, 6),
                          iids=(uuid.uuid4(), wcce.IID_ICERTREQUESTD))
    _, activation = session.activate()
    assert activation.status == 0
    assert [i.hresult for i in activation.interfaces] == [HResult.E_NOINTERFACE, 0]


def test_remote_get_class_object_exports_no_class_factory(ca):
    with RpcConnection(ca.config.listen.host, ca.activation_port, security=security(9, 6)) as conn:
        conn.bind(uuid.UUID("000001a0-0000-0000-c000-000000000046"))
        from conformance.client.dcom import activation_request

        create = activation_request(clsid=wcce.CLSID_CCERTREQUESTD,
                                    iids=[uuid.UUID("00000001-0000-0000-c000-000000000046")],
                                    server_name="x", default_level=6)
        get = ms_dcom.RemoteGetClassObject_Request(orpcthis=create.orpcthis,
                                                   pActProperties=create.valueof("pActProperties"),
                                                   ndr64=False)
        outcome, stub = conn.call(uuid.UUID("000001a0-0000-0000-c000-000000000046"), 3, bytes(get))
        assert struct.unpack("<I", stub[-4:])[0] == HResult.E_NOINTERFACE


# -- the OXID resolver ---------------------------------------------------------------------


def test_server_alive2_is_unauthenticated_and_has_no_endpoints(ca):
    with RpcConnection(ca.config.listen.host, ca.activation_port) as conn:
        assert conn.bind(IID_IOBJECT_EXPORTER).ptype == PType.BIND_ACK
        _, stub = conn.call(IID_IOBJECT_EXPORTER, 5, b"")
    resp = ms_dcom.ServerAlive2_Response(stub, ndr64=False)
    assert (resp.pComVersion.MajorVersion, resp.pComVersion.MinorVersion, resp.status) == (5, 7, 0)
    dsa = resp.valueof("ppdsaOrBindings")
    from conformance.wire.dcom import DualStringArray

    bindings = DualStringArray.from_array(dsa.aStringArray, dsa.wSecurityOffset)
    assert bindings.string_bindings[0].network_address == ca.config.listen.host
    # "the string bindings MUST NOT contain endpoints" ([MS-DCOM] 3.1.2.5.1.6)
    assert all(parse_network_address(b.network_address)[1] is None for b in bindings.string_bindings)


def test_resolve_oxid2_and_pings(ca):
    session = open_session(ca, security(9, 6))
    oxid = session.activation.oxid
    session.close()
    with RpcConnection(ca.config.listen.host, ca.activation_port, security=security(9, 5)) as conn:
        conn.bind(IID_IOBJECT_EXPORTER)

        def call(opnum, pkt):
            return conn.call(IID_IOBJECT_EXPORTER, opnum, bytes(pkt))[1]

        good = ms_dcom.ResolveOxid2_Response(call(4, ms_dcom.ResolveOxid2_Request(
            pOxid=oxid, arRequestedProtseqs=[7], ndr64=False)), ndr64=False)
        assert good.status == 0 and good.pAuthnHint == 6
        assert uuid.UUID(bytes_le=bytes(good.pipidRemUnknown)) == ca.objects.ipid_remunknown
        bad = call(4, ms_dcom.ResolveOxid2_Request(pOxid=oxid ^ 1, arRequestedProtseqs=[7], ndr64=False))
        assert struct.unpack("<I", bad[-4:])[0] == FaultStatus.OR_INVALID_OXID
        created = ms_dcom.ComplexPing_Response(call(2, ms_dcom.ComplexPing_Request(
            pSetId=0, SequenceNum=1, AddToSet=[], DelFromSet=[], ndr64=False)), ndr64=False)
        assert created.status == 0 and created.pSetId != 0 and created.pPingBackoffFactor == 0
        ok = call(1, ms_dcom.SimplePing_Request(pSetId=created.pSetId, ndr64=False))
        assert struct.unpack("<I", ok[-4:])[0] == 0
        unknown = call(1, ms_dcom.SimplePing_Request(pSetId=created.pSetId ^ 2, ndr64=False))
        assert struct.unpack("<I", unknown[-4:])[0] == FaultStatus.OR_INVALID_SET


# -- ORPC rules on the exporter --------------------------------------------------------------


@pytest.fixture
def session(ca):
    s = open_session(ca, security(9, 6))
    yield s
    s.close()


def test_unknown_ipid_is_rpc_e_disconnected(session):
    result = session.call(request(), ipid=uuid.uuid4())
    assert result.fault_status == HResult.RPC_E_DISCONNECTED


@pytest.mark.parametrize("version", [(5, 8), (6, 7), (4, 1)])
def test_com_version_mismatch(session, version):
    assert session.call(request(), orpc_version=version).fault_status == HResult.RPC_E_VERSION_MISMATCH


def test_orpcthis_flags_must_be_zero(session):
    assert session.call(request(), orpc_flags=1).fault_status == HResult.RPC_E_INVALID_HEADER


@pytest.mark.parametrize("version", [0x00000001, 0x00010000], ids=["1.0", "0.1"])
@pytest.mark.parametrize("interface", [wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2],
                         ids=["ICertRequestD", "ICertRequestD2"])
def test_interface_version_other_than_0_0_is_rejected(session, interface, version):
    with RpcConnection(*session.exporter_address(), security=security(9, 6)) as conn:
        outcome = conn.bind(interface, version)
        # SPNEGO ends on alter_context_resp, which repeats the verdict on the context
        assert outcome.ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP)
        result = outcome.packet().results[0]
        assert (result.result, result.reason) == (2, ProviderReason.ABSTRACT_SYNTAX_NOT_SUPPORTED)
        assert interface not in conn.contexts


def test_call_bound_as_icertrequestd_on_an_icertrequestd2_ipid(session):
    """ICertRequestD2 derives from ICertRequestD: its IPID serves the base opnums."""
    result = session.call(wcce.Ping_Request(pwszAuthority=None),
                          ipid=session.activation.ipid(wcce.IID_ICERTREQUESTD2))
    assert result.response.status == 0


def test_d2_opnum_on_a_d_binding_is_out_of_range(session):
    from conformance.client.dcom import orpc_request_stub

    conn = session.exporter
    stub = orpc_request_stub(wcce.Ping2_Request(pwszAuthority=None))
    outcome, _ = conn.call(wcce.IID_ICERTREQUESTD, 9, stub,
                           object_uuid=session.activation.ipid(wcce.IID_ICERTREQUESTD))
    assert outcome.fault_status == FaultStatus.NCA_S_OP_RNG_ERROR


# -- IRemUnknown2 ------------------------------------------------------------------------------


def test_rem_query_interface_gives_a_working_ipid(session):
    only_d = session.activation.ipid(wcce.IID_ICERTREQUESTD)
    qi = session.call(ms_dcom.RemQueryInterface_Request(
        ripid=_guid(only_d), cRefs=1, iids=[_guid(wcce.IID_ICERTREQUESTD2), _guid(uuid.uuid4())]),
        interface=IID_IREMUNKNOWN2).response
    results = qi.valueof("ppQIResults")
    assert qi.status == 0
    assert results[0].hResult == 0 and (results[1].hResult & 0xFFFFFFFF) == HResult.E_NOINTERFACE
    new_ipid = uuid.UUID(bytes_le=bytes(results[0].std.ipid))
    ping2 = session.call(wcce.Ping2_Request(pwszAuthority=None), interface=wcce.IID_ICERTREQUESTD2,
                         ipid=new_ipid)
    assert ping2.response.status == 0


def test_rem_query_interface_on_unknown_ipid(session):
    qi = session.call(ms_dcom.RemQueryInterface_Request(
        ripid=_guid(uuid.uuid4()), cRefs=1, iids=[_guid(IID_IUNKNOWN)]), interface=IID_IREMUNKNOWN2)
    assert qi.response.status == HResult.RPC_E_INVALID_OBJECT


def test_rem_query_interface2_returns_objrefs(session):
    qi2 = session.call(ms_dcom.RemQueryInterface2_Request(
        ripid=_guid(session.activation.ipid(wcce.IID_ICERTREQUESTD)),
        iids=[_guid(wcce.IID_ICERTREQUESTD2)]), interface=IID_IREMUNKNOWN2).response
    assert qi2.status == 0 and list(qi2.valueof("phr")) == [0]
    ref = OBJREF(qi2.valueof("ppMIF")[0].abData)
    assert ref.flags == 1 and ref.std.oxid == session.activation.oxid


def test_rem_add_ref_and_release(session):
    ipid = session.activation.ipid(wcce.IID_ICERTREQUESTD)

    def refs(target, count):
        return [ms_dcom.REMINTERFACEREF(ipid=_guid(target), cPublicRefs=count, cPrivateRefs=0)]

    added = session.call(ms_dcom.RemAddRef_Request(InterfaceRefs=refs(ipid, 1) + refs(uuid.uuid4(), 1)),
                         interface=IID_IREMUNKNOWN2).response
    assert [r & 0xFFFFFFFF for r in added.valueof("pResults")] == [0, HResult.CO_E_OBJNOTREG]
    # activation handed out 5 public references, plus the one just added
    released = session.call(ms_dcom.RemRelease_Request(InterfaceRefs=refs(ipid, 6)),
                            interface=IID_IREMUNKNOWN2).response
    assert released.status == 0
    assert session.call(request(), ipid=ipid).fault_status == HResult.RPC_E_DISCONNECTED
    # the object's other interface is still there
    other = session.activation.ipid(wcce.IID_ICERTREQUESTD2)
    assert session.call(wcce.Ping_Request(pwszAuthority=None), ipid=other).response.status == 0


def test_another_identity_cannot_use_or_release_an_objects_ipids(ca, session):
    """DCOM-IPID-01: bob's connection, alice's IPIDs: every call, QI and reference
    change is refused; alice's object keeps working."""
    theirs = session.activation.ipid(wcce.IID_ICERTREQUESTD)
    with open_session(ca, security(9, 6, user="bob")) as bob:
        assert bob.call(request(), ipid=theirs).fault_status == HResult.E_ACCESSDENIED
        ref = [ms_dcom.REMINTERFACEREF(ipid=_guid(theirs), cPublicRefs=5, cPrivateRefs=0)]
        added = bob.call(ms_dcom.RemAddRef_Request(InterfaceRefs=ref), interface=IID_IREMUNKNOWN2).response
        assert [r & 0xFFFFFFFF for r in added.valueof("pResults")] == [HResult.E_ACCESSDENIED]
        assert bob.call(ms_dcom.RemRelease_Request(InterfaceRefs=ref), interface=IID_IREMUNKNOWN2
                        ).response.status == 0  # nothing released, nothing said
        qi = bob.call(ms_dcom.RemQueryInterface2_Request(ripid=_guid(theirs), cIids=1,
                                                          iids=[_guid(wcce.IID_ICERTREQUESTD2)]),
                      interface=IID_IREMUNKNOWN2).response
        assert qi.status & 0xFFFFFFFF == HResult.E_ACCESSDENIED
        assert bob.call(request(), ipid=bob.activation.ipid(wcce.IID_ICERTREQUESTD)).response.status == 0
    reply = session.call(request(), ipid=theirs).response
    assert reply.status == 0 and reply.pdwDisposition == Disposition.ISSUED


# -- templates and request formats ----------------------------------------------------------


def test_cmc_request_is_issued(session, ca):
    from tests.support.certs import make_csr
    from tests.unit.refca.test_requests import cmc

    req = request(csr=cmc(make_csr("cmc-user")))
    req.dwFlags = wcce.RequestType.CMC
    assert session.call(req).response.pdwDisposition == Disposition.ISSUED


def test_webserver_takes_subject_and_san_from_the_request(session, ca):
    from cryptography import x509

    from tests.support.certs import make_csr

    response = session.call(request("WebServer", csr=make_csr("www.lab.test", san_dns=("www.lab.test",)))).response
    cert = x509.load_der_x509_certificate(bytes(response.pctbEncodedCert.valueof("pb")))
    assert cert.subject.rfc4514_string() == "CN=www.lab.test"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.lab.test"]
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value[0].dotted_string == "1.3.6.1.5.5.7.3.1"


def test_user_template_builds_subject_and_upn_from_the_caller(session):
    from cryptography import x509

    from tests.support.certs import make_csr

    response = session.call(request("User", csr=make_csr("ignored"))).response
    cert = x509.load_der_x509_certificate(bytes(response.pctbEncodedCert.valueof("pb")))
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "alice"
    other = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    upn = other.get_values_for_type(x509.OtherName)[0]
    assert upn.type_id.dotted_string == "1.3.6.1.4.1.311.20.2.3" and b"alice@lab.test" in upn.value


def test_machine_template_names_the_caller_in_dns(session):
    from cryptography import x509

    response = session.call(request("Machine")).response
    cert = x509.load_der_x509_certificate(bytes(response.pctbEncodedCert.valueof("pb")))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["alice.lab.test"]


def test_request2_retrieves_by_serial_number(session):
    issued = session.call(request()).response
    from cryptography import x509

    cert = x509.load_der_x509_certificate(bytes(issued.pctbEncodedCert.valueof("pb")))
    serial = f"{cert.serial_number:x}"
    serial = serial if len(serial) % 2 == 0 else "0" + serial  # "even-length hex"
    by_serial = session.call(wcce.Request2_Request(
        pwszAuthority="WCCE-LAB-CA", dwFlags=0, pwszSerialNumber=serial, pdwRequestId=0,
        pwszAttributes=None, pctbRequest=wcce.blob(b"")), interface=wcce.IID_ICERTREQUESTD2).response
    assert (by_serial.pdwDisposition, by_serial.pdwRequestId) == (Disposition.ISSUED, issued.pdwRequestId)
    both = session.call(wcce.Request2_Request(
        pwszAuthority="WCCE-LAB-CA", dwFlags=0, pwszSerialNumber=serial, pdwRequestId=1,
        pwszAttributes=None, pctbRequest=wcce.blob(b"")), interface=wcce.IID_ICERTREQUESTD2).response
    assert both.pdwDisposition == HResult.E_INVALIDARG  # both an ID and a serial: fail


def test_another_user_cannot_retrieve_my_request(ca, session):
    issued = session.call(request()).response
    bob = open_session(ca, security(9, 6, user="bob"))
    try:
        theirs = bob.call(wcce.Request_Request(
            dwFlags=0, pwszAuthority="WCCE-LAB-CA", pdwRequestId=issued.pdwRequestId,
            pwszAttributes=None, pctbRequest=wcce.blob(b""))).response
        assert theirs.pdwDisposition == HResult.E_ACCESSDENIED
        assert not theirs.pctbEncodedCert.valueof("pb")
    finally:
        bob.close()
