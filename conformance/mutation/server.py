"""Named deviations of the reference CA, each breaking exactly one requirement.

A mutant proves that the cases and checks of its requirement can fail: the kill
matrix (``wcce-conformance mutants``) runs the suite against every mutant and
requires each to be caught by its requirement's cases, and nothing else to fail.

A mutant is data: the fields of the CA's declared behaviour
(:class:`conformance.refca.behaviour.CABehaviour`) it changes, by dotted path
(``"association.seal_at_privacy"``).  It never subclasses a component, patches a
method or touches a private attribute; a path that names no field raises, so a
renamed field cannot turn a mutant into a silent no-op.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL

from conformance.refca.behaviour import CABehaviour
from conformance.refca.dcom.exporter import UnknownIpid
from conformance.refca.dcom.scm import ExporterBindings
from conformance.refca.rpc.association import (
    CallLevelSource, HeaderSignEcho, ResponseAuthType, SpnegoAuth3, VerifierlessRequest,
)
from conformance.refca.service import RequestErrorCarrier, UnpublishedTemplate
from conformance.wire.rpc import NDR20, NDR64, FaultStatus

__all__ = ["Mutant", "MUTANTS", "UnknownBehaviourPath", "with_changes"]


class UnknownBehaviourPath(LookupError):
    """A dotted path that names no field of the CA's behaviour."""


def _split(path: str) -> tuple[str, ...]:
    parts = tuple(path.split("."))
    if len(parts) < 2 or not all(parts):
        raise UnknownBehaviourPath(f"{path!r}: expected component.field, e.g. 'association.seal_at_privacy'")
    return parts


def _replace(value, parts: tuple[str, ...], new, path: str):
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise UnknownBehaviourPath(f"{path!r}: {type(value).__name__} has no fields")
    names = {f.name for f in dataclasses.fields(value)}
    head, rest = parts[0], parts[1:]
    if head not in names:
        raise UnknownBehaviourPath(f"{path!r}: {type(value).__name__} has no field {head!r} "
                                   f"(fields: {', '.join(sorted(names))})")
    if rest:
        new = _replace(getattr(value, head), rest, new, path)
    return dataclasses.replace(value, **{head: new})


def with_changes(base: CABehaviour, changes: Mapping[str, object]) -> CABehaviour:
    """``base`` with each ``component.field`` of ``changes`` replaced; an unknown path raises
    :class:`UnknownBehaviourPath`."""
    for path, value in changes.items():
        base = _replace(base, _split(path), value, path)
    return base


@dataclasses.dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    requirement: str
    description: str
    #: dotted path into CABehaviour -> the value the mutant gives that field
    changes: Mapping[str, object]
    #: why no case may fail this mutant (it does what Windows may do, or what the requirement's
    #: text does not forbid); empty: the kill matrix must kill it
    survives: str = ""

    def __post_init__(self) -> None:
        if not self.changes:
            raise ValueError(f"mutant {self.name}: changes nothing")
        object.__setattr__(self, "changes", types.MappingProxyType(dict(self.changes)))
        self.behaviour()  # every path names a field, or the module does not import

    def behaviour(self, base: CABehaviour | None = None) -> CABehaviour:
        """The CA's behaviour as this mutant: ``base`` (the reference) with ``changes`` applied."""
        return with_changes(base if base is not None else CABehaviour(), self.changes)


