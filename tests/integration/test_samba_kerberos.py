"""Our client's Kerberos against a throwaway Samba AD DC (conformance.targets.samba): SPNEGO
(auth_type 9) and raw Kerberos (16), DCE style, bind Samba's mgmt interface on 127.0.0.3:135
at levels 2, 4, 5 and 6 and call inq_if_ids (opnum 0).

Samba answers the DCE-style third leg (the client's AP-REP) with its own SPNEGO mechListMIC
and accept-incomplete, and then requires the initiator's mechListMIC (RFC 4178 section 5)
in the next leg; scapy's SPNEGO initiator sent none for Kerberos as its first choice (see
conformance.client.kerberos.MicAnsweringSPNEGOSSP) and every SPNEGO/Kerberos bind got fault
0x721.  The reference CA never sends a mechListMIC for Kerberos, so only an independent
acceptor like this one exercises the answer.
"""

from __future__ import annotations

import os
import struct
import uuid

import pytest
from scapy.layers.kerberos import KRB_GSS_MIC, KRB_InnerToken

from conformance.client.kerberos import KerberosInitiator, MicAnsweringSPNEGOSSP, TicketCache
from conformance.client.rpc import Outcome, RpcConnection, RpcError, Security
from conformance.targets.samba import SECOND_DC_HOST, SambaDC, samba_available
from conformance.wire.framing import CommonHeader
from conformance.wire.gss import token_packet
from conformance.wire.protection import SecTrailer
from conformance.wire.rpc import SEC_TRAILER_LEN, PType

# one worker with the other Samba tests: their DCs share an address (tests/conftest.py SHARED_WORKER)
pytestmark = [
    pytest.mark.skipif(not samba_available(),
                       reason="Samba is not installed (apt-get install --no-install-recommends samba "
                              "samba-dsdb-modules samba-vfs-modules samba-ad-provision; .ci/install does)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a Samba AD DC needs root (ports 88, 135, 389)"),
]

EPM = uuid.UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa")  # endpoint mapper v3.0
MGMT = uuid.UUID("afa8bd80-7d8a-11c9-bef4-08002b102989")  # mgmt v1.0, on every endpoint
SPNEGO, KERBEROS = 9, 16
RPC_S_SEC_PKG_ERROR = 0x721  # Samba's fault for a context that does not authenticate
ACCEPT_COMPLETED, ACCEPT_INCOMPLETE = 0, 1  # RFC 4178 4.2.2 NegState


@pytest.fixture(scope="module")
def dc():
    with SambaDC(host=SECOND_DC_HOST) as running:
        yield running


@pytest.fixture(scope="module")
def tickets(dc):
    """One TGT and one host/ service ticket for the whole module (scapy's AS and TGS)."""
    return TicketCache(kdc_host=dc.host, kdc_port=88, realm=dc.realm, user="Administrator",
                       password=dc.admin_password)


def _connect(dc, tickets, *, auth_type: int, level: int, **knobs) -> RpcConnection:
    spn = f"host/{dc.dns_name}"
    kerberos = KerberosInitiator(tickets=tickets, activation_spn=spn, fallback_spn=spn)
    return RpcConnection(dc.host, dc.epm_port, security=Security(auth_type=auth_type, level=level, kerberos=kerberos,
                                                                 target_name=spn, **knobs))


def _if_ids(stub: bytes) -> tuple[set[tuple[uuid.UUID, int, int]], int]:
    """mgmt inq_if_ids' rpc_if_id_vector_p_t and status: {(uuid, major, minor)}, status."""
    count = struct.unpack_from("<I", stub, 4)[0]
    at = 12 + 4 * count  # referent, count, conformance, one pointer per entry
    ids = set()
    for _ in range(count):
        ids.add((uuid.UUID(bytes_le=stub[at:at + 16]), *struct.unpack_from("<HH", stub, at + 16)))
        at += 20
    return ids, struct.unpack_from("<I", stub, at)[0]


def _auth_token(pdu: bytes) -> bytes:
    header = CommonHeader.parse(pdu)
    trailer = SecTrailer.parse(pdu, header)
    return pdu[trailer.offset + SEC_TRAILER_LEN:header.frag_len] if trailer is not None else b""


class _Legs:
    """Records the SPNEGO tokens of a connection's handshake, both ways, parsed."""

    def __init__(self, conn: RpcConnection) -> None:
        self.sent, self.received = [], []
        exchange = conn.exchange

        def recording(data: bytes, **kwargs) -> Outcome:
            if conn.protection is None and (token := _auth_token(data)):
                self.sent.append(token_packet(SPNEGO, token))
            outcome = exchange(data, **kwargs)
            if conn.protection is None and outcome.pdus and (token := _auth_token(outcome.last)):
                self.received.append(token_packet(SPNEGO, token))
            return outcome

        conn.exchange = recording


def _resp(token):
    return getattr(token, "innerToken", token).token


