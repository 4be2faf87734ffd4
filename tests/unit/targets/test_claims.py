"""The embedded CA's claims, known without importing it, are the ones its defaults make."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conformance.refca.config import load_config
from conformance.targets import claims, embedded
from conformance.targets.claims import embedded_claims


@pytest.mark.parametrize("kdc", ["auto", "mit"])
def test_the_claims_are_the_ones_the_ca_defaults_make(kdc, monkeypatch):
    monkeypatch.setenv("WCCE_KDC", kdc)
    domain = embedded.domain_wanted()
    made = embedded._claims(load_config(None).policy, domain or embedded.kdc_available(), pac=domain)
    assert embedded_claims() == made


@pytest.mark.parametrize("constant", ["ENFORCES_PRIVACY", "HARDENED_ACTIVATION", "MULTIPLEXES_SECURITY_CONTEXTS"])
def test_a_default_changed_on_one_side_is_seen(constant, monkeypatch):
    monkeypatch.setattr(claims, constant, not getattr(claims, constant))
    made = embedded._claims(load_config(None).policy, embedded.domain_wanted() or embedded.kdc_available(),
                            pac=embedded.domain_wanted())
    assert embedded_claims() != made


def test_knowing_them_imports_neither_the_ca_nor_scapy():
    code = ("import sys; from conformance.targets.claims import embedded_claims; embedded_claims(); "
            "print(','.join(m for m in ('scapy', 'conformance.refca', 'conformance.wire') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
