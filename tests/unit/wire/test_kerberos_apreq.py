"""An AP-REQ is opened once: ``open_ap_req`` decrypts its ticket and authenticator as scapy
does, and the packet answers scapy's acceptor (the reference CA's, the transcript's passive
one) with them; ``find_ap_req`` finds the AP-REQ scapy's SPNEGO hands its Kerberos acceptor."""

from __future__ import annotations

import pytest
from scapy.layers.gssapi import GSS_S_CONTINUE_NEEDED, GSSAPI_BLOB
from scapy.layers.kerberos import KRB_AP_REQ, EncryptedData, EncTicketPart, Kerberos, KRB_Authenticator
from scapy.layers.spnego import SPNEGOSSP
from scapy.libs.rfc3961 import Key

from conformance.model.verdicts import Direction
from conformance.refca.rpc.kerberos import KeytabKerberosSSP
from conformance.wire import kerberos as wire_kerberos
from conformance.wire.gss import mechanism_token, negotiation_token, token_packet
from conformance.wire.kerberos import find_ap_req, open_ap_req
from conformance.wire.passive import PassiveContext
from conformance.wire.scapymemo import remember_decryption
from tests.unit.wire.kerberos_lab import FLAGS, SPN, UPN, kerberos_lab


@pytest.fixture
def lab():
    return kerberos_lab()


@pytest.fixture
def decryptions(monkeypatch):
    """Key usages of every Kerberos decryption made (RFC 4120 7.5.1: 2 a ticket, 11 an
    authenticator)."""
    made: list[int] = []
    scapy_decrypt = Key.decrypt

    def counted(key, usage, *args, **kwargs):
        made.append(usage)
        return scapy_decrypt(key, usage, *args, **kwargs)

    monkeypatch.setattr(Key, "decrypt", counted)
    wire_kerberos._ticket_part.cache_clear()  # what an earlier test decrypted is not counted out
    wire_kerberos._authenticator_part.cache_clear()
    return made


def test_an_opened_ap_req_answers_scapys_decryptions_with_the_same_dissections(lab, decryptions):
    ap_req = find_ap_req(lab["token"], GSSAPI_BLOB(lab["token"]))
    enc, authenticator = open_ap_req(ap_req, lab["service"])
    assert decryptions == [2, 11]
    assert ap_req.ticket.encPart.decrypt(lab["service"]) is enc
    assert ap_req.authenticator.decrypt(Key(lab["session"].etype, key=lab["session"].key)) is authenticator
    assert decryptions == [2, 11]  # nothing decrypted again
    fresh = find_ap_req(lab["token"], GSSAPI_BLOB(lab["token"]))  # scapy's own, from the bytes
    assert bytes(fresh.ticket.encPart.decrypt(lab["service"])) == bytes(enc)
    assert bytes(fresh.authenticator.decrypt(lab["session"])) == bytes(authenticator)
    assert isinstance(enc, EncTicketPart) and isinstance(authenticator, KRB_Authenticator)


def test_any_other_call_decrypts_as_scapy_does(lab, decryptions):
    ap_req = find_ap_req(lab["token"], GSSAPI_BLOB(lab["token"]))
    enc, _ = open_ap_req(ap_req, lab["service"])
    with pytest.raises(Exception):  # another key: scapy's decryption, which fails
        ap_req.ticket.encPart.decrypt(lab["session"])
    again = ap_req.ticket.encPart.decrypt(lab["service"], 2, EncTicketPart)  # usage and class named
    assert again is not enc and bytes(again) == bytes(enc)
    assert ap_req.copy().ticket.encPart.decrypt(lab["service"]) is not enc  # a copy remembers nothing


def test_a_decryption_is_remembered_only_where_scapy_takes_the_same_usage(lab):
    ap_req = find_ap_req(lab["token"], GSSAPI_BLOB(lab["token"]))
    enc = ap_req.ticket.encPart.decrypt(lab["service"])
    loose = EncryptedData(bytes(ap_req.ticket.encPart))  # no ticket around it: scapy knows no usage
    remember_decryption(loose, lab["service"], enc, made_as=(2, EncTicketPart))
    assert "decrypt" not in vars(loose)
    authenticator = ap_req.authenticator
    remember_decryption(authenticator, lab["session"], enc, made_as=(2, EncTicketPart))  # scapy takes 11 here
    assert "decrypt" not in vars(authenticator)


def test_the_ap_req_found_in_a_spnego_token_is_the_one_scapys_spnego_hands_its_acceptor(lab):
    blob = GSSAPI_BLOB(lab["token"])
    inner = mechanism_token(negotiation_token(blob))
    assert find_ap_req(lab["token"], blob) is inner.getlayer(KRB_AP_REQ)
    raw = bytes(inner)  # a raw Kerberos token (auth_type 16)
    dissected = Kerberos(raw)
    assert find_ap_req(raw, dissected) is dissected.getlayer(KRB_AP_REQ)
    assert find_ap_req(lab["token"]) is not None  # bytes alone: searched


def test_the_acceptor_and_the_passive_reading_each_decrypt_the_ap_req_once(lab, decryptions):
    acceptor = SPNEGOSSP([KeytabKerberosSSP(lab["keys"])])
    shared = token_packet(9, lab["token"])  # the dissection the CA and the transcript share
    _, reply, status = acceptor.GSS_Accept_sec_context(None, shared, req_flags=FLAGS)
    assert status == GSS_S_CONTINUE_NEEDED and reply is not None
    assert acceptor.ssps[0].client_principal == UPN
    # the ticket and authenticator once each (scapy's acceptor decrypted both again before);
    # the AP-REP the CA writes its sequence number into is usage 12
    assert sorted(u for u in decryptions if u in (2, 11)) == [2, 11]
    decryptions.clear()
    passive = PassiveContext(auth_type=9, identities={}, service_keys=lab["keys"])
    passive.feed(lab["token"], Direction.TO_SERVER)
    facts = passive.facts.kerberos
    assert facts.opened and facts.cname == UPN and facts.sname == SPN
    # the packet is the one the acceptor opened: the facts and scapy's passive context take the
    # decryptions it remembers (and the process's, by ciphertext and key), nothing decrypted again
    assert [u for u in decryptions if u in (2, 11)] == []
    ap_req = find_ap_req(lab["token"], shared)
    assert "decrypt" in vars(ap_req.ticket.encPart) and "decrypt" in vars(ap_req.authenticator)
