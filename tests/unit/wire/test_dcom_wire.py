"""DUALSTRINGARRAY and OBJREF encodings, checked against scapy's and impacket's decoders."""

from __future__ import annotations

import struct
import uuid

import pytest
from scapy.layers.msrpce.msdcom import OBJREF
from scapy.layers.msrpce.raw.ms_dcom import DUALSTRINGARRAY, ServerAlive2_Response

from conformance.wire.dcom import (
    DualStringArray, SecurityBinding, StringBinding, TowerId, objref_standard,
    parse_network_address,
)

DSA = DualStringArray(
    string_bindings=(StringBinding(tower_id=TowerId.NCACN_IP_TCP, network_address="127.0.0.1[49667]"),
                     StringBinding(tower_id=TowerId.NCACN_IP_TCP, network_address="CA01")),
    security_bindings=(SecurityBinding(authn_svc=9), SecurityBinding(authn_svc=16, principal_name="host/ca01")),
)


@pytest.mark.parametrize("dsa", [DSA, DualStringArray(string_bindings=(), security_bindings=())])
def test_packet_form_round_trip(dsa):
    data = dsa.to_packet_bytes()
    entries, security_offset = struct.unpack_from("<HH", data)
    assert entries * 2 == len(data) - 4
    assert DualStringArray.from_array(data[4:], security_offset) == dsa


def test_empty_array_is_the_smallest_valid_one():
    # "Smallest valid DSA: wNumEntries 4, wSecurityOffset 2, 4 x 0x0000"
    assert DualStringArray(string_bindings=(), security_bindings=()).to_packet_bytes() == \
        struct.pack("<HH", 4, 2) + b"\0" * 8


def test_ndr_form_has_conformance_in_16_bit_units():
    ndr = DSA.to_ndr()
    wire = bytes(ServerAlive2_Response(ppdsaOrBindings=ndr, ndr64=False))
    max_count = struct.unpack_from("<I", wire, 8)[0]
    assert max_count == ndr.wNumEntries == len(DSA.to_packet_bytes()) // 2 - 2
    decoded = ServerAlive2_Response(wire, ndr64=False).valueof("ppdsaOrBindings")
    assert isinstance(decoded, DUALSTRINGARRAY)
    assert DualStringArray.from_array(decoded.aStringArray, decoded.wSecurityOffset) == DSA


def test_objref_standard_decodes_in_scapy_and_impacket():
    ipid = uuid.uuid4()
    data = objref_standard(iid=uuid.UUID("d99e6e70-fc88-11d0-b498-00a0c90312f3"), oxid=0x1122,
                           oid=0x3344, ipid=ipid, public_refs=5, bindings=DSA)
    ref = OBJREF(data)
    assert (ref.flags, ref.std.oxid, ref.std.oid, ref.std.cPublicRefs) == (1, 0x1122, 0x3344, 5)
    assert uuid.UUID(str(ref.std.ipid)) == ipid
    impacket = pytest.importorskip("impacket.dcerpc.v5.dcomrt")
    parsed = impacket.OBJREF_STANDARD(data)
    assert parsed["std"]["oxid"] == 0x1122
    bindings = impacket.DUALSTRINGARRAYPACKED(parsed["saResAddr"])
    assert bindings["wNumEntries"] == len(DSA.to_packet_bytes()) // 2 - 2


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1[49667]", ("127.0.0.1", 49667)),
    ("CA01", ("CA01", None)),
    ("::1[135]", ("::1", 135)),
])
def test_network_address(text, expected):
    assert parse_network_address(text) == expected


def test_rem_query_interface_response_is_a_pointer_to_a_conformant_array():
    """referent id, max_count, then 8-aligned REMQIRESULTs ([MS-DCOM] 3.1.1.5.6.1.1,
    as Wireshark dissects it); scapy 2.8's own class encodes an array of pointers."""
    from scapy.layers.msrpce.raw import ms_dcom

    from conformance.wire.dcom import RemQueryInterface_Response

    results = [ms_dcom.REMQIRESULT(hResult=0, std=ms_dcom.STDOBJREF(oxid=0x11 + i), ndr64=False)
               for i in range(2)]
    data = bytes(RemQueryInterface_Response(ppQIResults=results, status=0, ndr64=False))
    referent, max_count = struct.unpack_from("<II", data, 0)
    assert referent != 0 and max_count == 2
    # element i: hResult at 8 + 48 i, STDOBJREF (8-aligned) at 16 + 48 i, oxid at +8
    assert [struct.unpack_from("<Q", data, 16 + 48 * i + 8)[0] for i in range(2)] == [0x11, 0x12]
    assert len(data) == 8 + 2 * 48 + 4
    null = bytes(RemQueryInterface_Response(ppQIResults=None, status=0x80010114, ndr64=False))
    assert null == struct.pack("<II", 0, 0x80010114)
