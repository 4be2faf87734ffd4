"""The embedded CA's claims, known without importing it, are the ones its defaults make."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conformance.refca.config import load_config
from conformance.targets import embedded
from conformance.targets.claims import embedded_claims


@pytest.mark.parametrize("kdc", ["auto", "mit"])
def test_the_claims_are_the_ones_the_ca_defaults_make(kdc, monkeypatch):
    monkeypatch.setenv("WCCE_KDC", kdc)
    domain = embedded.domain_wanted()
    made = embedded._claims(load_config(None).policy, domain or embedded.kdc_available(), pac=domain)
    assert embedded_claims() == made


@pytest.mark.parametrize("default", ["enforce_privacy", "hardened_activation", "security_context_multiplexing"])
def test_a_ca_default_changed_would_be_seen(default, monkeypatch):
    """The comparison above sees each default the claims follow: the CA with one changed
    claims otherwise than this module says."""
    from conformance.refca.config import Policy
    from conformance.wire.wcce import InterfaceFlag

    policy = load_config(None).policy
    if default == "enforce_privacy":
        policy = Policy(interface_flags=InterfaceFlag(0))
    elif default == "hardened_activation":
        policy = Policy(activation_min_level=2)
    else:
        monkeypatch.setattr(embedded, "AssociationPolicy", lambda: type("Policy", (), {"bind_time_features": 0})())
    domain = embedded.domain_wanted()
    made = embedded._claims(policy, domain or embedded.kdc_available(), pac=domain)
    assert getattr(made, default) is not getattr(embedded_claims(), default)


def test_knowing_them_imports_neither_the_ca_nor_scapy():
    code = ("import sys; from conformance.targets.claims import embedded_claims; embedded_claims(); "
            "print(','.join(m for m in ('scapy', 'conformance.refca', 'conformance.wire') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
