"""Before any verdict: do the profile's accounts get in?

A wrong password, an unknown account or a realm that gives no ticket is the lab's
configuration, not the target's non-conformance: one activation at PKT_PRIVACY with each
account the profile names (and a TGT when it names a realm) must succeed before any case
runs.  A target that cannot be reached is not refused here: its cases are INCONCLUSIVE.
"""

from __future__ import annotations

import dataclasses
import socket

from conformance.client.kerberos import KerberosError, TicketCache
from conformance.client.session import WcceSession
from conformance.judge.outcome import of_activation
from conformance.judge.settings import settings_for
from conformance.model import outcomes
from conformance.model.profile import Account, Target

__all__ = ["CredentialsRefused", "preflight"]


class CredentialsRefused(Exception):
    """One line: which account the target refused, and what it answered."""


def _account(target: Target, account: Account | None) -> Target:
    if account is None:
        return target
    return dataclasses.replace(target, user=account.user, domain=account.domain, password=account.password)


def _who(target: Target) -> str:
    return f"{target.domain}\\{target.user}" if target.domain else target.user


def preflight(target: Target, *, timeout: float = 10.0) -> None:
    """Raise :class:`CredentialsRefused` when an account of the profile is refused."""
    if target.kind != "ca":
        return  # a plain endpoint: its RPC-layer cases bind on their own
    accounts = [("credentials", target)]
    if target.second is not None:
        accounts.append(("second_credentials", _account(target, target.second)))
    for section, who in accounts:
        if who.kerberos is not None:
            k = who.kerberos
            try:
                TicketCache(kdc_host=k.kdc_host, kdc_port=k.kdc_port, realm=k.realm, user=who.user,
                            password=who.password, timeout=timeout).tgt()
            except KerberosError as exc:
                raise CredentialsRefused(f"[{section}] {who.user}@{k.realm}: the KDC {k.kdc} gave no ticket "
                                         f"({exc}); check the account, its password_env and [kerberos]") from None
        answers = []
        # NTLM first; a realm in the profile may be the only way in (NTLM off in the domain)
        for provider in ("spnego-ntlm",) + (("spnego-kerberos",) if who.kerberos is not None else ()):
            settings = settings_for(who, {"provider": provider, "level": 6, "server_alive2": False})
            try:
                with WcceSession.from_settings(settings) as session:
                    outcome, activation = session.activate()
            except (ConnectionRefusedError, socket.timeout, OSError):
                return  # unreachable: the cases say so (INCONCLUSIVE), not the configuration
            answers.append(f"{provider}: {of_activation(outcome, activation)}")
            if of_activation(outcome, activation) == outcomes.ACCEPT:
                break
        else:
            answer = "; ".join(answers)
            raise CredentialsRefused(
                f"[{section}] {_who(who)}: the target refused this account's activation at PKT_PRIVACY "
                f"({answer}); check user, domain and password_env — no case was run")
