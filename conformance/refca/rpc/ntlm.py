"""The reference CA's NTLM acceptor: scapy's NTLMSSP, its behaviour declared in one value.

The same acceptor serves raw NTLM (RPC_C_AUTHN_WINNT) and NTLM inside SPNEGO.  Where
a server mutant (conformance.mutation.server) makes it deviate, it does so because a
field of :class:`NtlmBehaviour` says so; with the defaults every call goes to scapy's
NTLMSSP, whose MIC check reads the AUTHENTICATE as received
(:class:`conformance.wire.gss.ReceivedBytesNTLMSSP`, as [MS-NLMP] computes it).
"""

from __future__ import annotations

import dataclasses

from scapy.layers.gssapi import GSS_C_FLAGS, GSS_S_COMPLETE
from scapy.layers.ntlm import AV_PAIR, NTLM_AUTHENTICATE_V2, NTLM_CHALLENGE, NTLMSSP

from conformance.wire.gss import ReceivedBytesNTLMSSP, anonymous_ntlm_keys
from conformance.wire.scapymemo import remember_bytes

__all__ = ["NtlmBehaviour", "NtlmAcceptor", "ChallengeTemplates"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NtlmBehaviour:
    """The NTLM acceptor's declared behaviour; defaults are the reference rules."""

    #: An anonymous AUTHENTICATE (no user, no NT response) establishes no context where
    #: the CA needs an authenticated caller ([MS-NLMP] 3.2.5.1.2, [MS-RPCE] 3.3.1.5.2,
    #: [MS-WCCE] 2.1).
    accept_anonymous: bool = False
    #: A SPNEGO mechListMIC that does not verify fails the negotiation ([MS-SPNG] 3.2.5.1,
    #: RFC 4178 5).
    verify_mech_list_mic: bool = True


class NtlmAcceptor(ReceivedBytesNTLMSSP):
    """scapy's NTLMSSP, deviating only where ``behaviour`` declares it."""

    def __init__(self, *, behaviour: NtlmBehaviour, **kwargs) -> None:
        self.behaviour = behaviour
        super().__init__(**kwargs)

    def GSS_Accept_sec_context(self, Context, input_token=None, **kwargs):
        if self.behaviour.accept_anonymous and self._anonymous_authenticate(Context, input_token):
            # A logon with the anonymous Z(16) session key ([MS-NLMP] 3.3.1) instead of a refusal.
            auth = input_token.getlayer(NTLM_AUTHENTICATE_V2)
            anonymous_ntlm_keys(Context, auth.NegotiateFlags, initiator=False)
            Context.flags |= GSS_C_FLAGS.GSS_C_INTEG_FLAG | GSS_C_FLAGS.GSS_C_CONF_FLAG
            return Context, None, GSS_S_COMPLETE
        Context, token, status = super().GSS_Accept_sec_context(Context, input_token, **kwargs)
        if isinstance(token, NTLM_CHALLENGE) and token is Context.chall_tok:
            # The CHALLENGE is serialized for the wire and again for the AUTHENTICATE's MIC, and
            # scapy builds a packet again each time (~1 ms): the one scapy made is given its
            # bytes once, written from this acceptor's template (see ChallengeTemplates).
            remember_bytes(token, _TEMPLATES.bytes_of(self, token))
        return Context, token, status

    def _anonymous_authenticate(self, context, token) -> bool:
        """Whether ``token`` is an AUTHENTICATE without user name and NT response."""
        auth = token.getlayer(NTLM_AUTHENTICATE_V2) if token is not None else None
        return (context is not None and context.state == self.STATE.SRV_SENT_CHAL and auth is not None
                and not getattr(auth, "UserName", "") and not auth.NtChallengeResponseLen)

    def VerifyMechListMIC(self, Context, otherMIC, input):
        if not self.behaviour.verify_mech_list_mic:
            return None  # SPNEGO's downgrade protection switched off
        return super().VerifyMechListMIC(Context, otherMIC, input)


class ChallengeTemplates:
    """An acceptor's CHALLENGE, built by scapy once per shape and written afterwards.

    scapy's NTLMSSP builds every CHALLENGE from the acceptor's names, variant and
    ``NTLM_VALUES`` and the NEGOTIATE's SIGN and SEAL flags (its NegotiateFlags), with a
    random ServerChallenge and the current time in MsvAvTimestamp.  The first CHALLENGE of
    a shape is built by scapy and kept; the next ones are its bytes with their own
    ServerChallenge (offset 24, [MS-NLMP] 2.2.1.2) and timestamp AV pair (built by scapy)
    put in.  ``tests/unit/refca/test_ntlm_challenge.py`` holds them to scapy's own build.
    """

    _LIMIT = 64  # shapes kept; one acceptor configuration makes at most four

    def __init__(self) -> None:
        self._kept: dict[tuple, tuple[bytes, int | None]] = {}

    @staticmethod
    def shape(acceptor: NTLMSSP, token: NTLM_CHALLENGE) -> tuple:
        return (type(acceptor), acceptor.VARIANT, acceptor.COMPUTER_NB_NAME, acceptor.COMPUTER_FQDN,
                acceptor.DOMAIN_NB_NAME, acceptor.DOMAIN_FQDN, repr(sorted((acceptor.NTLM_VALUES or {}).items())),
                int(token.NegotiateFlags))

    def bytes_of(self, acceptor: NTLMSSP, token: NTLM_CHALLENGE) -> bytes:
        """The bytes scapy builds ``token`` to."""
        shape = self.shape(acceptor, token)
        stamp = _timestamp_pair(token)
        kept = self._kept.get(shape)
        if kept is None:
            data = bytes(token)
            at = data.find(stamp) if stamp is not None else None
            if data[24:32] != bytes(token.ServerChallenge) or (stamp is not None and data.count(stamp) != 1):
                return data  # not the layout this template writes: scapy's bytes, not kept
            if len(self._kept) >= self._LIMIT:
                self._kept.clear()
            self._kept[shape] = (data, at)
            return data
        data, at = kept
        out = bytearray(data)
        out[24:32] = bytes(token.ServerChallenge)
        if at is not None:
            out[at:at + len(stamp)] = stamp
        return bytes(out)


def _timestamp_pair(token: NTLM_CHALLENGE) -> bytes | None:
    """The CHALLENGE's MsvAvTimestamp AV pair as scapy builds it, or None when it has none."""
    pair = next((av for av in token.TargetInfo or () if av.AvId == 7), None)
    return bytes(AV_PAIR(AvId=7, Value=pair.Value)) if pair is not None else None


_TEMPLATES = ChallengeTemplates()