MUTANTS: dict[str, Mutant] = {m.name: m for m in [
    Mutant("pac-signature-unchecked", "KILE-PAC-01",
           "takes the caller's identity from a ticket's PAC without verifying its server signature",
           {"kerberos.verify_pac_signature": False}),
    Mutant("pac-unkeyed-signature-accepted", "KILE-PAC-01",
           "verifies the PAC's server signature with whatever checksum type it names, CRC32 included",
           {"kerberos.keyed_pac_signature_only": False}),
    Mutant("pac-not-required", "KILE-PAC-02",
           "a domain member that accepts a service ticket without a PAC (the caller named by the ticket)",
           {"kerberos.require_pac": False}),
    Mutant("accept-below-privacy", "WCCE-T-08",
           "claims IF_ENFORCEENCRYPTICERTREQUEST but serves requests at any level",
           {"service.honour_enforce_encrypt": False}),
    Mutant("process-then-refuse", "WCCE-T-24",
           "enters and issues a request below PKT_PRIVACY, then answers with the privacy refusal",
           {"service.refuse_before_processing": False}),
    Mutant("accept-interface-version-1.0", "WCCE-T-02",
           "binds ICertRequestD/D2 and IRemUnknown2 at version 1.0 as well as 0.0",
           {"exporter.interface_versions": frozenset({0, 1})}),
    Mutant("accept-ndr64", "WCCE-T-03", "accepts the NDR64 transfer syntax for DCOM interfaces",
           {"association.transfer_syntaxes": (NDR64, NDR20)}),
    Mutant("plaintext-at-privacy", "RPCE-PROT-01",
           "signs but does not seal responses at PKT_PRIVACY", {"association.seal_at_privacy": False}),
    Mutant("wrong-auth-type", "RPCE-AUTH-01",
           "answers with the other NTLM carrier's auth_type than the one negotiated",
           {"association.response_auth_type": ResponseAuthType.SWAPPED}),
    Mutant("skip-signature-check", "RPCE-AUTH-02",
           "serves requests whose signature or seal does not verify", {"association.verify_requests": False}),
    Mutant("fragments-without-first", "RPCE-FRAG-01",
           "takes a middle or last fragment without its first as a new call",
           {"association.require_first_fragment": False}),
    Mutant("maybe-calls-unanswered", "RPCE-PFC-01", "gives no response to requests with PFC_MAYBE",
           {"association.answer_maybe_calls": False}),
    Mutant("accept-unknown-assoc-group", "RPCE-BIND-01",
           "lets a bind join an association group that does not exist",
           {"association.join_unknown_assoc_groups": True}),
    Mutant("accept-spnego-auth3", "WCCE-T-13", "completes a SPNEGO context from an rpc_auth3 leg",
           {"association.spnego_legs_in_auth3": SpnegoAuth3.ACCEPT}),
    Mutant("header-sign-unrequested", "WCCE-T-14",
           "echoes PFC_SUPPORT_HEADER_SIGN even when the client did not offer it",
           {"association.header_sign_echo": HeaderSignEcho.ALWAYS}),
    Mutant("opnum-out-of-range-bad-stub", "RPCE-OPNUM-01",
           "answers an unknown opnum with RPC_X_BAD_STUB_DATA instead of nca_s_op_rng_error",
           {"exporter.opnum_out_of_range_fault": FaultStatus.RPC_X_BAD_STUB_DATA}),
    Mutant("ignore-orpcthis-flags", "WCCE-T-17", "serves ORPCs whose ORPCTHIS.flags is not zero",
           {"exporter.check_orpcthis_flags": False}),
    Mutant("ignore-com-version", "WCCE-T-18", "serves ORPCs of any COM version",
           {"exporter.check_com_version": False}),
    Mutant("serve-foreign-ipid", "DCOM-IPID-01",
           "serves an ORPC on one client's IPID to a caller with another identity",
           {"exporter.check_owner": False}),
    Mutant("accept-anonymous", "RPCE-AUTH-03",
           "establishes an anonymous NTLM logon (Z(16) session key) as if it were a user",
           {"ntlm.accept_anonymous": True}),
    Mutant("skip-mechlistmic-check", "SPNG-MIC-01", "does not verify SPNEGO's mechListMIC",
           {"ntlm.verify_mech_list_mic": False}),
    Mutant("accept-level-change", "RPCE-AUTH-02",
           "serves a request whose sec_trailer names a lower level than its security context",
           {"association.level_must_match": False}),
    Mutant("privacy-by-first-context", "WCCE-T-08",
           "judges a call's level by the connection's first security context, not the one protecting it",
           {"association.call_level_from": CallLevelSource.FIRST_CONTEXT}),
    Mutant("unknown-ipid-served", "WCCE-T-19",
           "serves an ORPC to an unknown IPID with some object of that interface",
           {"exporter.unknown_ipid": UnknownIpid.ANY_OBJECT}),
    Mutant("request-returns-hresult", "WCCE-T-20",
           "returns Request/Request2 errors as the method's HRESULT instead of the disposition",
           {"service.request_errors": RequestErrorCarrier.HRESULT}),
    Mutant("ignore-ca-name", "WCCE-T-21", "serves calls that name another CA",
           {"service.check_ca_name": False}),
    Mutant("activation-at-connect", "WCCE-T-22", "activates at RPC_C_AUTHN_LEVEL_CONNECT",
           {"scm.activation_min_level_override": RPC_C_AUTHN_LEVEL.CONNECT}),
    Mutant("unknown-class-activates", "WCCE-T-04", "activates any CLSID as the CA's request object",
           {"scm.activate_unknown_classes": True}),
    Mutant("unknown-template-issued", "WCCE-M-01", "issues requests for unpublished templates as User",
           {"service.unpublished_template": UnpublishedTemplate.ISSUE_AS_USER}),
    Mutant("pending-issued-immediately", "WCCE-M-02",
           "issues requests for the approval template without taking them under submission",
           {"service.pend_approval_templates": False}),
    Mutant("bind-at-call-level", "RPCE-BIND-02",
           "binds at RPC_C_AUTHN_LEVEL_CALL (3) and serves it like PKT, as MS-RPCE 2.2.1.1.8's text "
           "says, where Windows answers bind_nak 9",
           {"association.refuse_call_level": False}),
    Mutant("provider-before-level", "RPCE-BIND-03",
           "checks a bind's security provider before its level: auth_type NONE (or another unknown "
           "provider) at an invalid level gets bind_nak 8 instead of 0",
           {"association.level_before_provider": False}),
    Mutant("refuse-request-without-verifier", "RPCE-AUTH-04",
           "answers a request without sec_trailer on an association above CONNECT with "
           "nca_s_proto_error and drops the connection, instead of serving it unauthenticated",
           {"association.requests_without_verifier": VerifierlessRequest.PROTOCOL_ERROR}),
    Mutant("accept-transfer-syntax-change", "RPCE-AUTH-05",
           "lets an alter_context re-present an accepted presentation context with another transfer "
           "syntax list (NDR and NDR64) and negotiates it again",
           {"association.refuse_transfer_syntax_change": False}),
    Mutant("name-only-bindings", "WCCE-T-01",
           "names only the computer (CA01[port], a name that does not resolve) in the exporter's string "
           "bindings of the activation's reply and of ResolveOxid(2), no address",
           {"scm.exporter_bindings": ExporterBindings.NAME_ONLY}),
    Mutant("stuck-response-sequence", "RPCE-PROT-02",
           "does not advance its NTLM/Kerberos send sequence number across the protected responses of a "
           "security context: every response after the first repeats the first one's number",
           {"association.advance_response_sequence": False}),
    Mutant("corrupt-response-signature", "RPCE-PROT-02",
           "flips one bit of the checksum in the verifier of every protected response",
           {"association.sign_responses_correctly": False}),
]}

from conformance.mutation.blind import BLIND_MUTANTS  # noqa: E402  (blind.py does not import this module)
MUTANTS.update({spec.name: Mutant(*spec) for spec in BLIND_MUTANTS})
