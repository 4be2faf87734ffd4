"""One connection-oriented DCE/RPC association, server side, sans-IO.

Theory of operation
-------------------
Rule 1: every decision that depends on (association state, PDU type) lives in
``TRANSITIONS``; a pair missing from the table takes ``DEFAULT_ACTION``.  Every other
behaviour a mutant may change is a field of :class:`AssociationPolicy`; a mutant
replaces a field or a table entry, never a method.
Rule 2: this module does not know any interface.  It asks the dispatcher whether
an abstract syntax is served and hands it whole, verified, unsealed calls.
Rule 3: where the ledger (``conformance/model/ledger.toml``) has a situation for what
is refused, the code names the situation and the answer (fault status, bind_nak
reason, whether the connection drops) is the ledger's reference answer
(:mod:`conformance.refca.answers`), never a status written here.  Refusals the
ledger does not cover keep their status in the code.

The caller feeds one framed PDU at a time (``conformance.wire.framing``) and
writes back what :meth:`Association.receive` returns.  :class:`DropConnection`
means "send its ``final`` PDUs, then close".
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import NoReturn

from scapy.layers.dcerpc import RPC_C_AUTHN, RPC_C_AUTHN_LEVEL

from conformance.refca import answers
from conformance.refca.rpc.calls import (
    AssocGroups, Call, CallAuth, ConnectionInfo, Dispatcher, Fault, Reply,
)
from conformance.refca.rpc.refusals import BindRefusal, CallRefused
from conformance.refca.rpc.security import (
    AcceptorFactory, ContextState, GssFailure, SecurityContext, SecurityContexts,
)
from conformance.refca.rpc.syntax import PresentationContext, TransferSyntaxChanged, negotiate_contexts
from conformance.wire.vtrailer import VerificationError, strip_verification_trailer
from conformance.wire import pdu as build
from conformance.wire.framing import CommonHeader
from conformance.wire.protection import Mechanism, SecTrailer, ProtectionError, signature_bit_flipped
from conformance.wire.rpc import (NDR20, SEC_TRAILER_LEN, BindNakReason, BindTimeFeature, FaultStatus, PfcFlag,
                                  ProviderReason, PType)

__all__ = ["AssocState", "Action", "TRANSITIONS", "ResponseAuthType", "SpnegoAuth3",
           "HeaderSignEcho", "CallLevelSource", "VerifierlessRequest", "AssociationPolicy", "Association",
           "DropConnection"]

LogFn = Callable[..., None]


class AssocState(enum.Enum):
    AWAITING_BIND = "awaiting_bind"
    BOUND = "bound"


class Action(enum.Enum):
    BIND = "bind"
    ALTER = "alter"
    AUTH3 = "auth3"
    REQUEST = "request"
    REFUSE_BEFORE_BIND = "refuse_before_bind"  # the ledger's rpc/request/before-bind
    ORPHANED = "orphaned"
    IGNORE = "ignore"
    NAK_AND_DROP = "nak_and_drop"
    FAULT_AND_DROP = "fault_and_drop"
    DROP = "drop"


TRANSITIONS: Mapping[tuple[AssocState, PType], Action] = {
    (AssocState.AWAITING_BIND, PType.BIND): Action.BIND,
    (AssocState.AWAITING_BIND, PType.ALTER_CONTEXT): Action.FAULT_AND_DROP,
    (AssocState.AWAITING_BIND, PType.REQUEST): Action.REFUSE_BEFORE_BIND,
    (AssocState.BOUND, PType.BIND): Action.NAK_AND_DROP,
    (AssocState.BOUND, PType.ALTER_CONTEXT): Action.ALTER,
    (AssocState.BOUND, PType.AUTH3): Action.AUTH3,
    (AssocState.BOUND, PType.REQUEST): Action.REQUEST,
    (AssocState.BOUND, PType.CO_CANCEL): Action.IGNORE,
    (AssocState.BOUND, PType.ORPHANED): Action.ORPHANED,
}
#: Server-bound PDUs of other types (responses, bind_acks, shutdown ...) are a
#: protocol violation with no reply defined: the connection is dropped.
DEFAULT_ACTION = Action.DROP

# Request header (C706 12.6.4.9): alloc_hint u32, p_cont_id u16, opnum u16, object.
_OBJECT_UUID_LEN = 16  # the optional object field, present with PFC_OBJECT_UUID
_REQUEST_HEADER_LEN = 24
_RESPONSE_HEADER_LEN = 24
#: The stub before a sec_trailer is padded to this multiple ([MS-RPCE] 2.2.2.11 auth_pad_length).
_AUTH_PAD_ALIGN = 16
#: MUST_RECV_FRAG_SIZE of C706 12.6.3.1: no smaller fragments can be negotiated.
MIN_FRAG = 1432


class DropConnection(Exception):
    def __init__(self, reason: str, final: list[bytes] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final or []


class ResponseAuthType(enum.Enum):
    """Which auth_type a response's sec_trailer carries."""

    NEGOTIATED = "negotiated"  # the one the client negotiated ([MS-RPCE] 2.2.2.11)
    SWAPPED = "swapped"  # the other carrier: WINNT for GSS_NEGOTIATE, GSS_NEGOTIATE for the rest
    #: the auth_type of the mechanism SPNEGO chose underneath (WINNT for NTLM, GSS_KERBEROS
    #: for Kerberos) instead of GSS_NEGOTIATE; contexts of another auth_type keep theirs
    MECHANISM = "mechanism"


