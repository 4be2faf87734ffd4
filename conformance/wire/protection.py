"""Per-PDU signing and sealing of DCE/RPC request/response PDUs ([MS-RPCE] 3.3.1.5.2.2).

Sans-IO: operates on whole PDU byte strings and a GSS context that scapy's SSPs
hold.  Used by the reference CA (acceptor side) and by the driven client
(initiator side), so that both ends compute protection the same, explicit way.

Why not scapy's ``DceRpcSession``: it decides header signing from a process-wide
switch, hands every NTLM header to the SSP as "unsigned" unless header signing
was negotiated (Windows and impacket sign the whole PDU with NTLMv2), trusts the
peer's NTLM sequence number (so a replayed PDU is not noticed), and writes the
SSP's auth_type into responses whatever the peer negotiated.  This module keeps
all of that per security context.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import struct

from scapy.layers.gssapi import SSP
from scapy.layers.ntlm import NTLMSSP, NTLMSSP_MESSAGE_SIGNATURE

from conformance.wire.framing import CommonHeader
from conformance.wire.rpc import COMMON_HEADER_LEN, SEC_TRAILER_LEN, PfcFlag, PType


__all__ = [
    "without_verifier",
    "ProtectionError",
    "Mechanism",
    "SecTrailer",
    "PduLayout",
    "verifier_sequence",
    "ProtectionContext",
    "AUTH_PAD_ALIGNMENT",
    "signature_bit_flipped",
]


@dataclasses.dataclass
class _WrapMessage(SSP.WRAP_MSG):
    """scapy's WRAP_MSG (two flags and bytes, all immutable) whose deep copy is a copy: scapy's
    NTLM wrap deep-copies its messages to sign them, through ``copy``'s generic reduction
    (~0.1 ms a sealed PDU)."""

    def __deepcopy__(self, memo):
        return copy.copy(self)


#: [MS-RPCE] 2.2.2.11: the sec_trailer is 16-byte aligned relative to the body.
AUTH_PAD_ALIGNMENT = 16

_REQUEST_HEADER_LEN = 24
_OBJECT_UUID_LEN = 16
_RESPONSE_HEADER_LEN = 24


class ProtectionError(ValueError):
    """A protected PDU failed verification (bad signature, sequence, or layout)."""


class Mechanism(enum.Enum):
    NTLM = "ntlm"
    KERBEROS = "kerberos"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SecTrailer:
    """[MS-RPCE] 2.2.2.11 sec_trailer, plus where it sits in the PDU."""

    auth_type: int
    auth_level: int
    auth_pad_length: int
    auth_reserved: int
    auth_context_id: int
    offset: int

    @classmethod
    def parse(cls, pdu: bytes, header: CommonHeader) -> "SecTrailer | None":
        """The sec_trailer of ``pdu`` or ``None`` when ``auth_length`` is 0."""
        if header.auth_len == 0:
            return None
        offset = header.frag_len - header.auth_len - SEC_TRAILER_LEN
        if offset < COMMON_HEADER_LEN or header.frag_len > len(pdu):
            raise ProtectionError(
                f"auth_length {header.auth_len} does not fit in frag_length {header.frag_len}"
            )
        order = "<" if header.little_endian else ">"
        auth_type, level, pad, reserved = pdu[offset:offset + 4]
        (context_id,) = struct.unpack_from(order + "I", pdu, offset + 4)
        return cls(
            auth_type=auth_type,
            auth_level=level,
            auth_pad_length=pad,
            auth_reserved=reserved,
            auth_context_id=context_id,
            offset=offset,
        )

    @property
    def body_end(self) -> int:
        """Where the PDU's body ends: before the auth padding (which, when it claims more than
        the PDU holds, is not believed)."""
        return self.offset - self.auth_pad_length if self.auth_pad_length <= self.offset else self.offset

    #: (offset in the sec_trailer, width) of each field ([MS-RPCE] 2.2.2.11)
    FIELDS = {"auth_type": (0, 1), "auth_level": (1, 1), "auth_pad_length": (2, 1), "auth_reserved": (3, 1),
              "auth_context_id": (4, 4)}

    @classmethod
    def patched(cls, pdu: bytes, **fields: int) -> bytes:
        """``pdu`` with named sec_trailer fields overwritten in place (after protection:
        the signature no longer covers what the trailer now says).  A malformed PDU made
        from a valid one by naming what changes, never by hand-typed offsets."""
        header = CommonHeader.parse(pdu)
        trailer = cls.parse(pdu, header)
        if trailer is None:
            raise ProtectionError("the PDU has no sec_trailer to patch")
        out = bytearray(pdu)
        order = "little" if header.little_endian else "big"
        for name, value in fields.items():
            at, width = cls.FIELDS[name]
            out[trailer.offset + at:trailer.offset + at + width] = int(value).to_bytes(width, order)
        return bytes(out)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PduLayout:
    """Where header, body (stub + auth pad), sec_trailer and token sit in a request/response."""

    header_len: int
    body_end: int  # == sec_trailer offset, or frag_len when unauthenticated
    pad_len: int
    token_offset: int

    @classmethod
    def of(cls, pdu: bytes, header: CommonHeader, trailer: SecTrailer | None) -> "PduLayout":
        if header.ptype == PType.REQUEST:
            header_len = _REQUEST_HEADER_LEN
            if header.pfc_flags & PfcFlag.OBJECT_UUID:
                header_len += _OBJECT_UUID_LEN
        elif header.ptype == PType.RESPONSE:
            header_len = _RESPONSE_HEADER_LEN
        else:
            raise ProtectionError(f"PDU type {header.ptype} carries no protected body")
        if trailer is None:
            return cls(header_len=header_len, body_end=header.frag_len, pad_len=0,
                       token_offset=header.frag_len)
        if trailer.offset < header_len:
            raise ProtectionError("sec_trailer overlaps the PDU header")
        if trailer.auth_pad_length > trailer.offset - header_len:
            raise ProtectionError(
                f"auth_pad_length {trailer.auth_pad_length} exceeds the body"
            )
        return cls(
            header_len=header_len,
            body_end=trailer.offset,
            pad_len=trailer.auth_pad_length,
            token_offset=trailer.offset + SEC_TRAILER_LEN,
        )


# RFC 4121 4.2.6.1: a 16-byte MIC header and a 12-byte truncated HMAC (the AES
# enctypes); scapy's MaximumSignatureLength says the same for contexts without CONF.
KERBEROS_MIC_LENGTH = 28


#: [MS-NLMP] 2.2.2.9.1: Version (4 bytes), Checksum (8), SeqNum (4): the checksum's first byte
NTLM_CHECKSUM_OFFSET = 4
#: [MS-NLMP] 2.2.2.9.1: an NTLMSSP_MESSAGE_SIGNATURE is 16 bytes and starts with Version 1
_NTLM_SIGNATURE_LENGTH, _NTLM_VERSION = 16, b"\x01\x00\x00\x00"
#: RFC 4121 4.2.6.1/4.2.6.2: MIC (04 04) and Wrap (05 04) tokens carry SND_SEQ in clear at bytes 8-16
_KRB_CLEAR_SEQUENCE_TOKENS = (b"\x04\x04", b"\x05\x04")


def verifier_sequence(token: bytes) -> int | None:
    """The sequence number a verifier carries in clear: an NTLM signature's SeqNum, an RFC
    4121 token's SND_SEQ; None for tokens that keep it encrypted (RFC 1964/4757) or others."""
    if len(token) == _NTLM_SIGNATURE_LENGTH and token[:4] == _NTLM_VERSION:
        return int(NTLMSSP_MESSAGE_SIGNATURE(token).SeqNum)
    if token[:2] in _KRB_CLEAR_SEQUENCE_TOKENS and len(token) >= 16:
        return int.from_bytes(token[8:16], "big")
    return None


