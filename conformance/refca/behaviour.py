"""The reference CA's declared behaviour: one frozen value per component, grouped.

Every behaviour a server mutant may change is a named field of one of these values,
whose default is the reference (Windows-like) rule.  ``ReferenceCA(config, behaviour)``
hands each component its value at construction, and the component reads the field
where it makes the decision.  A mutant replaces fields (``dataclasses.replace``); it
never subclasses a component or patches a method, so a renamed field fails loudly
instead of turning the mutant into a no-op.
"""

from __future__ import annotations

import dataclasses

from conformance.refca.dcom.exporter import ExporterBehaviour
from conformance.refca.dcom.scm import ScmBehaviour
from conformance.refca.rpc.association import AssociationPolicy
from conformance.refca.rpc.kerberos import KerberosBehaviour
from conformance.refca.rpc.ntlm import NtlmBehaviour
from conformance.refca.service import WcceBehaviour

__all__ = ["CABehaviour", "AssociationPolicy", "ExporterBehaviour", "ScmBehaviour", "WcceBehaviour",
           "NtlmBehaviour", "KerberosBehaviour"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CABehaviour:
    """What every component of the reference CA does where the specifications decide."""

    #: the RPC layer of every connection (both ports)
    association: AssociationPolicy = dataclasses.field(default_factory=AssociationPolicy)
    #: the object exporter's ORPC rules
    exporter: ExporterBehaviour = dataclasses.field(default_factory=ExporterBehaviour)
    #: the activation port's SCM
    scm: ScmBehaviour = dataclasses.field(default_factory=ScmBehaviour)
    #: ICertRequestD / ICertRequestD2
    service: WcceBehaviour = dataclasses.field(default_factory=WcceBehaviour)
    #: the NTLM acceptor, raw and inside SPNEGO
    ntlm: NtlmBehaviour = dataclasses.field(default_factory=NtlmBehaviour)
    #: the Kerberos acceptor, raw and inside SPNEGO
    kerberos: KerberosBehaviour = dataclasses.field(default_factory=KerberosBehaviour)
