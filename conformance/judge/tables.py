"""The case tables as the judge runs them: :func:`conformance.model.cases.parse_cases`
(every key, params included, against the declared schema) and then each case's client
table made into client settings against a placeholder target, so a table that cannot
run is refused at collection, in one line, never at run time."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from conformance.client.settings import SettingsError
from conformance.judge.settings import PLACEHOLDER_TARGET, settings_for
from conformance.model.cases import Case, CaseError, parse_cases
from conformance.model.catalogue import Requirement

__all__ = ["load_cases"]

_NO_TICKETS = object()  # Kerberos settings are checked without asking a KDC


def load_cases(paths: list[pathlib.Path], catalogue: Mapping[str, Requirement]) -> list[Case]:
    cases = parse_cases(paths, catalogue)
    for case in cases:
        try:
            settings_for(PLACEHOLDER_TARGET, case.client, credentials=case.params.credentials,
                         tickets=_NO_TICKETS, environ={})
        except SettingsError as exc:
            raise CaseError(f"{case.source}: case {case.id}: client: {exc}") from None
    return cases
