"""The ledger of Windows behaviour, and no case contradicting it.

Every shipped case names its ledger situation; a case's expected alternatives include
every Windows answer and nothing the ledger does not list (as Windows' or, with a reason,
as broader); "the connection must drop/stay" agrees with Windows.  The case loader refuses
a table that contradicts the ledger, so these tests hold for the shipped tables and for
any table a user adds.
"""

from __future__ import annotations

import collections
import re
import shutil

import pytest

from conformance.judge.decide import decide
from conformance.judge.tables import load_cases
from conformance.model.cases import CASES_DIR, CaseError, case_files, parse_cases
from conformance.model.catalogue import load_catalogue
from conformance.model.ledger import (
    Confidence, LedgerError, contradictions, load_ledger, reference_answer, shipped_ledger,
)
from conformance.model.verdicts import Level, Verdict

CATALOGUE = load_catalogue()
LEDGER = shipped_ledger()
CASES = load_cases(case_files(), CATALOGUE)


def test_the_shipped_ledger_loads_and_every_answer_has_a_source():
    assert len(LEDGER) >= 40
    for situation in LEDGER.values():
        assert situation.sources and all(s.strip() for s in situation.sources), situation.id
        assert situation.layer in ("rpc", "dcom", "wcce")


def test_the_reference_ca_answers_as_windows_where_confirmed():
    for situation in LEDGER.values():
        if situation.confidence is Confidence.CONFIRMED:
            assert situation.reference in situation.windows, situation.id
            assert situation.reference_connection is situation.connection, situation.id


def test_every_shipped_case_names_its_situation_and_agrees_with_it():
    unnamed = [c.id for c in CASES if c.situation is None]
    assert unnamed == []
    for case in CASES:
        assert contradictions(case.situation, case.expect, case.connection_drops) == [], case.id


def test_every_situation_is_a_case_s():
    used = collections.Counter(c.situation.id for c in CASES)
    assert sorted(set(LEDGER) - set(used)) == []


def test_the_level_3_rows_accept_windows_refusal_of_the_bind():
    rows = [c for c in CASES if "-l3-" in c.id or c.id.endswith("-l3") or c.id.endswith("/l3")]
    assert len(rows) >= 120
    assert all("bind_nak 9" in c.expect for c in rows if c.situation.id != "rpc/bind/auth-none/valid-level")


def test_reference_answers_parse():
    assert reference_answer("rpc/bind/level-call") == type(reference_answer("rpc/bind/level-call"))(
        kind="bind_nak", code=9, drops=True)
    assert reference_answer("rpc/request/no-verifier").drops is False
    assert reference_answer("rpc/request/unknown-context").code == 0x1C010003
    with pytest.raises(KeyError):
        reference_answer("rpc/no-such-situation")


# -- a table that contradicts the ledger is refused ------------------------------------------------


@pytest.fixture
def tables(tmp_path):
    """A copy of the shipped tables to break one at a time."""
    copy = tmp_path / "cases"
    shutil.copytree(CASES_DIR, copy)
    return copy


