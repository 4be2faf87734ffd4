"""Named deviations of the reference CA, each breaking exactly one requirement.

A mutant proves that the cases and checks of its requirement can fail: the kill
matrix (``wcce-conformance mutants``) runs the suite against every mutant and
requires each to be caught by its requirement's cases, and nothing else to fail.
Each one changes a single switch, table entry or method of a component.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from conformance.refca.ca import ReferenceCA
from conformance.refca.templates import IssuePolicy
from conformance.wire.rpc import NDR20, NDR64, FaultStatus
from conformance.wire.wcce import InterfaceFlag

__all__ = ["Mutant", "MUTANTS", "apply_mutant"]


@dataclasses.dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    requirement: str
    description: str
    apply: Callable[[ReferenceCA], None]


def _association(**overrides) -> Callable[[ReferenceCA], None]:
    def apply(ca: ReferenceCA) -> None:
        ca.association_class = type(f"Mutant{ca.association_class.__name__}",
                                    (ca.association_class,), overrides)
    return apply


def _exporter(**switches) -> Callable[[ReferenceCA], None]:
    def apply(ca: ReferenceCA) -> None:
        for key, value in switches.items():
            setattr(ca.exporter, key, value)
    return apply


def _accept_below_privacy(ca: ReferenceCA) -> None:
    # The CA still claims IF_ENFORCEENCRYPTICERTREQUEST; its service forgets it.
    policy = ca.config.policy
    relaxed = dataclasses.replace(
        policy, interface_flags=policy.interface_flags & ~InterfaceFlag.ENFORCEENCRYPTICERTREQUEST)
    ca.service.config = dataclasses.replace(ca.config, policy=relaxed)


def _ignore_ca_name(ca: ReferenceCA) -> None:
    ca.service._check_name = lambda authority, *, empty_allowed=False: None


def _request_returns_hresult(ca: ReferenceCA) -> None:
    original = ca.service._refusal

    def refusal(refused, make, *, disposition_carrier):
        return original(refused, make, disposition_carrier=False)
    ca.service._refusal = refusal


class _AnyTemplate(dict):
    def get(self, key, default=None):
        return super().get(key) or super().get("user")


def _unknown_template_issued(ca: ReferenceCA) -> None:
    ca.service.templates = _AnyTemplate(ca.service.templates)


def _pending_issued_immediately(ca: ReferenceCA) -> None:
    templates = dict(ca.service.templates)
    templates["userapproval"] = dataclasses.replace(templates["userapproval"], policy=IssuePolicy.ISSUE)
    ca.service.templates = templates


class _Everything(frozenset):
    def __contains__(self, item) -> bool:
        return True


def _unknown_class_activates(ca: ReferenceCA) -> None:
    ca.scm.classes = _Everything()


def _activation_at_connect(ca: ReferenceCA) -> None:
    ca.scm._activation_min_level = 2


def _opnum_range_bad_stub(ca: ReferenceCA) -> None:
    dispatch = ca.exporter.dispatch

    def mutated(call):
        outcome = dispatch(call)
        if getattr(outcome, "status", None) == FaultStatus.NCA_S_OP_RNG_ERROR:
            return type(outcome)(FaultStatus.RPC_X_BAD_STUB_DATA)
        return outcome
    ca.exporter.dispatch = mutated


def _auth3_any_provider(self, pdu, header):
    """rpc_auth3 handling without the even-leg rule for SPNEGO."""
    from conformance.refca.rpc.association import Association
    from conformance.refca.rpc.security import ContextState
    from conformance.wire.protection import SecTrailer

    trailer = SecTrailer.parse(pdu, header)
    ctx = self.security.get(trailer.auth_context_id) if trailer else None
    if ctx is not None and ctx.state is ContextState.ESTABLISHING and ctx.auth_type == 0x09:
        ctx.auth_type = 0x0A  # let the reference path treat it like NTLM's third leg
        try:
            return Association._on_auth3(self, pdu, header)
        finally:
            ctx.auth_type = 0x09
    return Association._on_auth3(self, pdu, header)


def _ntlm_acceptor(cls) -> Callable[[ReferenceCA], None]:
    """The CA's NTLM acceptor (raw and inside SPNEGO) replaced by a subclass."""
    def apply(ca: ReferenceCA) -> None:
        config = ca.config
        ca._ntlm = lambda: cls(IDENTITIES=dict(config.users), DOMAIN_NB_NAME=config.domain,
                               DOMAIN_FQDN=config.dns_domain, COMPUTER_NB_NAME=config.computer)
    return apply


