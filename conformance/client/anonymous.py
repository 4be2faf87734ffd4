"""An NTLM initiator that authenticates anonymously ([MS-NLMP] 3.1.5.1.2).

scapy's NTLMSSP needs a user and a key; a client that means "anonymous" sends an
AUTHENTICATE with an empty user name and NT response, LmChallengeResponse Z(1)
and NTLMSSP_NEGOTIATE_ANONYMOUS.  Used by the client's ``anonymous`` knob.
"""

from __future__ import annotations

from scapy.layers.gssapi import GSS_S_COMPLETE
from scapy.layers.ntlm import NTLM_AUTHENTICATE, NTLMSSP

__all__ = ["AnonymousNTLMSSP"]

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
        Context.state = self.STATE.CLI_SENT_AUTH
        return Context, token, GSS_S_COMPLETE

    def SupportsMechListMIC(self):
        # No session key, so no mechListMIC ([MS-SPNG] 3.1.5.1: only with integrity).
        return False