@pytest.mark.parametrize("level", [2, 4, 5, 6])
@pytest.mark.parametrize("auth_type", [SPNEGO, KERBEROS], ids=["spnego-kerberos", "kerberos"])
def test_binds_mgmt_and_calls_inq_if_ids(dc, tickets, auth_type, level):
    """At CONNECT (2) the context has no integrity and Samba exchanges no mechListMIC; from
    PKT (4) on it sends one and requires ours."""
    with _connect(dc, tickets, auth_type=auth_type, level=level) as conn:
        outcome = conn.bind(MGMT, 1)
        # SPNEGO: bind_ack, alter_context (AP-REP), alter_context (mechListMIC);
        # raw Kerberos: bind_ack, alter_context (AP-REP)
        assert outcome.ptype == PType.ALTER_CONTEXT_RESP, outcome.fault_status
        assert MGMT in conn.contexts and conn.protection is not None
        response, stub = conn.call(MGMT, 0, b"")
        assert response.ptype == PType.RESPONSE, response.fault_status
        assert response.unverified is None, response.unverified  # signed (4, 5) or sealed (6): it verifies
        ids, status = _if_ids(stub)
        assert status == 0
        assert ids == {(EPM, 3, 0), (MGMT, 1, 0)}  # what Samba serves on 135


def test_spnego_kerberos_answers_sambas_mech_list_mic(dc, tickets):
    """RFC 4178 5: Samba sends its mechListMIC with accept-incomplete after our AP-REP; our
    next leg carries only our mechListMIC, an RFC 4121 MIC token (initiator's, under the
    acceptor subkey), and Samba then says accept-completed."""
    with _connect(dc, tickets, auth_type=SPNEGO, level=6) as conn:
        legs = _Legs(conn)
        outcome = conn.bind(MGMT, 1)
        assert outcome.ptype == PType.ALTER_CONTEXT_RESP, outcome.fault_status
        assert isinstance(conn._ssp, MicAnsweringSPNEGOSSP)
    assert len(legs.sent) == 3 and len(legs.received) == 3
    ap_rep_leg, mic_leg = _resp(legs.sent[1]), _resp(legs.sent[2])
    assert ap_rep_leg.responseToken is not None and ap_rep_leg.mechListMIC is None
    acceptor = _resp(legs.received[1])
    assert acceptor.negState == ACCEPT_INCOMPLETE and acceptor.mechListMIC is not None
    assert mic_leg.responseToken is None and mic_leg.mechListMIC is not None
    mic = mic_leg.mechListMIC.value
    assert isinstance(mic, KRB_InnerToken) and bytes(mic)[:2] == b"\x04\x04"  # RFC 4121 4.2.6.1
    assert isinstance(mic.root, KRB_GSS_MIC)
    assert "AcceptorSubkey" in str(mic.root.Flags) and "SentByAcceptor" not in str(mic.root.Flags)
    assert _resp(legs.received[2]).negState == ACCEPT_COMPLETED


def test_a_tampered_mech_list_mic_is_refused(dc, tickets):
    """Samba verifies the mechListMIC we answer with: one flipped bit and the alter_context
    carrying it gets fault 0x721, so the binds above succeed because the MIC verifies."""
    with _connect(dc, tickets, auth_type=SPNEGO, level=6, tamper_mech_list_mic=True) as conn:
        legs = _Legs(conn)
        try:
            outcome = conn.bind(MGMT, 1)
        except RpcError as exc:  # without an answering MIC there is nothing to tamper with
            pytest.fail(f"no mechListMIC leg: {exc}")
        assert outcome.ptype == PType.FAULT and outcome.fault_status == RPC_S_SEC_PKG_ERROR
        assert conn.protection is None
    assert len(legs.sent) == 3 and _resp(legs.sent[2]).mechListMIC is not None  # refused for the flipped bit


@pytest.mark.parametrize("ticket_pac, situation", [("absent", "rpc/auth/kerberos-pac-absent"),
                                                   ("changed", "rpc/auth/kerberos-pac-changed")])
@pytest.mark.parametrize("auth_type", [SPNEGO, KERBEROS], ids=["spnego-kerberos", "kerberos"])
def test_samba_refuses_the_pac_cases_tickets_as_the_ledger_says(dc, tickets, auth_type, ticket_pac, situation):
    """The independent referee for the PAC cases: Samba's DC (an AD member of its own domain)
    gets the same tickets the cases present, re-encrypted with its host/ keys, and refuses
    both with an answer the ledger lists (it requires a PAC: auth/gensec/gensec_util.c; Heimdal
    verifies the server signature: lib/krb5/rd_req.c)."""
    from conformance.model.ledger import shipped_ledger

    spn = f"host/{dc.dns_name}"
    kerberos = KerberosInitiator(tickets=tickets, activation_spn=spn, fallback_spn=spn, ticket_pac=ticket_pac,
                                 service_keytab=dc.export_keytab())
    with RpcConnection(dc.host, dc.epm_port, security=Security(auth_type=auth_type, level=6, kerberos=kerberos,
                                                               target_name=spn)) as conn:
        try:
            outcome = conn.bind(MGMT, 1)
            answer = (f"bind_nak {outcome.packet().provider_reject_reason}" if outcome.ptype == PType.BIND_NAK
                      else f"fault 0x{outcome.fault_status:08x}" if outcome.fault_status is not None
                      else "accept" if outcome.ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP)
                      and conn.protection is not None else f"ptype {outcome.ptype}")
        except (RpcError, ConnectionError, OSError):
            answer = "drop"
    windows = {w.removeprefix("activation ") for w in shipped_ledger()[situation].windows}
    assert answer in windows, (answer, sorted(windows))
