"""The PDUs of every call and bind, built by the codecs compiled from scapy's field lists
(``conformance.wire.pdu.*_bytes``) vs by scapy's packets (``bytes(pdu.response(...))`` and
the like), and the NDR of a WCCE Request and its response, written and read by the codecs
compiled from their scapy declarations (``conformance.wire.ndrcodec``) vs by scapy, and the
activation's ActivationPropertiesOut from its template vs built by scapy; interleaved in one
run; the bytes (or the values read) are checked equal first.

    .venv/bin/python bench/bench_codecs.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scapy.layers.dcerpc import (  # noqa: E402
    DceRpc5, DceRpc5AbstractSyntax, DceRpc5Bind, DceRpc5Context, DceRpc5Request, DceRpc5TransferSyntax,
)
from scapy.packet import Raw  # noqa: E402

from conformance.refca.dcom import scm  # noqa: E402
from conformance.refca.rpc.dispatch import dissect_stub  # noqa: E402
from conformance.wire import pdu, wcce  # noqa: E402
from conformance.wire.dcom import DualStringArray, StringBinding, TowerId  # noqa: E402
from conformance.wire.ndrcodec import codec, record  # noqa: E402

NDR = (uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2)
ICERTREQUESTD = (uuid.UUID("d99e6e70-fc88-11d0-b498-00a0c90312f3"), 0)
STUB = bytes(range(256)) * 8  # a 2 KiB stub, about a Request's
VERIFIER = pdu.Verifier(auth_type=9, auth_level=6, context_id=0, token=b"\0" * 16, pad_length=0)


def scapy_response() -> bytes:
    return bytes(pdu.response(call_id=7, cont_id=1, stub=STUB, alloc_hint=len(STUB), auth=pdu.auth_verifier(
        auth_type=9, auth_level=6, context_id=0, token=b"\0" * 16), auth_padding=b""))


def compiled_response() -> bytes:
    return pdu.response_bytes(call_id=7, cont_id=1, stub=STUB, alloc_hint=len(STUB), verifier=VERIFIER)


def scapy_request() -> bytes:
    pkt = DceRpc5(pfc_flags=3, call_id=7)
    pkt.auth_verifier = pdu.auth_verifier(auth_type=9, auth_level=6, context_id=0, token=b"\0" * 16)
    pkt.auth_padding = b""
    return bytes(pkt / DceRpc5Request(alloc_hint=len(STUB), cont_id=1, opnum=0) / Raw(STUB))


def compiled_request() -> bytes:
    return pdu.request_bytes(call_id=7, cont_id=1, opnum=0, stub=STUB, alloc_hint=len(STUB), verifier=VERIFIER)


def scapy_bind() -> bytes:
    pkt = pdu.header(call_id=1)
    pkt.auth_verifier = pdu.auth_verifier(auth_type=9, auth_level=6, context_id=0, token=b"\1" * 120)
    pkt.auth_verifier.auth_pad_length = None
    return bytes(pkt / DceRpc5Bind(max_xmit_frag=5840, max_recv_frag=5840, assoc_group_id=0, context_elem=[
        DceRpc5Context(cont_id=0, abstract_syntax=DceRpc5AbstractSyntax(if_uuid=ICERTREQUESTD[0], if_version=0),
                       transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=NDR[0], if_version=2)])]))


def compiled_bind() -> bytes:
    return pdu.bind_bytes(call_id=1, max_xmit_frag=5840, max_recv_frag=5840, assoc_group_id=0,
                          contexts=[(0, ICERTREQUESTD, [NDR])], verifier=pdu.Verifier(
                              auth_type=9, auth_level=6, context_id=0, token=b"\1" * 120))


def scapy_bind_ack() -> bytes:
    return bytes(pdu.bind_ack(call_id=1, alter=False, max_xmit_frag=5840, max_recv_frag=5840, assoc_group_id=0x1234,
                              port_spec="49667", results=[(0, 0, NDR[0], 2)], auth=pdu.auth_verifier(
                                  auth_type=9, auth_level=6, context_id=0, token=b"\1" * 200)))


def compiled_bind_ack() -> bytes:
    return pdu.bind_ack_bytes(call_id=1, alter=False, max_xmit_frag=5840, max_recv_frag=5840, assoc_group_id=0x1234,
                              port_spec="49667", results=[(0, 0, NDR[0], 2)], verifier=pdu.Verifier(
                                  auth_type=9, auth_level=6, context_id=0, token=b"\1" * 200))


CSR = bytes(range(256)) * 3  # about a PKCS#10's size
CERT = bytes(range(256)) * 5


def _request_values():
    return dict(dwFlags=0x100, pwszAuthority="WCCE-LAB-CA", pdwRequestId=0,
                pwszAttributes="CertificateTemplate:User")


def scapy_request_stub() -> bytes:
    return bytes(wcce.Request_Request(**_request_values(), pctbRequest=wcce.blob(CSR), ndr64=False))


def compiled_request_stub() -> bytes:
    return codec(wcce.Request_Request).write(record(wcce.Request_Request, **_request_values(),
                                                    pctbRequest=record(wcce.CERTTRANSBLOB, pb=CSR)))


REQUEST_STUB = scapy_request_stub()


def scapy_read_request() -> tuple:
    pkt = dissect_stub(wcce.Request_Request, REQUEST_STUB, little_endian=True)
    return (pkt.dwFlags, pkt.valueof("pwszAuthority"), pkt.valueof("pwszAttributes"),
            wcce.blob_bytes(pkt.pctbRequest))


def compiled_read_request() -> tuple:
    rec = dissect_stub(wcce.Request_Request, REQUEST_STUB, little_endian=True, compiled=True)
    return rec.dwFlags, rec.valueof("pwszAuthority"), rec.valueof("pwszAttributes"), rec.pctbRequest.pb


def scapy_response_stub() -> bytes:
    return bytes(wcce.Request_Response(pdwRequestId=7, pdwDisposition=3, pctbCertChain=wcce.blob(CERT + CERT),
                                       pctbEncodedCert=wcce.blob(CERT), pctbDispositionMessage=wcce.blob(
                                           wcce.utf16z("Issued")), status=0, ndr64=False))


def compiled_response_stub() -> bytes:
    def blob(data):
        return record(wcce.CERTTRANSBLOB, pb=data)
    return codec(wcce.Request_Response).write(record(
        wcce.Request_Response, pdwRequestId=7, pdwDisposition=3, pctbCertChain=blob(CERT + CERT),
        pctbEncodedCert=blob(CERT), pctbDispositionMessage=blob(wcce.utf16z("Issued")), status=0))


_REPLY = scm.ActivationReply(
    iids=(wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2), made=(True, True), oxid=0x1122334455667788,
    bindings=DualStringArray(string_bindings=(StringBinding(tower_id=TowerId.NCACN_IP_TCP,
                                                            network_address="127.0.0.1[49667]"),),
                             security_bindings=()),
    ipid_remunknown=uuid.UUID(int=5), authn_hint=6)
_IPIDS = (uuid.UUID(int=11), uuid.UUID(int=12))


def scapy_activation_reply() -> bytes:
    return scm.properties_out_scapy(_REPLY, oid=0x99, ipids=_IPIDS)


def templated_activation_reply() -> bytes:
    return scm.properties_out(_REPLY, oid=0x99, ipids=_IPIDS)


PAIRS = {"request": (scapy_request, compiled_request), "response": (scapy_response, compiled_response),
         "bind": (scapy_bind, compiled_bind), "bind_ack": (scapy_bind_ack, compiled_bind_ack),
         "Request NDR, write": (scapy_request_stub, compiled_request_stub),
         "Request NDR, read": (scapy_read_request, compiled_read_request),
         "Request's response NDR, write": (scapy_response_stub, compiled_response_stub),
         "ActivationPropertiesOut": (scapy_activation_reply, templated_activation_reply)}


def _per_call(build, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        build()
    return (time.perf_counter() - start) / rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    for name, (scapy, compiled) in PAIRS.items():
        if scapy() != compiled():
            print(f"{name}: the compiled result differs from scapy's", file=sys.stderr)
            return 1
    print(f"{'':30s} {'scapy':>11s} {'compiled':>11s}  ratio (compiled / scapy), median of 5 interleaved batches")
    for name, (scapy, compiled) in PAIRS.items():
        times = {"scapy": [], "compiled": []}
        for _ in range(5):
            times["scapy"].append(_per_call(scapy, args.rounds // 5))
            times["compiled"].append(_per_call(compiled, args.rounds // 5))
        a, b = statistics.median(times["scapy"]), statistics.median(times["compiled"])
        print(f"{name:30s} {a * 1e6:8.1f} µs {b * 1e6:8.1f} µs  {b / a:.3f}× ({a / b:.0f}× faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
