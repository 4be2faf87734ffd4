"""The reference CA's NTLM acceptor: scapy's NTLMSSP, its behaviour declared in one value.

The same acceptor serves raw NTLM (RPC_C_AUTHN_WINNT) and NTLM inside SPNEGO.  Where
a server mutant (conformance.mutation.server) makes it deviate, it does so because a
field of :class:`NtlmBehaviour` says so; with the defaults every call goes to scapy's
NTLMSSP unchanged.
"""

from __future__ import annotations

import dataclasses

from scapy.layers.gssapi import GSS_C_FLAGS, GSS_S_COMPLETE
from scapy.layers.ntlm import NTLM_AUTHENTICATE_V2, NTLM_CHALLENGE, NTLM_Header, NTLMSSP

from conformance.wire.gss import anonymous_ntlm_keys

__all__ = ["NtlmBehaviour", "NtlmAcceptor"]


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


class NtlmAcceptor(NTLMSSP):
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
            # The CHALLENGE is serialized for the wire and again for the AUTHENTICATE's MIC
            # (scapy rebuilds a built packet each time it is asked for its bytes, ~2 ms): it
            # is serialized once, and the message sent and kept is its dissection, whose
            # bytes are those.
            token = Context.chall_tok = NTLM_Header(bytes(token))
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