def _anonymous_ntlm_acceptor():
    from scapy.layers.gssapi import GSS_C_FLAGS, GSS_S_COMPLETE
    from scapy.layers.ntlm import NTLM_AUTHENTICATE_V2, NTLMSSP

    from conformance.wire.gss import anonymous_ntlm_keys

    class AnonymousWelcome(NTLMSSP):
        """Treats an anonymous AUTHENTICATE (no user, no NT response) as a logon with
        the anonymous Z(16) session key ([MS-NLMP] 3.3.1) instead of refusing it."""

        def GSS_Accept_sec_context(self, Context, input_token=None, **kwargs):
            auth = input_token.getlayer(NTLM_AUTHENTICATE_V2) if input_token is not None else None
            if (Context is None or Context.state != self.STATE.SRV_SENT_CHAL or auth is None
                    or getattr(auth, "UserName", "") or auth.NtChallengeResponseLen):
                return super().GSS_Accept_sec_context(Context, input_token, **kwargs)
            anonymous_ntlm_keys(Context, auth.NegotiateFlags, initiator=False)
            Context.flags |= GSS_C_FLAGS.GSS_C_INTEG_FLAG | GSS_C_FLAGS.GSS_C_CONF_FLAG
            return Context, None, GSS_S_COMPLETE
    return AnonymousWelcome


def _mic_blind_ntlm_acceptor():
    from scapy.layers.ntlm import NTLMSSP

    class MicBlind(NTLMSSP):
        def VerifyMechListMIC(self, Context, otherMIC, input):
            return None  # SPNEGO's downgrade protection switched off
    return MicBlind


def _call_auth_of_first_context(self, trailer):
    """The call is judged (and answered) at the level of the connection's first
    security context, whichever context protects it."""
    auth, ctx = super(type(self), self)._call_auth(trailer)  # the mutant class is type(self)
    established = sorted(self.security.established(), key=lambda c: c.context_id)
    if ctx is None or not established:
        return auth, ctx
    return dataclasses.replace(auth, auth_level=established[0].auth_level), ctx


def _swap_auth_type(self, sec) -> int:
    return 0x0A if sec.auth_type == 0x09 else 0x09


