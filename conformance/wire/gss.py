"""GSS tokens carried in sec_trailers: dissection and the facts we read from them."""

from __future__ import annotations

import functools
import hmac

from scapy.layers.dcerpc import RPC_C_AUTHN
from scapy.layers.gssapi import GSSAPI_BLOB
from scapy.layers.ntlm import HMAC_MD5, MD4le, NTLM_AUTHENTICATE, NTLM_AUTHENTICATE_V2, NTLM_Header, NTLMSSP

__all__ = ["token_packet", "negotiation_token", "mechanism_token", "ntlm_user", "ntlm_user_of", "anonymous_ntlm_keys",
           "nt_hash", "mic_over_received_bytes", "ReceivedBytesNTLMSSP", "dissected"]

_NTLM_AUTHENTICATE_MARK = b"NTLMSSP\x00\x03\x00\x00\x00"
#: where an AUTHENTICATE's MIC lies when it has one: after the Version ([MS-NLMP] 2.2.1.3)
_MIC_AT, _MIC_END = 72, 88


def nt_hash(password: str) -> bytes:
    """The NT one-way function: MD4 of the UTF-16LE password ([MS-NLMP] 3.3.1)."""
    return MD4le(password)


def anonymous_ntlm_keys(context, flags, *, initiator: bool) -> None:
    """Give an NTLM context the keys of an anonymous logon: [MS-NLMP] 3.3.1 makes its
    SessionBaseKey Z(16).  ``flags`` is the AUTHENTICATE's NegotiateFlags field."""
    from scapy.layers.ntlm import SEALKEY, SIGNKEY, RC4Init

    key = b"\x00" * 16
    me, peer = ("Client", "Server") if initiator else ("Server", "Client")
    context.ExportedSessionKey = context.SessionKey = key
    context.SendSignKey, context.RecvSignKey = SIGNKEY(flags, key, me), SIGNKEY(flags, key, peer)
    context.SendSealKey, context.RecvSealKey = SEALKEY(flags, key, me), SEALKEY(flags, key, peer)
    context.SendSealHandle, context.RecvSealHandle = RC4Init(context.SendSealKey), RC4Init(context.RecvSealKey)


def mic_over_received_bytes(message) -> bool:
    """Have ``message`` (scapy's dissection of an NTLM AUTHENTICATE, as received) check its MIC
    over the bytes received, as [MS-NLMP] 3.2.5.1.2 computes it: HMAC_MD5(ExportedSessionKey,
    NEGOTIATE + CHALLENGE + AUTHENTICATE with the MIC field zeroed).  scapy's ``verify_mic``
    copies the packet, zeroes the field and builds the message again (~1.4 ms); for a message
    scapy builds back to its own bytes the two agree.  Where it does not (a user or domain
    name it reads back otherwise, e.g. 'Ā'), scapy refused a valid MIC, and took one over bytes
    changed where its reading loses them: the bytes received are what the MIC is over.

    Only this packet changes (an attribute of the instance), and only when it is a dissection
    left as received whose MIC field lies at offset 72; otherwise scapy's check stands.
    Returns whether the check was replaced."""
    original = getattr(message, "original", None)
    mic = message.fields.get("MIC") if isinstance(message, NTLM_AUTHENTICATE) else None
    if (not mic or not isinstance(original, bytes) or message.raw_packet_cache is None
            or original[_MIC_AT:_MIC_END] != mic):
        return False
    zeroed = original[:_MIC_AT] + bytes(_MIC_END - _MIC_AT) + original[_MIC_END:]

    def verify_mic(ExportedSessionKey, negotiate, challenge):  # noqa: N803  (scapy's names)
        expected = HMAC_MD5(ExportedSessionKey, bytes(negotiate) + bytes(challenge) + zeroed)
        return hmac.compare_digest(mic, expected)

    message.verify_mic = verify_mic
    return True


class ReceivedBytesNTLMSSP(NTLMSSP):
    """scapy's NTLMSSP whose acceptor — and so its passive reading, which accepts through it —
    checks an AUTHENTICATE's MIC over the bytes received (:func:`mic_over_received_bytes`).
    The reference CA's acceptor and the transcript's passive NTLM are made from it."""

    def GSS_Accept_sec_context(self, Context, input_token=None, **kwargs):
        if input_token is not None:
            mic_over_received_bytes(input_token)
        return super().GSS_Accept_sec_context(Context, input_token, **kwargs)


def dissected(cls, token: bytes):
    """scapy's ``cls(token)``, made once for the same bytes in this process: the party that
    receives a token (the driven client, the reference CA) and the transcript that reads it
    afterwards take the same dissection (~0.5-2 ms a token).  No reader changes what it says:
    the SSPs' acceptors and initiators build their answers as new packets, and what this
    package gives a received packet (``mic_over_received_bytes``,
    ``scapymemo.remember_decryption``) answers as scapy would.  (scapy re-links the ``parent``
    of a packet it puts into a new one — the client's AUTHENTICATE takes the CHALLENGE's AV
    pairs — which no reader of a dissection consults.)  A token scapy cannot dissect raises
    each time."""
    return _dissection(cls, bytes(token))


@functools.lru_cache(maxsize=128)
def _dissection(cls, token: bytes):
    return cls(token)


def token_packet(auth_type: int, token: bytes):
    """Dissect raw token bytes into the packet class scapy's SSP for ``auth_type`` takes
    (the same packet for the same bytes: :func:`dissected`)."""
    if auth_type == RPC_C_AUTHN.WINNT:
        return dissected(NTLM_Header, token)
    if auth_type == RPC_C_AUTHN.GSS_NEGOTIATE:
        return dissected(GSSAPI_BLOB, token)
    from scapy.layers.kerberos import Kerberos

    return dissected(Kerberos, token)


def negotiation_token(blob):
    """The NegTokenInit or NegTokenResp in scapy's GSSAPI_BLOB dissection of a SPNEGO token (a
    NegTokenInit carries the GSS-API header); any other packet as it is."""
    body = getattr(blob, "innerToken", blob)
    return getattr(body, "token", body)


def mechanism_token(body):
    """The mechanism token a NegTokenInit or NegTokenResp carries (bytes or scapy's dissection
    of it), or None."""
    carrier = getattr(body, "mechToken", None) or getattr(body, "responseToken", None)
    return carrier.value if carrier is not None else None


def ntlm_user_of(packet) -> str | None:
    """``ntlm_user`` of a token already dissected by :func:`token_packet` (raw NTLM, or the
    mechanism token of a SPNEGO one): the same reading without dissecting the message again."""
    body = negotiation_token(packet)
    message = mechanism_token(body)
    if message is None:
        message = body
    if not isinstance(message, NTLM_AUTHENTICATE_V2):
        return None
    try:
        user = message.UserName or ""
        domain = message.DomainName or ""
    except Exception:  # an empty payload field: as ntlm_user, no user
        return None
    return f"{domain}\\{user}" if domain else user


def ntlm_user(token: bytes) -> str | None:
    """``DOMAIN\\user`` of an NTLM AUTHENTICATE message inside ``token`` (raw or in SPNEGO)."""
    at = token.find(_NTLM_AUTHENTICATE_MARK)
    if at < 0:
        return None
    try:
        msg = NTLM_AUTHENTICATE_V2(token[at:])
        user = msg.UserName or ""
        domain = msg.DomainName or ""
    except Exception:  # a malformed message: the SSP rejects it anyway
        return None
    return f"{domain}\\{user}" if domain else user