def signature_bit_flipped(pdu: bytes, mechanism: Mechanism) -> bytes:
    """``pdu`` with one bit of its verifier's checksum flipped, everything else as it was:
    NTLM's Checksum field, or the last byte of a Kerberos token (RFC 4121: the MIC's HMAC,
    or the encrypted data that carries a Wrap token's checksum)."""
    header = CommonHeader.parse(pdu)
    if header.auth_len == 0:
        raise ProtectionError("the PDU has no verifier to corrupt")
    token_offset = header.frag_len - header.auth_len
    at = token_offset + (NTLM_CHECKSUM_OFFSET if mechanism is Mechanism.NTLM else header.auth_len - 1)
    return pdu[:at] + bytes([pdu[at] ^ 0x01]) + pdu[at + 1:]


def mechanism_of(ssp: SSP, context) -> Mechanism:
    """The mechanism underneath a (possibly SPNEGO-wrapped) GSS context."""
    inner_ssp = getattr(context, "ssp", None) or ssp
    if isinstance(inner_ssp, NTLMSSP):
        return Mechanism.NTLM
    from scapy.layers.kerberos import KerberosSSP  # heavy; only Kerberos contexts need it

    if isinstance(inner_ssp, KerberosSSP):  # our acceptor and initiator subclass it
        return Mechanism.KERBEROS
    return Mechanism.UNKNOWN


