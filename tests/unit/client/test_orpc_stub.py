"""The client's ORPC request stubs, written by the compiled codecs, are scapy's bytes."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.msrpce.raw.ms_dcom import COMVERSION, GUID, ORPCTHIS

from conformance.client import methods
from conformance.client.dcom import orpc_request_stub, request_class
from conformance.wire import wcce

names = st.none() | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)


@settings(max_examples=100, deadline=None)
@given(ca=names, csr=st.none() | st.binary(min_size=1, max_size=400), template=names, flags=st.integers(0, 2**32 - 1),
       request_id=st.integers(0, 2**32 - 1), cid=st.uuids(), version=st.tuples(st.integers(0, 0xFFFF),
                                                                                 st.integers(0, 0xFFFF)),
       orpc_flags=st.integers(0, 0xFFFF))
def test_a_request_stub_is_scapys(ca, csr, template, flags, request_id, cid, version, orpc_flags):
    args = methods.request(ca, csr, template=template, flags=flags, request_id=request_id)
    theirs = bytes(ORPCTHIS(version=COMVERSION(MajorVersion=version[0], MinorVersion=version[1]), flags=orpc_flags,
                            reserved1=0, cid=GUID(cid.bytes_le), extensions=None, ndr64=False))
    theirs += bytes(wcce.Request_Request(dwFlags=flags, pwszAuthority=ca, pdwRequestId=request_id,
                                         pwszAttributes=f"CertificateTemplate:{template}" if template else None,
                                         pctbRequest=wcce.blob(csr), ndr64=False))
    assert orpc_request_stub(args, version=version, flags=orpc_flags, cid=cid) == theirs
    assert request_class(args) is wcce.Request_Request


def test_every_method_is_a_record_of_its_declaration():
    pairs = [(methods.request2("CA", b"x"), wcce.Request2_Request), (methods.retrieve("CA", 4), wcce.Request_Request),
             (methods.get_ca_cert("CA"), wcce.GetCACert_Request), (methods.ping(), wcce.Ping_Request),
             (methods.ping2("CA"), wcce.Ping2_Request), (methods.get_ca_property("CA", 6, 4), wcce.GetCAProperty_Request),
             (methods.get_ca_property_info("CA"), wcce.GetCAPropertyInfo_Request)]
    for args, cls in pairs:
        assert request_class(args) is cls
        assert orpc_request_stub(args, cid=uuid.UUID(int=1))[32:] == bytes(cls(**{
            k: (wcce.blob(v.pb) if hasattr(v, "pb") else v) for k, v in args.values.items()}, ndr64=False))
