"""The mutant kill matrix, in CI: every mutant is caught by the cases (server mutants) or
checks (client mutants) of the requirement it breaks, nothing unrelated fails, and the
unmutated baseline is clean.  ``wcce-conformance mutants`` exits 0 only then."""

from __future__ import annotations

import json
import subprocess
import sys

from conformance.model.cases import CASES_DIR
from conformance.model.catalogue import load_catalogue
from conformance.mutation.client import CLIENT_MUTANTS
from conformance.mutation.killmatrix import format_matrix, kill_matrix
from conformance.mutation.server import MUTANTS


def test_every_mutant_is_killed(tmp_path):
    out = tmp_path / "matrix.json"
    result = subprocess.run([sys.executable, "-m", "conformance", "mutants", "--json", str(out)],
                            capture_output=True, text=True, timeout=2400)
    print(result.stdout)  # the matrix, for the CI log
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    matrix = json.loads(out.read_text())
    rows = {row["mutant"]: row for row in matrix["rows"]}
    assert set(rows) == set(MUTANTS) | set(CLIENT_MUTANTS)
    # every mutant killed, but the ones no case may fail (Mutant.survives), which nothing fails
    assert all(row["killed"] is not row["survives"] and not row["collateral"] and not row["errors"]
               for row in rows.values())
    assert matrix["baseline_failures"] == []
    # a server mutant is killed by a case citing its requirement
    assert all(row["killers"] for row in rows.values() if not row["survives"])
    # no ERROR verdict in any mutant run: whatever a mutant does is FAIL or INCONCLUSIVE
    assert sum(row["errors"] for row in rows.values()) == 0


def test_a_mutant_the_cases_cannot_see_survives():
    """The matrix can say "not killed": with only the method tables, nothing binds at 1.0."""
    rows, baseline = kill_matrix([CASES_DIR / "wcce_methods.toml"], load_catalogue(),
                                 server=["accept-interface-version-1.0"], client=[], workers=1)
    (row,) = rows
    assert not row.killed and not row.ok and baseline == []
    assert "0/1 mutants killed" in format_matrix(rows, baseline)