class ProtectionContext:
    """Signs/seals outgoing and verifies/unseals incoming PDUs of one security context.

    ``header_sign`` is what was negotiated with PFC_SUPPORT_HEADER_SIGN.  With NTLM
    the header and sec_trailer are signed regardless: "For NTLMv2, all input data
    buffers are included in the message signature" ([MS-NLMP] 3.4.6).
    """

    def __init__(self, *, ssp: SSP, context, header_sign: bool, recv_seq: int | None = None) -> None:
        self.ssp = ssp
        self.context = context
        self.header_sign = header_sign
        self.mechanism = mechanism_of(ssp, context)
        # [MS-SPNG]: an NTLM mechListMIC is a MAC with sequence number 0, so the first
        # protected PDU of a context that exchanged one is number 1.
        if recv_seq is None:
            recv_seq = 1 if getattr(context, "verified_mic", False) else 0
        self._recv_seq = recv_seq
        self._krb_seq: int | None = None  # the next RFC 4121 SND_SEQ expected from the peer
        self._pending_krb_seq: int | None = None

    @property
    def signs_header(self) -> bool:
        return self.header_sign or self.mechanism is Mechanism.NTLM

    def signature_length(self, *, privacy: bool = True) -> int:
        """The token slot of a PDU.  A Kerberos context that negotiated CONF wraps at
        PKT_PRIVACY (a larger token) but signs a PDU it does not seal with a MIC token."""
        if not privacy and self.mechanism is Mechanism.KERBEROS:
            return KERBEROS_MIC_LENGTH
        return self.ssp.MaximumSignatureLength(self.context)

    def _signature_object(self, token: bytes):
        if self.mechanism is Mechanism.NTLM:
            sig = NTLMSSP_MESSAGE_SIGNATURE(token)
            if sig.SeqNum != self._recv_seq:
                raise ProtectionError(
                    f"NTLM sequence number {sig.SeqNum}, expected {self._recv_seq} (replay or loss)"
                )
            return sig
        from scapy.layers.kerberos import KRB_InnerToken

        self._check_kerberos_sequence(token)
        return KRB_InnerToken(token)

    def _check_kerberos_sequence(self, token: bytes) -> None:
        """RFC 4121 4.2.6: MIC (04 04) and Wrap (05 04) tokens carry SND_SEQ at bytes
        8-16; each must follow the last (a replayed or reordered PDU does not)."""
        seq = verifier_sequence(token)
        if seq is None:
            return  # RFC 1964/4757 tokens keep the sequence number encrypted
        if self._krb_seq is not None and seq != self._krb_seq:
            raise ProtectionError(f"Kerberos sequence number {seq}, expected {self._krb_seq} (replay or loss)")
        self._pending_krb_seq = seq + 1

    # -- incoming ------------------------------------------------------------------

    def unprotect(self, pdu: bytes, header: CommonHeader, trailer: SecTrailer, *,
                  privacy: bool) -> bytes:
        """Verify (and unseal when ``privacy``) one PDU; return its plaintext stub.

        The auth padding is removed; the verification trailer, when present, is
        still part of the returned stub ([MS-RPCE] 2.2.2.13 puts it in the body).
        """
        layout = PduLayout.of(pdu, header, trailer)
        token = pdu[layout.token_offset:header.frag_len]
        if not token:
            raise ProtectionError("protected PDU carries no auth token")
        signature = self._signature_object(token)
        head = pdu[:layout.header_len]
        body = pdu[layout.header_len:layout.body_end]
        sec_trailer = pdu[layout.body_end:layout.token_offset]
        try:
            if privacy:
                msgs = self.ssp.GSS_UnwrapEx(
                    self.context,
                    [
                        _WrapMessage(conf_req_flag=False, sign=self.signs_header, data=head),
                        _WrapMessage(conf_req_flag=True, sign=True, data=body),
                        _WrapMessage(conf_req_flag=False, sign=self.signs_header, data=sec_trailer),
                    ],
                    signature,
                )
                body = msgs[1].data
            else:
                self.ssp.GSS_VerifyMICEx(
                    self.context,
                    [
                        SSP.MIC_MSG(sign=self.signs_header, data=head),
                        SSP.MIC_MSG(sign=True, data=body),
                        SSP.MIC_MSG(sign=self.signs_header, data=sec_trailer),
                    ],
                    signature,
                )
        except ProtectionError:
            raise
        except Exception as exc:  # scapy raises ValueError and friends on MIC failure
            raise ProtectionError(f"signature verification failed: {exc}") from exc
        self._recv_seq += 1
        if self._pending_krb_seq is not None:
            self._krb_seq, self._pending_krb_seq = self._pending_krb_seq, None
        return body[:len(body) - layout.pad_len]

    # -- outgoing ------------------------------------------------------------------

    def protect(self, unsigned_pdu: bytes, header: CommonHeader, trailer: SecTrailer, *,
                privacy: bool, advance_sequence: bool = True) -> bytes:
        """Fill in the token (and seal the body when ``privacy``) of a PDU built with
        a zero token of :meth:`signature_length` bytes and its final header fields.

        ``advance_sequence=False`` leaves the send sequence number where it was, so the
        next PDU carries the same one again (a broken peer, for the reference CA's mutants;
        [MS-NLMP] 3.4.4 and RFC 4121 4.2.6 advance it with every message)."""
        mech = getattr(self.context, "ssp_context", None) or self.context  # inside SPNEGO
        sequence = mech.SendSeqNum
        layout = PduLayout.of(unsigned_pdu, header, trailer)
        head = unsigned_pdu[:layout.header_len]
        body = unsigned_pdu[layout.header_len:layout.body_end]
        sec_trailer = unsigned_pdu[layout.body_end:layout.token_offset]
        if privacy:
            msgs, signature = self.ssp.GSS_WrapEx(
                self.context,
                [
                    _WrapMessage(conf_req_flag=False, sign=self.signs_header, data=head),
                    _WrapMessage(conf_req_flag=True, sign=True, data=body),
                    _WrapMessage(conf_req_flag=False, sign=self.signs_header, data=sec_trailer),
                ],
            )
            body = msgs[1].data
        else:
            signature = self.ssp.GSS_GetMICEx(
                self.context,
                [
                    SSP.MIC_MSG(sign=self.signs_header, data=head),
                    SSP.MIC_MSG(sign=True, data=body),
                    SSP.MIC_MSG(sign=self.signs_header, data=sec_trailer),
                ],
            )
        if not advance_sequence:
            mech.SendSeqNum = sequence
        token = bytes(signature)
        if len(token) != header.frag_len - layout.token_offset:
            raise ProtectionError(
                f"SSP produced a {len(token)}-byte token for a "
                f"{header.frag_len - layout.token_offset}-byte slot"
            )
        return head + body + sec_trailer + token


def without_verifier(raw: bytes, header: CommonHeader, trailer: SecTrailer | None) -> bytes:
    """The PDU as if unauthenticated (no auth padding, sec_trailer or token; auth_len 0):
    scapy then skips dissecting the auth token, which a reader parses once anyway (it is the
    costly part of a bind: ~0.7 ms for NTLM's NEGOTIATE, more for an AP-REQ)."""
    if trailer is None:
        return raw
    order = "<" if header.little_endian else ">"
    body = raw[:trailer.body_end]
    return body[:8] + struct.pack(order + "HH", len(body), 0) + body[12:]
