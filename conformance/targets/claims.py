"""What the embedded reference CA claims, known without importing it.

The controller of an xdist run prints the target's claims and, at the end, counts the MUST
cases a summary verdict needs; for the embedded CA it used to import the reference CA (and
scapy with it: ~1.6 s of CPU while the workers start, on the same cores) only to read three
defaults.  They are here, with where the CA takes them from; ``tests/unit/targets/test_claims.py``
holds this module to :func:`conformance.targets.embedded._claims` of the CA's own defaults.
"""

from __future__ import annotations

from conformance.model.profile import Claims
from conformance.targets.domain import domain_wanted
from conformance.targets.kdc import kdc_available

__all__ = ["embedded_claims"]

#: refca.config.Policy(): IF_ENFORCEENCRYPTICERTREQUEST is among the default interface flags
#: (Windows Server 2012 and later, [MS-WCCE] 2.1 note <7>)
ENFORCES_PRIVACY = True
#: refca.config.Policy(): activation below PKT_INTEGRITY is refused (KB5004442)
HARDENED_ACTIVATION = True
#: refca.rpc.association.AssociationPolicy(): the bind-time feature SECURITY_CONTEXT_MULTIPLEXING
MULTIPLEXES_SECURITY_CONTEXTS = True


def embedded_claims() -> Claims:
    """What every embedded CA (and each of its mutants: they lie, not their claims) claims.
    Kerberos in the lab's AD domain (Samba, root) or an MIT realm (Debian krb5-kdc,
    krb5-admin-server); the PAC where the domain is."""
    domain = domain_wanted()
    return Claims(enforce_privacy=ENFORCES_PRIVACY, pac=domain, hardened_activation=HARDENED_ACTIVATION,
                  pending_template=True, kerberos=domain or kdc_available(), second_identity=True, dcom=True,
                  sole_requester=True, security_context_multiplexing=MULTIPLEXES_SECURITY_CONTEXTS)