MUTANTS: dict[str, Mutant] = {m.name: m for m in [
    Mutant("accept-below-privacy", "WCCE-T-08",
           "claims IF_ENFORCEENCRYPTICERTREQUEST but serves requests at any level",
           _accept_below_privacy),
    Mutant("accept-interface-version-1.0", "WCCE-T-02",
           "binds ICertRequestD/D2 and IRemUnknown2 at version 1.0 as well as 0.0",
           _exporter(INTERFACE_VERSIONS=frozenset({0, 1}))),
    Mutant("accept-ndr64", "WCCE-T-03", "accepts the NDR64 transfer syntax for DCOM interfaces",
           _association(TRANSFER_SYNTAXES=(NDR64, NDR20))),
    Mutant("plaintext-at-privacy", "RPCE-PROT-01",
           "signs but does not seal responses at PKT_PRIVACY", _association(_seals=lambda self, level: False)),
    Mutant("wrong-auth-type", "RPCE-AUTH-01",
           "answers with the other NTLM carrier's auth_type than the one negotiated",
           _association(_response_auth_type=_swap_auth_type)),
    Mutant("skip-signature-check", "RPCE-AUTH-02",
           "serves requests whose signature or seal does not verify", _association(VERIFY_REQUESTS=False)),
    Mutant("fragments-without-first", "RPCE-FRAG-01",
           "takes a middle or last fragment without its first as a new call",
           _association(REQUIRE_FIRST_FRAGMENT=False)),
    Mutant("maybe-calls-unanswered", "RPCE-PFC-01", "gives no response to requests with PFC_MAYBE",
           _association(ANSWER_MAYBE_CALLS=False)),
    Mutant("accept-unknown-assoc-group", "RPCE-BIND-01",
           "lets a bind join an association group that does not exist",
           _association(_join_group=lambda self, group_id: True)),
    Mutant("accept-spnego-auth3", "WCCE-T-13", "completes a SPNEGO context from an rpc_auth3 leg",
           _association(_on_auth3=_auth3_any_provider)),
    Mutant("header-sign-unrequested", "WCCE-T-14",
           "echoes PFC_SUPPORT_HEADER_SIGN even when the client did not offer it",
           _association(_grant_header_sign=lambda self, requested: True)),
    Mutant("opnum-out-of-range-bad-stub", "RPCE-OPNUM-01",
           "answers an unknown opnum with RPC_X_BAD_STUB_DATA instead of nca_s_op_rng_error",
           _opnum_range_bad_stub),
    Mutant("ignore-orpcthis-flags", "WCCE-T-17", "serves ORPCs whose ORPCTHIS.flags is not zero",
           _exporter(CHECK_FLAGS=False)),
    Mutant("ignore-com-version", "WCCE-T-18", "serves ORPCs of any COM version",
           _exporter(CHECK_VERSION=False)),
    Mutant("serve-foreign-ipid", "DCOM-IPID-01",
           "serves an ORPC on one client's IPID to a caller with another identity",
           _exporter(CHECK_OWNER=False)),
    Mutant("accept-anonymous", "RPCE-AUTH-03",
           "establishes an anonymous NTLM logon (Z(16) session key) as if it were a user",
           lambda ca: _ntlm_acceptor(_anonymous_ntlm_acceptor())(ca)),
    Mutant("skip-mechlistmic-check", "SPNG-MIC-01", "does not verify SPNEGO's mechListMIC",
           lambda ca: _ntlm_acceptor(_mic_blind_ntlm_acceptor())(ca)),
    Mutant("accept-level-change", "RPCE-AUTH-02",
           "serves a request whose sec_trailer names a lower level than its security context",
           _association(LEVEL_MUST_MATCH=False)),
    Mutant("privacy-by-first-context", "WCCE-T-08",
           "judges a call's level by the connection's first security context, not the one protecting it",
           _association(_call_auth=_call_auth_of_first_context)),
    Mutant("unknown-ipid-served", "WCCE-T-19",
           "serves an ORPC to an unknown IPID with some object of that interface",
           _exporter(UNKNOWN_IPID_IS_DISCONNECTED=False)),
    Mutant("request-returns-hresult", "WCCE-T-20",
           "returns Request/Request2 errors as the method's HRESULT instead of the disposition",
           _request_returns_hresult),
    Mutant("ignore-ca-name", "WCCE-T-21", "serves calls that name another CA", _ignore_ca_name),
    Mutant("activation-at-connect", "WCCE-T-22", "activates at RPC_C_AUTHN_LEVEL_CONNECT",
           _activation_at_connect),
    Mutant("unknown-class-activates", "WCCE-T-04", "activates any CLSID as the CA's request object",
           _unknown_class_activates),
    Mutant("unknown-template-issued", "WCCE-M-01", "issues requests for unpublished templates as User",
           _unknown_template_issued),
    Mutant("pending-issued-immediately", "WCCE-M-02",
           "issues requests for the approval template without taking them under submission",
           _pending_issued_immediately),
]}


def apply_mutant(ca: ReferenceCA, name: str) -> Mutant:
    try:
        mutant = MUTANTS[name]
    except KeyError:
        from conformance.refca.config import ConfigError

        raise ConfigError(f"unknown mutant {name!r}; known: {', '.join(sorted(MUTANTS))}") from None
    mutant.apply(ca)
    return mutant