class SpnegoAuth3(enum.Enum):
    """What an rpc_auth3 leg does to a SPNEGO context that is still being established."""

    REFUSE = "refuse"  # SPNEGO's legs travel on alter_context only: the context fails
    ACCEPT = "accept"  # the leg is fed to SPNEGO like NTLM's third leg


class HeaderSignEcho(enum.Enum):
    """When a bind_ack or alter_context_resp echoes PFC_SUPPORT_HEADER_SIGN."""

    WHEN_REQUESTED = "when-requested"  # only when the client offered it ([MS-RPCE] 2.2.2.3)
    ALWAYS = "always"


class VerifierlessRequest(enum.Enum):
    """What a request without sec_trailer gets on an association whose security
    contexts are all above CONNECT."""

    UNAUTHENTICATED = "unauthenticated"  # dispatched with no identity; the interface decides
    PROTOCOL_ERROR = "protocol-error"  # refused by the runtime (nca_s_proto_error) and dropped


class CallLevelSource(enum.Enum):
    """Which security context's level a request is judged and answered at."""

    PROTECTING_CONTEXT = "protecting-context"  # the one its sec_trailer names ([MS-RPCE] 3.3.1.5.2.2)
    FIRST_CONTEXT = "first-context"  # the connection's first established context


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AssociationPolicy:
    """The RPC layer's declared behaviour; defaults follow C706, [MS-RPCE] and Windows.

    A server mutant (conformance.mutation.server) replaces one field; the association
    reads every field where it makes the decision.
    """

    max_frag: int = 5840
    header_signing: bool = True
    #: [MS-RPCE] 2.2.2.14 bits we support: all of them.
    bind_time_features: int = int(BindTimeFeature.SECURITY_CONTEXT_MULTIPLEXING
                                  | BindTimeFeature.KEEP_CONNECTION_ON_ORPHAN)
    accepted_minor_versions: frozenset[int] = frozenset({0, 1})
    max_call_size: int = 4 * 1024 * 1024
    transitions: Mapping[tuple[AssocState, PType], Action] = dataclasses.field(
        default_factory=lambda: dict(TRANSITIONS)
    )
    #: DCOM interfaces "support the NDR transfer syntax only" ([MS-DCOM] 2.2), in order of preference.
    transfer_syntaxes: tuple[tuple[uuid.UUID, int], ...] = (NDR20,)
    #: C706 12.6.2: a call's fragments arrive in sequence, the first one first.
    require_first_fragment: bool = True
    #: Windows ignores PFC_MAYBE and answers the call ([MS-RPCE] 2.2.2.3).
    answer_maybe_calls: bool = True
    #: A request whose signature or seal does not verify is refused ([MS-RPCE] 3.3.1.5.2.2).
    verify_requests: bool = True
    #: A request whose sec_trailer names another auth_level than its security context is
    #: refused ([MS-RPCE] 3.3.1.5.2.2).
    level_must_match: bool = True
    #: At PKT_PRIVACY "the PDU body will be encrypted" ([MS-RPCE] 3.3.1.5.2.2).
    seal_at_privacy: bool = True
    #: Replies carry the auth_type the client negotiated ([MS-RPCE] 2.2.2.11, 3.3.1.5.2).
    response_auth_type: ResponseAuthType = ResponseAuthType.NEGOTIATED
    #: A bind naming an association group that does not exist is refused with bind_nak
    #: (C706 12.6.4.3, [MS-RPCE] 3.3.1.5.6).
    join_unknown_assoc_groups: bool = False
    #: SPNEGO is an even-leg provider: its legs travel on alter_context, never on
    #: rpc_auth3 ([MS-RPCE] 2.2.1.1.7 note <98>).
    spnego_legs_in_auth3: SpnegoAuth3 = SpnegoAuth3.REFUSE
    #: PFC_SUPPORT_HEADER_SIGN is echoed only when the client offered it ([MS-RPCE] 2.2.2.3, 3.3.1.5.2.2).
    header_sign_echo: HeaderSignEcho = HeaderSignEcho.WHEN_REQUESTED
    #: A call is judged at the level of the security context that protects it
    #: ([MS-RPCE] 3.3.1.5.2.2, [MS-WCCE] 2.1).
    call_level_from: CallLevelSource = CallLevelSource.PROTECTING_CONTEXT
    #: A bind or alter_context asking for RPC_C_AUTHN_LEVEL_CALL is refused, as Windows
    #: refuses it (ledger rpc/bind/level-call); [MS-RPCE] 2.2.1.1.8's text would serve it as PKT.
    refuse_call_level: bool = True
    #: A bind's auth level is validated before its security provider: an invalid level
    #: is refused as such whatever the auth_type (ledger rpc/bind/auth-none/*).
    level_before_provider: bool = True
    #: A request without sec_trailer on an association above CONNECT is served
    #: unauthenticated and the interface decides ([MS-RPCE] 3.3.1.5.4; ledger
    #: rpc/request/no-verifier).
    requests_without_verifier: VerifierlessRequest = VerifierlessRequest.UNAUTHENTICATED
    #: An alter_context may not re-present an accepted presentation context with another
    #: known transfer syntax (ledger rpc/alter/change-transfer-syntax).
    refuse_transfer_syntax_change: bool = True
    #: Each protected response carries its security context's next send sequence number
    #: ([MS-NLMP] 3.4.4, RFC 4121 4.2.6; ledger rpc/response/several-calls).
    advance_response_sequence: bool = True
    #: A protected response's verifier is the one the security context computed (False:
    #: one bit of its checksum flipped, so no response verifies).
    sign_responses_correctly: bool = True
    #: An alter_context that continues a security context at another auth level is refused
    #: ([MS-RPCE] 3.3.1.5.2.1; ledger rpc/alter/change-level).  False: the level it names
    #: is ignored and the leg continues the context at the context's level.
    refuse_alter_level_change: bool = True
    #: A request whose sec_trailer names another auth_type than its security context is
    #: refused ([MS-RPCE] 3.3.1.5.2.2; ledger rpc/request/trailer-auth-type-changed).
    request_auth_type_must_match: bool = True
    #: The auth_type of the verifier a bind_ack / alter_context_resp carries: the one the
    #: client negotiated ([MS-RPCE] 2.2.2.11).
    bind_reply_auth_type: ResponseAuthType = ResponseAuthType.NEGOTIATED
    #: A response to a request protected at PKT or PKT_INTEGRITY is signed too ([MS-RPCE]
    #: 3.3.1.5.2.2).  False: only PKT_PRIVACY responses carry a verifier.
    protect_integrity_responses: bool = True
    #: At PKT_PRIVACY every fragment of a response is sealed.  False: only the first one;
    #: the later fragments of a multi-fragment response are signed in the clear.
    seal_every_response_fragment: bool = True
    #: The provider_reason of a presentation context whose interface is served but none of
    #: whose transfer syntaxes is ([MS-DCOM] 2.2: proposed_transfer_syntaxes_not_supported).
    transfer_syntax_refusal_reason: int = ProviderReason.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED
    #: A first fragment (or another call) arriving while a fragmented call is pending is a
    #: protocol error (C706 12.6.2; ledger rpc/fragments/new-call-inside).  False: the
    #: pending call is silently dropped and the new one starts.
    refuse_new_call_inside_fragments: bool = True
    #: pfc_flags the runtime does not act on (PFC_CONC_MPX, the reserved 0x08) are ignored
    #: on requests ([MS-RPCE] 2.2.2.3).  True: such a request is refused, nca_s_proto_error.
    refuse_unacted_request_flags: bool = False
    #: A bind whose sec_trailer names a provider the server lacks is refused ([MS-RPCE]
    #: 3.3.3.5.3; ledger rpc/bind/auth-none/valid-level).  True: the sec_trailer is ignored
    #: and the bind accepted without a security context.
    unknown_provider_unauthenticated: bool = False


