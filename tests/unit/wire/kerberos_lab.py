"""A Kerberos lab without a KDC: a service key, a ticket made with it as a KDC would, and the
SPNEGO token scapy's initiator makes to present it (the tests of the AP-REQ's readers)."""

from __future__ import annotations

import datetime
import os

from scapy.asn1.asn1 import ASN1_GENERAL_STRING, ASN1_GENERALIZED_TIME
from scapy.layers.gssapi import GSS_C_FLAGS
from scapy.layers.kerberos import EncryptedData, EncryptionKey, EncTicketPart, KerberosSSP, KRB_Ticket, PrincipalName, \
    TransitedEncoding
from scapy.layers.spnego import SPNEGOSSP
from scapy.libs.rfc3961 import EncryptionType, Key

from conformance.wire.kerberos import ServiceKeys

SPN, UPN = "RPCSS/ca01.lab.test", "alice@LAB.TEST"
FLAGS = GSS_C_FLAGS.GSS_C_MUTUAL_FLAG | GSS_C_FLAGS.GSS_C_DCE_STYLE


def _time(moment: datetime.datetime):
    return ASN1_GENERALIZED_TIME(moment.strftime("%Y%m%d%H%M%SZ"))


def kerberos_lab() -> dict:
    """service (Key), session (Key), token (the SPNEGO NegTokenInit's bytes), keys (ServiceKeys),
    and the initiator with its context, to go on with the acceptor's answer."""
    service = Key(EncryptionType.AES256_CTS_HMAC_SHA1_96, key=os.urandom(32))
    session = Key(EncryptionType.AES256_CTS_HMAC_SHA1_96, key=os.urandom(32))
    now = datetime.datetime.now(datetime.timezone.utc)
    ticket = KRB_Ticket(realm=ASN1_GENERAL_STRING("LAB.TEST"), sname=PrincipalName.fromSPN(SPN),
                        encPart=EncryptedData())
    ticket.encPart.encrypt(service, EncTicketPart(
        key=EncryptionKey.fromKey(session), crealm=ASN1_GENERAL_STRING("LAB.TEST"),
        cname=PrincipalName.fromUPN(UPN), transited=TransitedEncoding(), authtime=_time(now),
        endtime=_time(now + datetime.timedelta(hours=1))))
    initiator = SPNEGOSSP([KerberosSSP(ST=KRB_Ticket(bytes(ticket)), KEY=session, UPN=UPN, SPN=SPN)])
    context, token, _ = initiator.GSS_Init_sec_context(None, req_flags=FLAGS)
    keys = ServiceKeys(keys={(SPN.lower(), int(service.etype)): service}, realm="LAB.TEST")
    return dict(service=service, session=session, token=bytes(token), keys=keys, initiator=initiator,
                context=context)
