"""Client settings for a target: the one place a case's client table meets a target profile.

The case table says how the client behaves (provider, level, impersonation …); the
target says where it is and whose account to use; ``credentials`` names a deliberate
fault in that account for the security negatives, so no table ever holds a secret.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from conformance.client.settings import ClientSettings
from conformance.model.cases import CREDENTIALS
from conformance.model.profile import Account, KerberosTarget, Target

__all__ = ["settings_for", "PLACEHOLDER_TARGET"]

# Security negatives name a fault in the target's credentials; the table never holds one.
_CREDENTIALS: dict[str, Callable[[Target], dict[str, Any]]] = {
    "target": lambda t: {},
    "wrong-password": lambda t: {"password": t.password + "-not-it"},
    "unknown-user": lambda t: {"user": "wcce-no-such-user"},
    "second": lambda t: {"user": t.second.user, "domain": t.second.domain, "password": t.second.password},
}
assert _CREDENTIALS.keys() == CREDENTIALS  # the words a case may write (model.cases declares them)

#: A target with every field filled in, to check a case table's client settings
#: before any target is known (collection).
PLACEHOLDER_TARGET = Target(
    host="127.0.0.1", ca_name="placeholder-ca", user="u", domain="d", password="p",
    second=Account(user="u2", domain="d", password="p2"),
    kerberos=KerberosTarget(realm="LAB.TEST", kdc_host="127.0.0.1", service_host="ca.lab.test",
                            keytab=pathlib.Path("placeholder.keytab")))


def settings_for(target: Target, client: Mapping[str, Any], *, credentials: str = "target",
                 tickets: object | None = None, environ: Mapping[str, str] | None = None) -> ClientSettings:
    """``client`` (a case table's client settings) aimed at ``target`` with its account
    (or the fault ``credentials`` names).  Raises SettingsError in one line."""
    fixed: dict[str, Any] = {"host": target.host, "port": target.activation_port}
    if client.get("provider", "spnego-ntlm") != "none" and not client.get("anonymous"):
        fixed.update(user=target.user, domain=target.domain, password=target.password)
        fixed.update(_CREDENTIALS[credentials](target))
    if target.kerberos is not None:
        fixed.update(kdc=target.kerberos.kdc, realm=target.kerberos.realm,
                     service_host=target.kerberos.service_host, service_keytab=target.kerberos.keytab)
        if tickets is not None:
            fixed["tickets"] = tickets
    return ClientSettings.from_mapping(client, environ=environ, **fixed)
