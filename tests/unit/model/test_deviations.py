"""Deviations: coverage by ID or prefix, expiry, and one-line errors."""

from __future__ import annotations

import datetime

import pytest

from conformance.model.deviations import Deviation, DeviationError, find_deviation, load_deviations


def test_exact_and_prefix_cover():
    exact = Deviation(case="a/b/c", reason="r", expires=datetime.date(2030, 1, 1))
    prefix = Deviation(case="a/b/*", reason="r", expires=datetime.date(2030, 1, 1))
    assert exact.covers("a/b/c") and not exact.covers("a/b/cd")
    assert prefix.covers("a/b/cd") and not prefix.covers("a/x")
    assert find_deviation([exact, prefix], "a/b/zz") is prefix
    assert find_deviation([exact], "q") is None


def test_expiry_is_inclusive_of_the_day():
    d = Deviation(case="x", reason="r", expires=datetime.date(2027, 6, 30))
    assert not d.expired(datetime.date(2027, 6, 30))
    assert d.expired(datetime.date(2027, 7, 1))


def test_load(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('[[deviation]]\ncase = "x/*"\nreason = "ticket 1"\nexpires = 2027-06-30\n')
    (d,) = load_deviations(path)
    assert d == Deviation(case="x/*", reason="ticket 1", expires=datetime.date(2027, 6, 30))


@pytest.mark.parametrize("text, fragment", [
    ('[[deviation]]\ncase = "x"\nreason = "r"\n', "needs exactly case, reason and expires"),
    ('[[deviation]]\ncase = "x"\nreason = "r"\nexpires = "2027-01-01"\n', "TOML date"),
    ('[[deviation]]\ncase = "x"\nreason = "r"\nexpires = 2027-01-01T00:00:00\n', "TOML date"),
    ('[[deviation]]\ncase = "x"\nreason = " "\nexpires = 2027-01-01\n', "reason is empty"),
    ('[[deviation]]\ncase = "x"\nreason = "r"\nexpires = 2027-01-01\nowner = "me"\n', "needs exactly"),
    ('deviation = "x"\n', "[[table]]"),
    ('[[waiver]]\ncase = "x"\n', "unknown key(s) waiver"),
    ("[[deviation]\n", "not valid TOML"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, fragment):
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(DeviationError) as info:
        load_deviations(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DeviationError, match="cannot read deviations"):
        load_deviations(tmp_path / "none.toml")
