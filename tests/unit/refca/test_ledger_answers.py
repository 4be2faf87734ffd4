"""The reference CA takes its answers from the ledger, not restated in code.

For every situation the CA answers from the ledger (``conformance.refca.answers.SITUATIONS``)
a scenario puts it there on bytes; its answer is the ledger's reference answer, and when
the ledger's entry is edited (another status, reason or connection rule) the answer
follows the edit.  An edit the CA cannot follow is refused when the CA is built.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import re

import pytest

import conformance
from conformance.model import ledger
from conformance.model.ledger import Connection, reference_answer, shipped_ledger
from conformance.refca import answers
from conformance.refca.ca import ReferenceCA
from conformance.refca.config import load_config
from tests.unit.refca.loopback import USERS, Observed
from tests.unit.refca.scenarios import RPC_SCENARIOS, dcom_scenarios, opnum_out_of_range

REFCA = pathlib.Path(conformance.__file__).parent / "refca"
SITUATION_ID = re.compile(r"^(rpc|dcom|wcce)/[a-z0-9.-]+(/[a-z0-9.-]+)+$")


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    made = ReferenceCA(load_config(None, host="127.0.0.1", port=0, state_dir=tmp_path_factory.mktemp("ca"),
                                   users=dict(USERS), ca_name="WCCE-LAB-CA"))
    yield made
    made.store.close()


@pytest.fixture(scope="module")
def scenarios(ca):
    return {**RPC_SCENARIOS, **dcom_scenarios(ca), "rpc/request/opnum-out-of-range": lambda: opnum_out_of_range(ca)}


def test_every_situation_the_ca_answers_has_a_scenario(scenarios):
    assert set(scenarios) == set(answers.SITUATIONS)


def expected(answer: ledger.Answer, observed: Observed) -> Observed:
    """``answer`` as an observation; an "unknown" connection rule takes what was observed."""
    return Observed(answer.kind, answer.code, observed.drops if answer.drops is None else answer.drops)


@pytest.mark.parametrize("situation", sorted(answers.SITUATIONS))
def test_the_answer_is_the_ledgers(situation, scenarios):
    observed = scenarios[situation]()
    assert observed == expected(reference_answer(situation), observed)


#: an answer of each kind no situation has, to tell the edited answer from every other
EDITED = {"fault": "fault 0x0badf00d", "bind_nak": "bind_nak 2"}


def edited_ledger(situation: str, reference: str, connection: Connection) -> dict:
    entries = dict(shipped_ledger())
    entries[situation] = dataclasses.replace(entries[situation], reference=reference,
                                             reference_connection=connection)
    return entries


def _edited_connection(situation: str) -> Connection:
    """The other connection rule, where the CA can follow it: a dispatcher's Fault keeps
    the connection whatever the ledger says (answers refuses an edit that wants it dropped)."""
    if situation in answers.KEEPS_CONNECTION:
        return Connection.STAYS
    return Connection.STAYS if reference_answer(situation).drops is not False else Connection.DROPS


@pytest.mark.parametrize("situation", sorted(answers.SITUATIONS))
def test_the_answer_follows_an_edit_of_the_ledger(situation, scenarios, monkeypatch):
    kind = reference_answer(situation).kind
    connection = _edited_connection(situation)
    monkeypatch.setattr(ledger, "shipped_ledger", lambda: edited_ledger(situation, EDITED[kind], connection))
    edited = reference_answer(situation)
    assert edited.code in (0x0BADF00D, 2)
    observed = scenarios[situation]()
    assert observed == expected(edited, observed)
    assert observed.drops is (connection is Connection.DROPS)


def test_the_request_before_bind_may_be_answered_as_windows_alternatives(monkeypatch):
    from tests.unit.refca.scenarios import _before_bind

    for reference, seen in [("bind_nak 4", Observed("bind_nak", 4, True)), ("drop", Observed("drop", None, True))]:
        monkeypatch.setattr(ledger, "shipped_ledger",
                            lambda r=reference: edited_ledger("rpc/request/before-bind", r, Connection.DROPS))
        assert _before_bind() == seen


@pytest.mark.parametrize("situation, reference, connection", [
    ("rpc/request/bad-signature", "accept", Connection.DROPS),  # a refusal cannot be an acceptance
    ("rpc/bind/level-call", "fault 0x00000005", Connection.DROPS),  # a bind is refused with bind_nak
    ("dcom/orpc/unknown-ipid", "hresult 0x80010108", Connection.UNKNOWN),  # the exporter faults
    ("dcom/orpc/unknown-ipid", "fault 0x80010108", Connection.DROPS),  # and keeps the connection
    ("rpc/request/opnum-out-of-range", "fault 0x1c010002", Connection.DROPS),
])
def test_an_edit_the_ca_cannot_follow_is_refused_when_it_is_built(situation, reference, connection, monkeypatch,
                                                                   tmp_path):
    monkeypatch.setattr(ledger, "shipped_ledger", lambda: edited_ledger(situation, reference, connection))
    with pytest.raises(answers.LedgerAnswerError, match=re.escape(situation)):
        answers.check()
    with pytest.raises(answers.LedgerAnswerError):
        ReferenceCA(load_config(None, host="127.0.0.1", port=0, state_dir=tmp_path))


def test_the_shipped_ledger_has_every_answer_the_ca_takes():
    answers.check()


# -- the code names its situations, and only listed ones -------------------------------------

def situations_named(root: pathlib.Path) -> dict[str, set[str]]:
    """Situation IDs written as string constants in each module under ``root``."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SITUATION_ID.match(node.value):
                found.setdefault(node.value, set()).add(path.relative_to(root).as_posix())
    return found


def test_every_situation_named_in_refca_is_answered_from_the_ledger():
    named = situations_named(REFCA)
    assert set(named) - set(answers.SITUATIONS) == set(), "named in refca but not in answers.SITUATIONS"


def test_every_listed_situation_is_named_where_it_is_answered():
    named = situations_named(REFCA)
    unused = {s for s in answers.SITUATIONS if not named.get(s, set()) - {"answers.py"}}
    assert unused == set()


def test_the_situations_of_the_brief_are_answered_from_the_ledger():
    assert {
        "rpc/bind/level-call", "rpc/bind/auth-none/valid-level", "rpc/bind/auth-none/invalid-level",
        "rpc/bind/unknown-assoc-group", "rpc/request/bad-signature", "rpc/request/replay",
        "rpc/request/pad-overflow", "rpc/request/trailer-level-changed", "rpc/request/trailer-auth-type-changed",
        "rpc/request/trailer-unknown-context", "rpc/request/before-bind", "rpc/request/opnum-out-of-range",
        "rpc/request/unknown-context", "rpc/fragments/without-first", "rpc/fragments/new-call-inside",
        "rpc/auth3/spnego-leg", "rpc/alter/change-level", "rpc/alter/change-auth-type",
        "rpc/alter/change-transfer-syntax", "dcom/activation/below-integrity", "dcom/orpc/unknown-ipid",
        "dcom/orpc/orpcthis-flags", "dcom/orpc/com-version-unsupported",
    } <= set(answers.SITUATIONS)
