"""NTLM initiators for client modes scapy does not have: anonymous, withheld flags.

scapy's NTLMSSP needs a user and a key; a client that means "anonymous" sends an
AUTHENTICATE with an empty user name and NT response, LmChallengeResponse Z(1)
and NTLMSSP_NEGOTIATE_ANONYMOUS.  Used by the client's ``anonymous`` knob.
"""

from __future__ import annotations

from scapy.layers.gssapi import GSS_S_COMPLETE
from scapy.layers.ntlm import NTLM_AUTHENTICATE, NTLMSSP

from conformance.wire.gss import anonymous_ntlm_keys

__all__ = ["AnonymousNTLMSSP", "FlagsNTLMSSP"]

NEGOTIATE_ANONYMOUS = 0x00000800
NEGOTIATE_KEY_EXCH = 0x40000000


class AnonymousNTLMSSP(NTLMSSP):
    def __init__(self, **kwargs) -> None:
        super().__init__(UPN="anonymous", PASSWORD="", **kwargs)

    def GSS_Init_sec_context(self, Context, input_token=None, target_name=None, req_flags=None,
                             **kwargs):
        if Context is None or Context.state != self.STATE.CLI_SENT_NEGO:
            return super().GSS_Init_sec_context(Context, input_token=input_token,
                                                target_name=target_name, req_flags=req_flags,
                                                **kwargs)
        flags = (int(input_token.NegotiateFlags) | NEGOTIATE_ANONYMOUS) & ~NEGOTIATE_KEY_EXCH
        token = NTLM_AUTHENTICATE(NegotiateFlags=flags, LmChallengeResponse=b"\x00",
                                  NtChallengeResponse=b"", DomainName="", UserName="",
                                  Workstation=self.COMPUTER_NB_NAME, EncryptedRandomSessionKey=b"")
        # with the anonymous keys the client can still sign and seal: the server, not a
        # client crash, decides
        anonymous_ntlm_keys(Context, token.NegotiateFlags, initiator=True)
        Context.state = self.STATE.CLI_SENT_AUTH
        return Context, token, GSS_S_COMPLETE

    def SupportsMechListMIC(self):
        # No session key, so no mechListMIC ([MS-SPNG] 3.1.5.1: only with integrity).
        return False


class FlagsNTLMSSP(NTLMSSP):
    """scapy's NTLM initiator, withholding chosen NEGOTIATE flags (client mutants)."""

    def __init__(self, *, clear_flags: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clear_flags = clear_flags

    def GSS_Init_sec_context(self, Context, input_token=None, target_name=None, req_flags=None,
                             **kwargs):
        first = Context is None or Context.state == self.STATE.INIT
        Context, token, status = super().GSS_Init_sec_context(
            Context, input_token=input_token, target_name=target_name, req_flags=req_flags, **kwargs)
        if first and self.clear_flags and token is not None:
            token.NegotiateFlags = int(token.NegotiateFlags) & ~self.clear_flags
            Context.neg_tok = token  # the MIC covers the NEGOTIATE as sent
        return Context, token, status