@dataclasses.dataclass(slots=True)
class _PendingCall:
    call_id: int
    cont_id: int
    opnum: int
    object_uuid: uuid.UUID | None
    auth: CallAuth
    security: SecurityContext | None
    chunks: list[bytes]
    size: int = 0


class Association:
    """Server side of one association; its behaviour is ``policy`` (do not subclass)."""

    def __init__(self, *, dispatcher: Dispatcher, acceptors: AcceptorFactory,
                 connection: ConnectionInfo, groups: AssocGroups,
                 policy: AssociationPolicy | None = None, log: LogFn | None = None) -> None:
        self.dispatcher = dispatcher
        self.connection = connection
        self.policy = policy or AssociationPolicy()
        self.state = AssocState.AWAITING_BIND
        self.security = SecurityContexts(acceptors)
        self.contexts: dict[int, PresentationContext] = {}
        self.max_xmit_frag = self.policy.max_frag  # server -> client
        self.max_recv_frag = self.policy.max_frag  # client -> server
        self.assoc_group_id = 0
        self._groups = groups
        self._pending: _PendingCall | None = None
        self._log = log or (lambda event, **fields: None)

    def close(self) -> None:
        if self.assoc_group_id:
            self._groups.leave(self.assoc_group_id)
            self.assoc_group_id = 0

    # -- entry point -----------------------------------------------------------------

    def receive(self, pdu: bytes) -> list[bytes]:
        header = CommonHeader.parse(pdu)
        try:
            ptype = PType(header.ptype)
        except ValueError:
            raise DropConnection(f"unknown PDU type {header.ptype}") from None
        if header.frag_len > self.max_recv_frag and self.state is AssocState.BOUND:
            raise DropConnection(
                f"fragment of {header.frag_len} bytes exceeds max_recv_frag {self.max_recv_frag}"
            )
        action = self.policy.transitions.get((self.state, ptype), DEFAULT_ACTION)
        if action is Action.BIND:
            return self._on_bind(pdu, header, alter=False)
        if action is Action.ALTER:
            return self._on_bind(pdu, header, alter=True)
        if action is Action.AUTH3:
            self._on_auth3(pdu, header)
            return []
        if action is Action.REQUEST:
            return self._on_request(pdu, header)
        if action is Action.ORPHANED:
            if self._pending is not None and self._pending.call_id == header.call_id:
                self._pending = None
            return []
        if action is Action.IGNORE:
            return []
        if action is Action.NAK_AND_DROP:
            raise DropConnection(f"{ptype.name} in state {self.state.value}", [
                bytes(build.bind_nak(call_id=header.call_id, reason=BindNakReason.NOT_SPECIFIED,
                                     little_endian=header.little_endian))])
        if action is Action.REFUSE_BEFORE_BIND:
            return self._refuse(header, "rpc/request/before-bind",
                                f"{ptype.name} in state {self.state.value}")
        if action is Action.FAULT_AND_DROP:
            raise DropConnection(f"{ptype.name} in state {self.state.value}", [
                self._fault(header, FaultStatus.NCA_S_PROTO_ERROR)])
        raise DropConnection(f"{ptype.name} not expected from a client in state {self.state.value}")

    def _refuse(self, header: CommonHeader, situation: str, why: str, cont_id: int = 0) -> list[bytes]:
        """Answer a PDU as the ledger answers ``situation``: its fault, bind_nak or
        nothing; raises :class:`DropConnection` unless the ledger keeps the connection."""
        answer = answers.answer(situation)
        self._log("refused", call_id=header.call_id, situation=situation, why=why)
        if answer.kind == "fault":
            final = [self._fault(header, answer.code, cont_id)]
        elif answer.kind == "bind_nak":
            final = [bytes(build.bind_nak(call_id=header.call_id, reason=answer.code,
                                          little_endian=header.little_endian))]
        else:  # "drop"
            final = []
        if answer.drops is False:
            return final
        raise DropConnection(f"{situation}: {why}", final)

    # -- bind / alter_context ------------------------------------------------------------

    def _reject_bind(self, header: CommonHeader, alter: bool, refusal: BindRefusal) -> list[bytes]:
        """A bind is answered with bind_nak; a failed alter_context with a fault, after
        which the association is unusable and dropped (Samba, [MS-RPCE] 3.3.1.5.2.1)."""
        self._log("bind_rejected", call_id=header.call_id, alter=alter, why=refusal.why,
                  situation=refusal.situation)
        if alter:
            final = [self._fault(header, refusal.fault_status)]
        else:
            final = [bytes(build.bind_nak(call_id=header.call_id, reason=refusal.nak_reason,
                                          little_endian=header.little_endian))]
        if not refusal.drop:
            return final
        raise DropConnection(refusal.why, final)

    def _on_bind(self, pdu: bytes, header: CommonHeader, *, alter: bool) -> list[bytes]:
        if not alter and header.rpc_vers_minor not in self.policy.accepted_minor_versions:
            return self._reject_bind(header, alter, BindRefusal(
                BindNakReason.PROTOCOL_VERSION_NOT_SUPPORTED, FaultStatus.NCA_S_PROTO_ERROR,
                f"rpc_vers_minor {header.rpc_vers_minor}"))
        try:
            trailer = SecTrailer.parse(pdu, header)
            body = build.bind_body(pdu, header, trailer, alter=alter)
            proposals = list(body.context_elem)
        except Exception as exc:  # malformed body: scapy raises various errors
            return self._reject_bind(header, alter, BindRefusal(
                BindNakReason.NOT_SPECIFIED, FaultStatus.NCA_S_PROTO_ERROR, f"malformed: {exc}"))
        if not proposals or len(proposals) != body.n_context_elem:
            return self._reject_bind(header, alter, BindRefusal(
                BindNakReason.NOT_SPECIFIED, FaultStatus.NCA_S_PROTO_ERROR, "no presentation context"))
        if not alter:
            if body.max_xmit_frag < MIN_FRAG or body.max_recv_frag < MIN_FRAG:
                return self._reject_bind(header, alter, BindRefusal(
                    BindNakReason.NOT_SPECIFIED, FaultStatus.NCA_S_PROTO_ERROR, "fragment size too small"))
            if body.assoc_group_id and not self._join_group(body.assoc_group_id):
                return self._reject_bind(header, alter, BindRefusal.of(
                    "rpc/bind/unknown-assoc-group",
                    f"unknown association group 0x{body.assoc_group_id:x}"))
            group = body.assoc_group_id or self._groups.new()
        try:
            results, accepted = negotiate_contexts(
                proposals, self.contexts, self.dispatcher.supports_interface,
                bind_time_features=self.policy.bind_time_features,
                transfer_syntaxes=self.policy.transfer_syntaxes,
                refuse_transfer_syntax_change=self.policy.refuse_transfer_syntax_change,
                transfer_syntax_refusal_reason=self.policy.transfer_syntax_refusal_reason)
        except TransferSyntaxChanged as exc:  # only an alter_context re-presents a context
            if not alter:
                self._groups.leave(group)
            return self._reject_bind(header, alter, BindRefusal.of(
                "rpc/alter/change-transfer-syntax", str(exc)))
        except ValueError as exc:
            if not alter:
                self._groups.leave(group)
            return self._reject_bind(header, alter, BindRefusal(
                BindNakReason.NOT_SPECIFIED, FaultStatus.NCA_S_PROTO_ERROR, str(exc)))
        verifier, flags, failure = None, PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG, None
        if trailer is not None:
            verifier, sign_echo, failure = self._bind_auth(pdu, header, trailer, alter)
            if sign_echo:
                flags |= PfcFlag.SUPPORT_HEADER_SIGN
        if failure is not None:
            if not alter:
                self._groups.leave(group)
            return self._reject_bind(header, alter, failure)
        if not alter:
            self.assoc_group_id = group
            self.max_recv_frag = min(body.max_xmit_frag, self.policy.max_frag)
            self.max_xmit_frag = min(body.max_recv_frag, self.policy.max_frag)
            self.state = AssocState.BOUND
        self.contexts.update(accepted)
        self._log("bind", call_id=header.call_id, alter=alter,
                  contexts=[f"{c.cont_id}:{c.interface}" for c in accepted.values()],
                  auth_type=trailer.auth_type if trailer else RPC_C_AUTHN.NONE,
                  auth_level=trailer.auth_level if trailer else RPC_C_AUTHN_LEVEL.NONE)
        return [build.bind_ack_bytes(
            call_id=header.call_id, alter=alter, max_xmit_frag=self.max_xmit_frag,
            max_recv_frag=self.max_recv_frag, assoc_group_id=self.assoc_group_id,
            port_spec=str(self.connection.local_port), results=results, pfc_flags=flags,
            little_endian=header.little_endian, verifier=verifier)]

    def _join_group(self, group_id: int) -> bool:
        if self._groups.join(group_id):
            return True
        return self.policy.join_unknown_assoc_groups

    def _grant_header_sign(self, requested: bool) -> bool:
        """Whether a new security context signs the header ([MS-RPCE] 2.2.2.3)."""
        always = self.policy.header_sign_echo is HeaderSignEcho.ALWAYS
        return self.policy.header_signing and (requested or always)

    def _bind_auth(self, pdu: bytes, header: CommonHeader, trailer: SecTrailer, alter: bool):
        """Run one GSS leg carried by a bind/alter_context.

        Returns (auth verifier for the reply or None, echo header signing, failure),
        failure being a :class:`BindRefusal` or None.
        """
        level = trailer.auth_level
        # Windows validates the level before the provider: an invalid level is bind_nak 0
        # whatever the auth_type, a valid one with a provider the server lacks (auth_type
        # NONE included) bind_nak 8 ([MS-RPCE] 3.3.3.5.3; ledger rpc/bind/auth-none/*).
        checks = [
            (not RPC_C_AUTHN_LEVEL.CONNECT <= level <= RPC_C_AUTHN_LEVEL.PKT_PRIVACY,
             "rpc/bind/auth-none/invalid-level", f"auth_level {level}"),
            (not self.security.supports(trailer.auth_type),
             "rpc/bind/auth-none/valid-level", f"auth_type {trailer.auth_type} not supported"),
        ]
        if not self.policy.level_before_provider:
            checks.reverse()
        if (self.policy.unknown_provider_unauthenticated
                and RPC_C_AUTHN_LEVEL.CONNECT <= level <= RPC_C_AUTHN_LEVEL.PKT_PRIVACY
                and not self.security.supports(trailer.auth_type)):
            self._log("auth_ignored", auth_type=trailer.auth_type, why="provider not supported")
            return None, False, None
        for failed, situation, why in checks:
            if failed:
                return None, False, BindRefusal.of(situation, why)
        token = pdu[trailer.offset + SEC_TRAILER_LEN:header.frag_len]
        ctx = self.security.get(trailer.auth_context_id)
        if ctx is None:
            if level == RPC_C_AUTHN_LEVEL.CALL and self.policy.refuse_call_level:
                # [MS-RPCE] 2.2.1.1.8 would process CALL as PKT; Windows refuses the bind
                # (ledger rpc/bind/level-call).  The client runtime upgrades CALL to PKT.
                return None, False, BindRefusal.of("rpc/bind/level-call", "auth_level CALL")
            if self.security.full():
                return None, False, BindRefusal(BindNakReason.LOCAL_LIMIT_EXCEEDED,
                                                 FaultStatus.ACCESS_DENIED, "too many security contexts")
            ctx = self.security.create(
                context_id=trailer.auth_context_id, auth_type=trailer.auth_type,
                auth_level=trailer.auth_level,
                header_sign=self._grant_header_sign(
                    bool(header.pfc_flags & PfcFlag.SUPPORT_HEADER_SIGN)))
        elif ctx.auth_type != trailer.auth_type:
            return None, False, BindRefusal.of(
                "rpc/alter/change-auth-type",
                f"auth_type {ctx.auth_type} -> {trailer.auth_type} within security context {ctx.context_id}")
        elif ctx.auth_level != level and self.policy.refuse_alter_level_change:
            # not ``level_must_match``: that switch is about requests (RPCE-AUTH-02); a
            # security leg that changes its context's level is refused whatever it says
            return None, False, BindRefusal.of(
                "rpc/alter/change-level",
                f"auth_level {ctx.auth_level} -> {level} within security context {ctx.context_id}")
        elif ctx.state is ContextState.ESTABLISHED:
            if token:
                return None, False, BindRefusal(BindNakReason.NOT_SPECIFIED, FaultStatus.ACCESS_DENIED,
                                                 "new token on an established security context")
            return None, False, None
        if not token:
            self.security.discard(ctx.context_id)
            return None, False, BindRefusal(BindNakReason.NOT_SPECIFIED, FaultStatus.ACCESS_DENIED,
                                             "no auth token")
        try:
            out, complete = ctx.accept(token)
        except GssFailure as exc:
            self.security.discard(ctx.context_id)
            self._log("auth_failed", context_id=ctx.context_id, auth_type=ctx.auth_type,
                      why=str(exc))
            return None, False, BindRefusal(BindNakReason.INVALID_CHECKSUM, FaultStatus.ACCESS_DENIED,
                                             str(exc))
        if complete:
            self._log("authenticated", context_id=ctx.context_id, auth_type=ctx.auth_type,
                      auth_level=ctx.auth_level, user=ctx.user, header_sign=ctx.header_sign)
        verifier = None
        if out:
            verifier = build.Verifier(auth_type=self._bind_reply_auth_type(ctx), auth_level=ctx.auth_level,
                                      context_id=ctx.context_id, token=out)
        return verifier, ctx.header_sign and ctx.legs == 1, None

    def _on_auth3(self, pdu: bytes, header: CommonHeader) -> None:
        """rpc_auth3: the third leg of NTLM.  "The server MUST NOT respond" ([MS-RPCE]
        3.3.1.5.2.1): a failure leaves the context FAILED, and calls on it fault."""
        try:
            trailer = SecTrailer.parse(pdu, header)
        except ProtectionError as exc:
            raise DropConnection(f"malformed auth3: {exc}") from None
        ctx = self.security.get(trailer.auth_context_id) if trailer else None
        if ctx is None or ctx.state is not ContextState.ESTABLISHING:
            self._log("auth3_ignored", call_id=header.call_id)
            return
        if (ctx.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE
                and self.policy.spnego_legs_in_auth3 is SpnegoAuth3.REFUSE):
            # SPNEGO is an even-leg provider: its legs travel on alter_context, never
            # on rpc_auth3 ([MS-RPCE] 2.2.1.1.7 note <98>).  The context is unusable.
            ctx.state = ContextState.FAILED
            ctx.refused_as = "rpc/auth3/spnego-leg"
            self._log("auth_failed", context_id=ctx.context_id, why="SPNEGO leg in rpc_auth3")
            return
        token = pdu[trailer.offset + SEC_TRAILER_LEN:header.frag_len]
        try:
            out, complete = ctx.accept(token)
        except GssFailure as exc:
            self._log("auth_failed", context_id=ctx.context_id, auth_type=ctx.auth_type,
                      why=str(exc))
            return
        if complete:
            self._log("authenticated", context_id=ctx.context_id, auth_type=ctx.auth_type,
                      auth_level=ctx.auth_level, user=ctx.user, header_sign=ctx.header_sign)
        else:
            ctx.state = ContextState.FAILED

    # -- requests -------------------------------------------------------------------------

    def _fault(self, header: CommonHeader, status: int, cont_id: int = 0) -> bytes:
        return bytes(build.fault(call_id=header.call_id, status=status, cont_id=cont_id,
                                 little_endian=header.little_endian))

    def _call_auth(self, trailer: SecTrailer | None) -> tuple[CallAuth, SecurityContext | None]:
        """How a request is authenticated and which context protects it; raises CallRefused."""
        auth, ctx = self._protecting_context(trailer)
        established = self.security.established()
        if (ctx is not None and established
                and self.policy.call_level_from is CallLevelSource.FIRST_CONTEXT):
            first = min(established, key=lambda c: c.context_id)
            auth = dataclasses.replace(auth, auth_level=first.auth_level)
        return auth, ctx

    def _protecting_context(self, trailer: SecTrailer | None) -> tuple[CallAuth, SecurityContext | None]:
        """Which security context protects a request; raises CallRefused."""
        if trailer is None:
            established = self.security.established()
            connect = [c for c in established if c.auth_level == RPC_C_AUTHN_LEVEL.CONNECT]
            if connect:
                # "the server MUST treat request PDUs without authentication information
                # as if they had Connect level authentication" ([MS-RPCE] 3.3.1.5.4)
                ctx = connect[0]
                return self._auth_of(ctx), ctx
            if established:
                if self.policy.requests_without_verifier is VerifierlessRequest.PROTOCOL_ERROR:
                    raise CallRefused(FaultStatus.NCA_S_PROTO_ERROR, "request without sec_trailer",
                                       drop=True)
                # Windows runs it under the connection's default, unauthenticated identity
                # and the interface decides (ledger rpc/request/no-verifier): no runtime
                # refusal, no identity, and nothing protects the answer.
                self._log("unauthenticated_call", why="request without sec_trailer")
                return CallAuth(), None
            failed = [c for c in self.security.all() if c.state is ContextState.FAILED]
            if failed:
                return self._refuse_failed(failed[0])
            return CallAuth(), None
        ctx = self.security.get(trailer.auth_context_id)
        if ctx is None:
            raise CallRefused.of("rpc/request/trailer-unknown-context",
                                  f"no security context {trailer.auth_context_id}")
        if ctx.state is ContextState.FAILED:
            return self._refuse_failed(ctx)
        if ctx.state is not ContextState.ESTABLISHED:
            raise CallRefused(FaultStatus.ACCESS_DENIED,
                               f"security context {ctx.context_id} is not established", drop=True)
        if self.policy.request_auth_type_must_match and trailer.auth_type != ctx.auth_type:
            raise CallRefused.of("rpc/request/trailer-auth-type-changed",
                                  f"sec_trailer auth_type {trailer.auth_type}, context "
                                  f"{ctx.context_id} is {ctx.auth_type}")
        if self.policy.level_must_match and trailer.auth_level != ctx.auth_level:
            raise CallRefused.of("rpc/request/trailer-level-changed",
                                  f"sec_trailer auth_level {trailer.auth_level}, context "
                                  f"{ctx.context_id} is at {ctx.auth_level}")
        auth = self._auth_of(ctx)
        if trailer.auth_level != ctx.auth_level:  # without level_must_match: the trailer's level
            auth = dataclasses.replace(auth, auth_level=trailer.auth_level)
        return auth, ctx

    def _fragment_auth(self, trailer: SecTrailer | None, pending: _PendingCall) -> None:
        """A later fragment is protected as its call's first one; raises CallRefused.

        A call served unauthenticated (its first fragment had no sec_trailer) takes no
        protected fragment, and a protected call no fragment without a verifier (Samba's
        raw-protocol tests: a non-first fragment without sec_trailer is nca_s_proto_error
        and the connection drops); otherwise every fragment meets the same context rules.
        """
        protected = pending.security is not None and pending.auth.auth_level > RPC_C_AUTHN_LEVEL.CONNECT
        if protected and trailer is None:
            raise CallRefused(FaultStatus.NCA_S_PROTO_ERROR,
                               "a fragment without verifier of a protected call", drop=True)
        self._call_auth(trailer)
        if pending.security is None and trailer is not None:
            raise CallRefused(FaultStatus.NCA_S_PROTO_ERROR,
                               "a protected fragment of an unauthenticated call", drop=True)

    @staticmethod
    def _refuse_failed(ctx: SecurityContext) -> NoReturn:
        """A call on a security context that did not authenticate."""
        if ctx.refused_as is not None:
            raise CallRefused.of(ctx.refused_as, f"security context {ctx.context_id} failed")
        # a failed NTLM auth3 leaves the association unauthenticated
        raise CallRefused(FaultStatus.ACCESS_DENIED, "authentication failed", drop=True)

    @staticmethod
    def _auth_of(ctx: SecurityContext) -> CallAuth:
        return CallAuth(auth_type=ctx.auth_type, auth_level=ctx.auth_level,
                        context_id=ctx.context_id, user=ctx.user,
                        mechanism=ctx.mechanism.value)

    def _on_request(self, pdu: bytes, header: CommonHeader) -> list[bytes]:
        has_object = bool(header.pfc_flags & PfcFlag.OBJECT_UUID)
        header_len = _REQUEST_HEADER_LEN + (_OBJECT_UUID_LEN if has_object else 0)
        if header.frag_len < header_len:
            raise DropConnection("request shorter than its header",
                                 [self._fault(header, FaultStatus.NCA_S_PROTO_ERROR)])
        head = build.read_call_head(pdu, header)
        cont_id, opnum, object_uuid = head["cont_id"], head["opnum"], head.get("object_uuid")
        first = bool(header.pfc_flags & PfcFlag.FIRST_FRAG)
        last = bool(header.pfc_flags & PfcFlag.LAST_FRAG)
        pending = self._pending
        if (self.policy.refuse_unacted_request_flags
                and header.pfc_flags & (PfcFlag.CONC_MPX | PfcFlag.RESERVED_1)):
            self._pending = None
            self._log("call_refused", call_id=header.call_id, opnum=opnum,
                      why=f"pfc_flags 0x{header.pfc_flags:02x}")
            return [self._fault(header, FaultStatus.NCA_S_PROTO_ERROR, cont_id)]
        if (pending is not None and first and header.call_id != pending.call_id
                and not self.policy.refuse_new_call_inside_fragments):
            self._log("call_abandoned", call_id=pending.call_id, why=f"new call {header.call_id}")
            self._pending = pending = None
        if pending is not None and (first or header.call_id != pending.call_id):
            self._pending = None
            return self._refuse(header, "rpc/fragments/new-call-inside",
                                f"call {header.call_id} while call {pending.call_id} is pending")
        if pending is None and not first and self.policy.require_first_fragment:
            return self._refuse(header, "rpc/fragments/without-first",
                                "middle fragment without a first fragment")
        try:
            trailer = SecTrailer.parse(pdu, header)
            if pending is None:
                if cont_id not in self.contexts:
                    raise CallRefused.of("rpc/request/unknown-context",
                                          f"presentation context {cont_id} not negotiated")
                auth, sec = self._call_auth(trailer)
                pending = _PendingCall(call_id=header.call_id, cont_id=cont_id, opnum=opnum,
                                       object_uuid=object_uuid, auth=auth, security=sec, chunks=[])
            elif (cont_id, opnum) != (pending.cont_id, pending.opnum):
                raise CallRefused(FaultStatus.NCA_S_PROTO_ERROR, "fragment changes context/opnum")
            else:
                self._fragment_auth(trailer, pending)
            stub = self._unprotect(pdu, header, trailer, pending.security)
        except CallRefused as refusal:
            self._pending = None
            self._log("call_refused", call_id=header.call_id, opnum=opnum, why=refusal.why,
                      status=hex(refusal.status), situation=refusal.situation)
            fault = self._fault(header, refusal.status, cont_id)
            if refusal.drop:
                raise DropConnection(refusal.why, [fault]) from None
            return [fault]
        except ProtectionError as exc:
            self._pending = None
            self._log("integrity_failure", call_id=header.call_id, why=str(exc))
            raise DropConnection(str(exc), [self._fault(header, FaultStatus.RPC_S_SEC_PKG_ERROR,
                                                        cont_id)]) from None
        pending.chunks.append(stub)
        pending.size += len(stub)
        if pending.size > self.policy.max_call_size:
            self._pending = None
            raise DropConnection("call exceeds the size limit",
                                 [self._fault(header, FaultStatus.NCA_S_PROTO_ERROR, cont_id)])
        if not last:
            self._pending = pending
            return []
        self._pending = None
        return self._complete(header, pending)

    def _unprotect(self, pdu: bytes, header: CommonHeader, trailer: SecTrailer | None,
                   sec: SecurityContext | None) -> bytes:
        start = _request_header_len(header)
        if trailer is None:
            return pdu[start:header.frag_len]
        if start <= trailer.offset and trailer.auth_pad_length > trailer.offset - start:
            raise CallRefused.of("rpc/request/pad-overflow",
                                  f"auth_pad_length {trailer.auth_pad_length} exceeds the stub "
                                  f"of {trailer.offset - start} bytes")
        level = trailer.auth_level
        if level == RPC_C_AUTHN_LEVEL.CONNECT:
            body = pdu[start:trailer.offset]
            return body[:len(body) - trailer.auth_pad_length]
        assert sec is not None and sec.protection is not None
        try:
            return sec.protection.unprotect(pdu, header, trailer,
                                            privacy=level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY)
        except ProtectionError as exc:
            if self.policy.verify_requests:
                # a sequence number out of order is a replay (or a lost PDU); anything
                # else a signature or seal that does not verify
                situation = ("rpc/request/replay" if "sequence number" in str(exc)
                             else "rpc/request/bad-signature")
                raise CallRefused.of(situation, str(exc)) from None
            return pdu[start:trailer.offset - trailer.auth_pad_length]

    def _complete(self, header: CommonHeader, pending: _PendingCall) -> list[bytes]:
        context = self.contexts[pending.cont_id]
        stub = b"".join(pending.chunks)
        try:
            stub = strip_verification_trailer(
                stub, context=context, ptype=PType.REQUEST, drep=header.drep,
                call_id=pending.call_id, opnum=pending.opnum)
        except VerificationError as exc:
            self._log("call_refused", call_id=pending.call_id, why=f"verification trailer: {exc}")
            return [self._fault(header, FaultStatus.ACCESS_DENIED, pending.cont_id)]
        call = Call(connection=self.connection, interface=context.interface,
                    if_version=context.if_version, opnum=pending.opnum,
                    object_uuid=pending.object_uuid, stub=stub,
                    little_endian=header.little_endian, auth=pending.auth,
                    call_id=pending.call_id)
        outcome = self.dispatcher.dispatch(call)
        self._log("call", interface=str(context.interface), opnum=pending.opnum,
                  auth_type=pending.auth.auth_type, auth_level=pending.auth.auth_level,
                  user=pending.auth.user,
                  outcome=f"fault 0x{outcome.status:08x}" if isinstance(outcome, Fault)
                  else f"response {len(outcome.stub)} bytes")
        if header.pfc_flags & PfcFlag.MAYBE and not self.policy.answer_maybe_calls:
            return []
        if isinstance(outcome, Fault):
            return [self._fault(header, outcome.status, pending.cont_id)]
        try:
            return self._respond(header, pending, outcome)
        except ProtectionError as exc:  # the context cannot protect the answer at its level
            self._log("integrity_failure", call_id=pending.call_id, why=str(exc))
            raise DropConnection(str(exc), [self._fault(header, FaultStatus.RPC_S_SEC_PKG_ERROR,
                                                        pending.cont_id)]) from None

    def _respond(self, header: CommonHeader, pending: _PendingCall, reply: Reply) -> list[bytes]:
        sec = pending.security
        level = pending.auth.auth_level
        protected = sec is not None and level > RPC_C_AUTHN_LEVEL.CONNECT
        if (protected and not self.policy.protect_integrity_responses
                and level < RPC_C_AUTHN_LEVEL.PKT_PRIVACY):
            protected = False
        overhead = _RESPONSE_HEADER_LEN
        if protected:
            overhead += SEC_TRAILER_LEN + sec.protection.signature_length() + _AUTH_PAD_ALIGN - 1
        chunk = max(_AUTH_PAD_ALIGN, (self.max_xmit_frag - overhead) // _AUTH_PAD_ALIGN * _AUTH_PAD_ALIGN)
        stub = reply.stub
        pieces = [stub[i:i + chunk] for i in range(0, len(stub), chunk)] or [b""]
        out, remaining = [], len(stub)
        for index, piece in enumerate(pieces):
            flags = 0
            if index == 0:
                flags |= PfcFlag.FIRST_FRAG
            if index == len(pieces) - 1:
                flags |= PfcFlag.LAST_FRAG
            out.append(self._response_fragment(header, pending, piece, remaining, flags, sec,
                                               protected, level))
            remaining -= len(piece)
        return out

    def _response_fragment(self, header, pending, piece, alloc_hint, flags, sec, protected,
                           level) -> bytes:
        if not protected:
            return build.response_bytes(call_id=pending.call_id, cont_id=pending.cont_id, stub=piece,
                                        alloc_hint=alloc_hint, pfc_flags=flags, little_endian=header.little_endian)
        pad = (-len(piece)) % _AUTH_PAD_ALIGN
        seals = self._seals(level) and (bool(flags & PfcFlag.FIRST_FRAG)
                                        or self.policy.seal_every_response_fragment)
        verifier = build.Verifier(
            auth_type=self._response_auth_type(sec), auth_level=level, context_id=sec.context_id,
            token=b"\0" * sec.protection.signature_length(privacy=seals), pad_length=pad)
        unsigned = build.response_bytes(call_id=pending.call_id, cont_id=pending.cont_id, stub=piece,
                                        alloc_hint=alloc_hint, pfc_flags=flags, little_endian=header.little_endian,
                                        verifier=verifier)
        out_header = CommonHeader.parse(unsigned)
        out_trailer = SecTrailer.parse(unsigned, out_header)
        signed = sec.protection.protect(unsigned, out_header, out_trailer, privacy=seals,
                                        advance_sequence=self.policy.advance_response_sequence)
        if not self.policy.sign_responses_correctly:
            signed = signature_bit_flipped(signed, sec.protection.mechanism)
        return signed

    def _response_auth_type(self, sec: SecurityContext) -> int:
        if self.policy.response_auth_type is ResponseAuthType.SWAPPED:
            return (RPC_C_AUTHN.WINNT if sec.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE
                    else RPC_C_AUTHN.GSS_NEGOTIATE)
        return sec.auth_type

    def _bind_reply_auth_type(self, ctx: SecurityContext) -> int:
        if (self.policy.bind_reply_auth_type is ResponseAuthType.MECHANISM
                and ctx.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE):
            mechanism = ctx.mechanism
            if mechanism is Mechanism.KERBEROS:
                return RPC_C_AUTHN.GSS_KERBEROS
            return RPC_C_AUTHN.WINNT
        if self.policy.bind_reply_auth_type is ResponseAuthType.SWAPPED:
            return (RPC_C_AUTHN.WINNT if ctx.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE
                    else RPC_C_AUTHN.GSS_NEGOTIATE)
        return ctx.auth_type

    def _seals(self, level: int) -> bool:
        return self.policy.seal_at_privacy and level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY


def _request_header_len(header: CommonHeader) -> int:
    return _REQUEST_HEADER_LEN + (_OBJECT_UUID_LEN if header.pfc_flags & PfcFlag.OBJECT_UUID else 0)
