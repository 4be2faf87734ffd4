"""Presentation-context negotiation for bind and alter_context ([MS-RPCE] 3.3.1.5.6).

"one p_result per p_cont_elem, same order; unknown abstract syntax => result
provider_rejection + reason abstract_syntax_not_supported; known syntax => accept
exactly one transfer syntax; nothing acceptable => bind_ack with all rejected".
DCOM interfaces "support the NDR transfer syntax only" ([MS-DCOM] 2.2), so NDR64
is always declined.

An alter_context may re-present an accepted context id.  Windows answers a protocol
error when the new list names a transfer syntax it knows other than the one accepted
(NDR and NDR64 for a context accepted with NDR), and negotiates it like a new context
(provider_rejection, the accepted one kept) when the list names only syntaxes it does
not know (Samba's raw-protocol tests test_spnego_change_transfer,
test_no_auth_presentation_ctx_invalid4 / _valid2; ledger rpc/alter/change-transfer-syntax).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence

from conformance.wire.pdu import ContextResultSpec, rejected
from conformance.wire.rpc import BTFN_PREFIX, NDR20, NDR64, ContextResult, ProviderReason

__all__ = ["PresentationContext", "TransferSyntaxChanged", "negotiate_contexts"]

_NULL_UUID = uuid.UUID(int=0)
#: Transfer syntaxes an RPC runtime knows, whether or not an interface takes them.
KNOWN_TRANSFER_SYNTAXES = frozenset({NDR20, NDR64})


class TransferSyntaxChanged(ValueError):
    """An accepted presentation context re-presented with another known transfer syntax."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContext:
    cont_id: int
    interface: uuid.UUID
    if_version: int
    transfer_syntax: uuid.UUID
    transfer_version: int


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def negotiate_contexts(
    proposals: Sequence, bound: Mapping[int, PresentationContext],
    supports: Callable[[uuid.UUID, int], bool], *, bind_time_features: int,
    transfer_syntaxes: Sequence[tuple[uuid.UUID, int]] = (NDR20,),
    refuse_transfer_syntax_change: bool = True,
    transfer_syntax_refusal_reason: int = ProviderReason.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED,
) -> tuple[list[ContextResultSpec], dict[int, PresentationContext]]:
    """Results for scapy ``DceRpc5Context`` proposals and the contexts they accept.

    Raises ValueError when a proposal re-uses a context id bound to another
    abstract syntax or is incomplete (a protocol error, not a rejection), and
    :class:`TransferSyntaxChanged` (with ``refuse_transfer_syntax_change``) when it
    re-presents a bound context id with a known transfer syntax other than the
    bound one.
    """
    results: list[ContextResultSpec] = []
    accepted: dict[int, PresentationContext] = {}
    for index, proposal in enumerate(proposals):
        try:
            cont_id = int(proposal.cont_id)
            interface = _uuid(proposal.abstract_syntax.if_uuid)
            if_version = int(proposal.abstract_syntax.if_version)
            syntaxes = [(_uuid(t.if_uuid), int(t.if_version)) for t in proposal.transfer_syntaxes]
        except (AttributeError, TypeError, ValueError):
            # scapy keeps a p_cont_elem_t cut short by the PDU's end as bare bytes
            raise ValueError(f"presentation context #{index} is incomplete") from None
        previous = bound.get(cont_id)
        if previous is not None and (previous.interface, previous.if_version) != (interface, if_version):
            raise ValueError(f"context id {cont_id} already bound to {previous.interface}")
        if previous is not None and refuse_transfer_syntax_change:
            bound_syntax = (previous.transfer_syntax, previous.transfer_version)
            other = [s for s in syntaxes if s in KNOWN_TRANSFER_SYNTAXES and s != bound_syntax]
            if other:
                raise TransferSyntaxChanged(
                    f"context id {cont_id}, accepted with {bound_syntax[0]}, re-presented with "
                    f"{', '.join(str(s[0]) for s in other)}")
        btfn = [s for s in syntaxes if s[0].bytes[:8] == BTFN_PREFIX]
        if btfn:
            # [MS-RPCE] 2.2.2.14: the request bitmask is the last 8 bytes of the UUID;
            # the response echoes the bits we support.
            requested = int.from_bytes(btfn[0][0].bytes[8:], "little")
            results.append((ContextResult.NEGOTIATE_ACK, requested & bind_time_features,
                            _NULL_UUID, 0))
            continue
        if not supports(interface, if_version):
            results.append(rejected(ProviderReason.ABSTRACT_SYNTAX_NOT_SUPPORTED))
            continue
        chosen = next((s for s in transfer_syntaxes if s in syntaxes), None)
        if chosen is None:
            results.append(rejected(transfer_syntax_refusal_reason))
            continue
        results.append((ContextResult.ACCEPTANCE, 0, chosen[0], chosen[1]))
        accepted[cont_id] = PresentationContext(
            cont_id=cont_id, interface=interface, if_version=if_version,
            transfer_syntax=chosen[0], transfer_version=chosen[1])
    return results, accepted