def _break(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_removing_windows_answer_from_a_table_is_refused(tables):
    """The must-show: the level-3 bind row without bind_nak 9 (Windows' answer) no longer loads."""
    _break(tables / "rpce_binds.toml", 'situation = "rpc/bind/level-call"\nexpect = "bind_nak 9"',
           'situation = "rpc/bind/level-call"\nexpect = "accept"')
    with pytest.raises(CaseError, match=r"contradicts the ledger's rpc/bind/level-call: refuses Windows' "
                                        r"answer 'bind_nak 9' \(CONFIRMED\)"):
        parse_cases(case_files(tables), CATALOGUE)


def test_removing_windows_answer_from_the_matrix_is_refused(tables):
    _break(tables / "2_1_matrix.toml", 'expect = { deny = ["bind_nak 9", ', 'expect = { deny = [')
    with pytest.raises(CaseError, match="privacy-enforced/spnego-ntlm-l3-imp1/Request: contradicts the ledger's "
                                        "wcce/privacy-refusal/level-call: refuses Windows' answer 'bind_nak 9'"):
        parse_cases(case_files(tables), CATALOGUE)


def test_accepting_what_the_ledger_does_not_list_is_refused(tables):
    _break(tables / "rpce_negatives.toml", 'situation = "rpc/request/trailer-unknown-context"\n'
                                           'expect = { any = ["fault 0x00000005"] }',
           'situation = "rpc/request/trailer-unknown-context"\n'
           'expect = { any = ["fault 0x00000005", "fault 0x1c01000b"] }')
    with pytest.raises(CaseError, match="accepts 'fault 0x1c01000b', which the ledger lists neither"):
        parse_cases(case_files(tables), CATALOGUE)


def test_the_opposite_connection_rule_is_refused(tables):
    _break(tables / "rpce_negatives.toml", 'situation = "rpc/request/no-verifier"\n'
                                           'expect = { any = ["accept", "fault 0x00000005", "fault 0x80070005", '
                                           '"hresult 0x80070005", "hresult 0x80000009"] }\nconnection_drops = false',
           'situation = "rpc/request/no-verifier"\n'
           'expect = { any = ["accept", "fault 0x00000005", "fault 0x80070005", '
           '"hresult 0x80070005", "hresult 0x80000009"] }\nconnection_drops = true')
    with pytest.raises(CaseError, match="says the connection drops; on Windows it stays"):
        parse_cases(case_files(tables), CATALOGUE)


def test_an_unknown_situation_is_refused(tables):
    _break(tables / "rpce_binds.toml", 'situation = "rpc/bind/level-call"', 'situation = "rpc/bind/level-cal"')
    with pytest.raises(CaseError, match="situation 'rpc/bind/level-cal' is not in the ledger"):
        parse_cases(case_files(tables), CATALOGUE)


# -- the ledger's own rules --------------------------------------------------------------------------

ENTRY = '''
[[situation]]
id = "rpc/x"
what = "x"
windows = ["fault 0x00000005"]
connection = "drops"
confidence = "CONFIRMED"
sources = ["somewhere"]
reference = "fault 0x00000005"
reference_connection = "drops"
'''


@pytest.mark.parametrize("change, message", [
    (('reference = "fault 0x00000005"', 'reference = "fault 0x00000721"\nbroader = ["fault 0x00000721"]\n'
                                          'broader_why = "why"'),
     "CONFIRMED: the reference CA must answer as Windows does"),
    (('connection = "drops"', 'connection = "stays"'), "CONFIRMED: the reference CA must answer as Windows does"),
    (('reference = "fault 0x00000005"', 'reference = "fault 0x00000721"'), "neither Windows' nor an accepted"),
    (('confidence = "CONFIRMED"', 'confidence = "UNKNOWN"\nbroader = ["drop"]'), "broader answers need broader_why"),
    (('sources = ["somewhere"]', 'sources = []'), "every answer needs a source"),
    (('windows = ["fault 0x00000005"]', 'windows = ["fault 5"]'), "not a known form"),
    (('id = "rpc/x"', 'id = "smb/x"'), "the ID starts with rpc/, dcom/ or wcce/"),
    (('what = "x"', 'what = "x"\nsource = "typo"'), "unknown key(s) source"),
    (('confidence = "CONFIRMED"', 'confidence = "SURE"'), "'SURE' is not a valid Confidence"),
])
def test_a_ledger_entry_that_cannot_be_used_is_one_line(change, message):
    old, new = change
    with pytest.raises(LedgerError) as info:
        load_ledger(ENTRY.replace(old, new, 1))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_situation_defined_twice_is_refused():
    with pytest.raises(LedgerError, match="defined twice"):
        load_ledger(ENTRY + ENTRY)


# -- a target that answers differently from Windows is told so -------------------------------------


def _case(situation: str):
    return next(c for c in CASES if c.situation.id == situation and c.expect != c.situation.windows)


def test_an_accepted_answer_that_is_not_windows_is_info():
    case = _case("wcce/privacy-refusal/level-call")  # broader: MS-RPCE's CALL-as-PKT
    told = decide(case, Level.MUST, "fault 0x00000005", None, [])
    assert told.verdict is Verdict.INFO and told.outcome_matched
    assert re.search(r"Windows answers bind_nak 9 here \(wcce/privacy-refusal/level-call, CONFIRMED\)", told.reason)
    windows = decide(case, Level.MUST, "bind_nak 9", None, [])
    assert windows.verdict is Verdict.PASS and windows.reason == ""


def test_an_answer_outside_the_case_still_fails():
    case = _case("wcce/privacy-refusal/level-call")
    assert decide(case, Level.MUST, "accept", None, []).verdict is Verdict.FAIL


def test_the_readme_shows_the_ledger_as_it_is():
    import pathlib

    from conformance.model.ledger import markdown_table

    readme = (pathlib.Path(__file__).resolve().parents[3] / "README.md").read_text()
    shown = readme.split("<!-- ledger-table -->\n", 1)[1].split("\n<!-- /ledger-table -->", 1)[0]
    assert shown == markdown_table(), "regenerate: python -c 'from conformance.model.ledger import markdown_table; print(markdown_table())'"
