"""One SPNEGO/NTLM bind's security legs, in one process, without sockets: what the client
spends building its tokens and what the reference CA spends accepting them, per leg.

    .venv/bin/python bench/bench_gss.py [--binds 300]

Baseline, in the same run and interleaved bind by bind: the same legs made by scapy's own
NTLMSSP inside SPNEGOSSP on both sides (what the suite's initiator and the CA's acceptor derive
from), so a ratio is what ours add or save (the CA's CHALLENGE written from a template,
``conformance.refca.rpc.ntlm.ChallengeTemplates``; each side's messages built once).  Every bind completes and its session verifies a sealed message
both ways; a leg that fails stops the run.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scapy.layers.gssapi import GSS_C_FLAGS, GSSAPI_BLOB  # noqa: E402
from scapy.layers.ntlm import NTLMSSP  # noqa: E402
from scapy.layers.spnego import SPNEGOSSP  # noqa: E402

from conformance.client.ntlm import FlagsNTLMSSP  # noqa: E402
from conformance.refca.rpc.ntlm import NtlmAcceptor, NtlmBehaviour  # noqa: E402
from conformance.refca.rpc.security import SecurityContext  # noqa: E402
from conformance.wire.gss import nt_hash  # noqa: E402

PASSWORD = "Bench-Passw0rd!"
NAMES = dict(DOMAIN_NB_NAME="LAB", DOMAIN_FQDN="lab.test", COMPUTER_NB_NAME="CA01")
FLAGS = GSS_C_FLAGS.GSS_C_INTEG_FLAG | GSS_C_FLAGS.GSS_C_CONF_FLAG | GSS_C_FLAGS.GSS_C_MUTUAL_FLAG


def our_acceptor():
    return SPNEGOSSP([NtlmAcceptor(behaviour=NtlmBehaviour(), IDENTITIES={"bench": nt_hash(PASSWORD)}, **NAMES)])


def scapy_acceptor():
    return SPNEGOSSP([NTLMSSP(IDENTITIES={"bench": nt_hash(PASSWORD)}, **NAMES)])


def our_initiator():
    return SPNEGOSSP([FlagsNTLMSSP(UPN="bench@lab.test", PASSWORD=PASSWORD, clear_flags=0)])


def scapy_initiator():
    return SPNEGOSSP([NTLMSSP(UPN="bench@lab.test", PASSWORD=PASSWORD)])


OURS, SCAPYS = (our_initiator, our_acceptor), (scapy_initiator, scapy_acceptor)


def one_bind(sides) -> dict[str, float]:
    """Seconds per leg: c1 NEGOTIATE built, a1 CHALLENGE, c2 AUTHENTICATE, a2 accepted."""
    times = {}
    clock = time.perf_counter
    initiator, acceptor = sides
    start = clock()
    client = initiator()
    c_ctx, token, _ = client.GSS_Init_sec_context(None, req_flags=FLAGS)
    wire = bytes(token)
    times["c1"], start = clock() - start, clock()
    server = SecurityContext(context_id=0, auth_type=9, auth_level=6, ssp=acceptor(), header_sign=True)
    answer, done = server.accept(wire)
    times["a1"], start = clock() - start, clock()
    c_ctx, token, _ = client.GSS_Init_sec_context(c_ctx, input_token=GSSAPI_BLOB(answer), req_flags=FLAGS)
    wire = bytes(token)
    times["c2"], start = clock() - start, clock()
    answer, done = server.accept(wire)
    times["a2"] = clock() - start
    if not done:
        raise SystemExit("the bind did not complete")
    if answer:
        c_ctx, _, _ = client.GSS_Init_sec_context(c_ctx, input_token=GSSAPI_BLOB(answer), req_flags=FLAGS)
    _sealed_both_ways(client, c_ctx, server)
    return times


def _sealed_both_ways(client, c_ctx, server) -> None:
    from scapy.layers.gssapi import SSP

    for sender, s_ctx, receiver, r_ctx in ((client, c_ctx, server.ssp, server.gss_context),
                                           (server.ssp, server.gss_context, client, c_ctx)):
        msgs, signature = sender.GSS_WrapEx(s_ctx, [SSP.WRAP_MSG(conf_req_flag=True, sign=True, data=b"x" * 64)])
        opened = receiver.GSS_UnwrapEx(r_ctx, [SSP.WRAP_MSG(conf_req_flag=True, sign=True, data=msgs[0].data)],
                                       signature)
        if opened[0].data != b"x" * 64:
            raise SystemExit("a sealed message did not open")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binds", type=int, default=300)
    args = parser.parse_args()
    for _ in range(5):  # warm: imports, caches, the first CHALLENGE of the shape
        one_bind(OURS), one_bind(SCAPYS)
    mine, base = [], []
    for _ in range(args.binds):
        mine.append(one_bind(OURS))
        base.append(one_bind(SCAPYS))

    def ms(rows, leg):
        return statistics.median(r[leg] for r in rows) * 1000

    print(f"{args.binds} SPNEGO/NTLM binds each, interleaved (median ms a leg)")
    print(f"{'leg':38s} {'ours':>12s} {'scapy NTLMSSP':>14s} {'ratio':>6s}")
    for leg, what in (("c1", "client: NEGOTIATE"), ("a1", "acceptor: CHALLENGE"), ("c2", "client: AUTHENTICATE"),
                      ("a2", "acceptor: AUTHENTICATE accepted")):
        print(f"{leg} {what:35s} {ms(mine, leg):12.3f} {ms(base, leg):14.3f} {ms(mine, leg) / ms(base, leg):6.2f}x")
    ca_mine = statistics.median(r["a1"] + r["a2"] for r in mine) * 1000
    ca_base = statistics.median(r["a1"] + r["a2"] for r in base) * 1000
    print(f"the acceptor's two legs: {ca_mine:.3f} vs {ca_base:.3f} ms = {ca_mine / ca_base:.2f}x")
    c_mine = statistics.median(r["c1"] + r["c2"] for r in mine) * 1000
    c_base = statistics.median(r["c1"] + r["c2"] for r in base) * 1000
    print(f"the initiator's two legs: {c_mine:.3f} vs {c_base:.3f} ms = {c_mine / c_base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
