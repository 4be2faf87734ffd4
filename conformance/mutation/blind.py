"""Blind server mutants: bugs a real CA could have, each chosen from one requirement's text
and the specifications alone, without reading how the suite checks that requirement.

They test the suite blind: a blind mutant the kill matrix does not catch is a gap in the
cases or checks of its requirement (or a disagreement about what the requirement says).
``conformance.mutation.server`` merges :data:`BLIND_MUTANTS` into its ``MUTANTS``, building
a :class:`~conformance.mutation.server.Mutant` of each (whose construction checks every path):
this module does not import ``server``, so that the two do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from conformance.refca.rpc.association import ResponseAuthType
from conformance.refca.service import UnpublishedTemplate
from conformance.wire.hresult import HResult
from conformance.wire.rpc import ProviderReason

__all__ = ["BlindMutant", "BLIND_MUTANTS"]


class BlindMutant(NamedTuple):
    """The arguments of a ``conformance.mutation.server.Mutant``, in its order."""

    name: str
    requirement: str
    description: str
    #: dotted path into CABehaviour -> the value the mutant gives that field
    changes: Mapping[str, object]
    #: why no case may fail it (added after the kill matrix ran, by the suite's authors)
    survives: str = ""


BLIND_MUTANTS: list[BlindMutant] = [
    BlindMutant("blind-alter-level-change", "RPCE-AUTH-05",
                "does not compare the auth_level of an alter_context that continues a security context "
                "with the context's level, so the alter_context is accepted instead of refused",
                {"association.refuse_alter_level_change": False}),
    BlindMutant("blind-request-auth-type-unchecked", "RPCE-AUTH-02",
                "looks a request's security context up by auth_context_id only and never compares the "
                "sec_trailer's auth_type with the context's, serving requests that name another provider",
                {"association.request_auth_type_must_match": False}),
    BlindMutant("blind-bind-reply-mechanism-auth-type", "RPCE-AUTH-01",
                "puts the auth_type of the mechanism SPNEGO selected (WINNT/KERBEROS) instead of "
                "GSS_NEGOTIATE in the sec_trailer of bind_ack and alter_context_resp",
                {"association.bind_reply_auth_type": ResponseAuthType.MECHANISM}),
    BlindMutant("blind-integrity-responses-unsigned", "RPCE-PROT-02",
                "only protects responses at PKT_PRIVACY: responses to PKT_INTEGRITY (and PKT) requests go "
                "out without a verifier",
                {"association.protect_integrity_responses": False}),
    BlindMutant("blind-later-fragments-unsealed", "RPCE-PROT-01",
                "seals only the first fragment of a multi-fragment response at PKT_PRIVACY; the later "
                "fragments are signed but carry the stub in the clear",
                {"association.seal_every_response_fragment": False}),
    BlindMutant("blind-ndr64-wrong-reason", "WCCE-T-03",
                "rejects a presentation context that proposes only NDR64 with abstract_syntax_not_supported "
                "instead of proposed_transfer_syntaxes_not_supported",
                {"association.transfer_syntax_refusal_reason": ProviderReason.ABSTRACT_SYNTAX_NOT_SUPPORTED}),
    BlindMutant("blind-new-call-restarts-fragments", "RPCE-FRAG-01",
                "silently abandons a pending fragmented call when the first fragment of a new call arrives, "
                "instead of answering nca_s_proto_error and closing the connection",
                {"association.refuse_new_call_inside_fragments": False}),
    BlindMutant("blind-strict-pfc-flags", "RPCE-PFC-01",
                "validates request pfc_flags strictly and faults (nca_s_proto_error) a request carrying "
                "PFC_CONC_MPX or the reserved 0x08 bit instead of ignoring them",
                {"association.refuse_unacted_request_flags": True}),
    BlindMutant("blind-unknown-provider-unauthenticated", "RPCE-BIND-03",
                "ignores a bind's sec_trailer whose auth_type it has no provider for and binds the "
                "association unauthenticated instead of answering bind_nak 8",
                {"association.unknown_provider_unauthenticated": True}),
    BlindMutant("blind-minor-version-ignored", "WCCE-T-02",
                "compares only the major interface version on bind, so the DCOM interfaces also bind at "
                "0.1, 0.2 ...",
                {"exporter.check_minor_version": False}),
    BlindMutant("blind-com-minor-version-unchecked", "WCCE-T-18",
                "checks only ORPCTHIS.version's major version, serving ORPCs of a COM minor version above "
                "the server's",
                {"exporter.check_com_minor_version": False}),
    BlindMutant("blind-unknown-ipid-invalid-object", "WCCE-T-19",
                "faults an ORPC to an unknown IPID with RPC_E_INVALID_OBJECT instead of RPC_E_DISCONNECTED",
                {"exporter.unknown_ipid_fault": HResult.RPC_E_INVALID_OBJECT}),
    BlindMutant("blind-remunknown-skips-access-check", "DCOM-IPID-01",
                "applies the object's access check to ORPCs but not to the IPIDs named in IRemUnknown(2) "
                "calls, so another identity can RemQueryInterface/RemAddRef/RemRelease a client's object",
                {"exporter.check_owner_on_remunknown": False},
                survives="outside DCOM-IPID-01's text: the intruder's RemQueryInterface/RemAddRef/RemRelease is "
                         "an ORPC on its own IRemUnknown IPID, the foreign IPID only an argument; MS-DCOM states "
                         "no rule and what Windows does is unknown (ledger dcom/orpc/foreign-ipid), so no case "
                         "may fail a CA for it"),
    BlindMutant("blind-serveralive2-needs-auth", "WCCE-T-22",
                "applies the resolver's authentication check to ServerAlive2 too, refusing it (access "
                "denied) to an unauthenticated caller",
                {"scm.server_alive_needs_auth": True}),
    BlindMutant("blind-enforce-encrypt-d1-only", "WCCE-T-08",
                "applies IF_ENFORCEENCRYPTICERTREQUEST only to calls bound to ICertRequestD, serving "
                "ICertRequestD2 calls (Request2, GetCAProperty, Ping2 ...) below PKT_PRIVACY",
                {"service.enforce_encrypt_on_icertrequestd2": False}),
    BlindMutant("blind-ca-name-case-sensitive", "WCCE-T-21",
                "compares pwszAuthority with the CA's CN and sanitized CN case-sensitively",
                {"service.ca_name_ignores_case": False}),
    BlindMutant("blind-refusal-logged-in-database", "WCCE-T-24",
                "enters a request it refuses below PKT_PRIVACY in the request database as a failed request "
                "(it takes a request ID) before answering the refusal",
                {"service.record_refused_requests": True}),
    BlindMutant("blind-pending-not-inspectable", "WCCE-M-02",
                "looks request IDs up among resolved requests only, so status inspection of a request "
                "under submission answers CERTSRV_E_PROPERTY_EMPTY instead of disposition 5",
                {"service.inspect_pending_requests": False}),
    BlindMutant("blind-unpublished-template-denied", "WCCE-M-01",
                "answers a request for a template the CA does not publish with CERTSRV_E_TEMPLATE_DENIED "
                "instead of CERTSRV_E_UNSUPPORTED_CERT_TYPE",
                {"service.unpublished_template": UnpublishedTemplate.REFUSE_AS_DENIED}),
    BlindMutant("blind-pac-server-signature-optional", "KILE-PAC-01",
                "verifies the PAC's server signature only if the PAC has a PAC_SERVER_CHECKSUM buffer, so a "
                "PAC changed after signing and stripped of that buffer establishes a context",
                {"kerberos.require_pac_server_signature": False}),
    BlindMutant("blind-pac-signature-only-on-name-mismatch", "KILE-PAC-01",
                "verifies the PAC's server signature only when LOGON_INFO's EffectiveName differs from the "
                "ticket's cname, so a PAC whose RID, groups or SIDs were changed after signing is accepted",
                {"kerberos.verify_pac_when_names_agree": False}),
    BlindMutant("blind-no-authorization-data-no-pac-check", "KILE-PAC-02",
                "looks for the PAC only inside the ticket's authorization data: a ticket with no "
                "authorization-data at all is taken as a non-AD ticket and its cname becomes the caller",
                {"kerberos.require_pac_without_authorization_data": False}),
    BlindMutant("blind-pac-without-logon-info-uses-cname", "KILE-PAC-02",
                "handles a PAC without a readable LOGON_INFO like MIT's minimal PAC even in a domain: once its "
                "signature verifies, the caller is the ticket's cname instead of the ticket being refused",
                {"kerberos.refuse_pac_without_logon_info": False}),
]
