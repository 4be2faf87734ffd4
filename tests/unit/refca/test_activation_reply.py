"""The activation's ActivationPropertiesOut from a template is scapy's blob, byte for byte."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.refca.dcom.scm import ActivationReply, _properties_template, properties_out, properties_out_scapy
from conformance.wire import wcce
from conformance.wire.dcom import IID_IUNKNOWN, DualStringArray, StringBinding, TowerId

IIDS = [wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2, IID_IUNKNOWN, uuid.UUID(int=7)]


@settings(max_examples=40, deadline=None)
@given(iids=st.lists(st.sampled_from(IIDS), min_size=1, max_size=4), data=st.data(),
       oxid=st.integers(0, 2**64 - 1), oid=st.integers(0, 2**64 - 1), hint=st.integers(0, 16),
       port=st.integers(1, 65535))
def test_the_templated_blob_is_scapys(iids, data, oxid, oid, hint, port):
    made = tuple(data.draw(st.lists(st.booleans(), min_size=len(iids), max_size=len(iids))))
    ipids = tuple(data.draw(st.lists(st.uuids(), min_size=sum(made), max_size=sum(made))))
    bindings = DualStringArray(string_bindings=(StringBinding(tower_id=TowerId.NCACN_IP_TCP,
                                                             network_address=f"127.0.0.1[{port}]"),),
                               security_bindings=())
    reply = ActivationReply(iids=tuple(iids), made=made, oxid=oxid, bindings=bindings,
                            ipid_remunknown=uuid.UUID(int=oxid), authn_hint=hint)
    assert _properties_template(reply) is not None  # the markers were found: the template is used
    assert properties_out(reply, oid=oid, ipids=ipids) == properties_out_scapy(reply, oid=oid, ipids=ipids)
