"""Calibration against an independent DCE/RPC server: the RPC-layer cases against a
throwaway Samba AD DC (``wcce-conformance calibrate``), in CI.

Every RPC-layer case PASSes against Samba, or is a deviation of examples/samba-dc.toml
whose reason cites Samba's own knownfail list or the ledger's note of where Samba differs;
and every such deviation is still needed.  The same cases PASS against the reference CA in
the main suite, so both servers agree with the ledger.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import pytest

from conformance.model.ledger import shipped_ledger
from conformance.model.profile import load_profile
from conformance.commands.calibrate import SAMBA_PROFILE
from conformance.targets.samba import samba_available

# one worker with the Samba tests: calibrate's DC has their address (tests/conftest.py SHARED_WORKER)
pytestmark = pytest.mark.skipif(not samba_available() or os.geteuid() != 0,
                                reason="needs Samba (bash .ci/install) and root")


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    run = subprocess.run([sys.executable, "-m", "conformance", "calibrate", "--report-dir", str(out)],
                         capture_output=True, text=True, timeout=600)
    (results,) = out.glob("*/results.json")
    return run, json.loads(results.read_text())


def test_every_rpc_layer_case_passes_against_samba_or_is_a_cited_deviation(calibration):
    run, document = calibration
    print(run.stderr[-2500:])  # the counts, for the CI log
    ran = [c for c in document["cases"] if c["verdict"] != "N/A"]
    tally = collections.Counter(c["verdict"] if not (c["deviation"] or {}).get("applied") else "DEVIATION"
                                for c in ran)
    print(f"calibration against Samba: {len(ran)} RPC-layer cases: {dict(tally)}")
    assert len(ran) >= 60
    bad = [(c["id"], c["verdict"], c["actual"]) for c in ran
           if c["verdict"] != "PASS" and not (c["deviation"] or {}).get("applied")]
    assert bad == []
    for case in ran:
        if (case["deviation"] or {}).get("applied"):
            assert "knownfail" in case["deviation"]["reason"] or "ledger" in case["deviation"]["reason"], case["id"]
    assert run.returncode == 0, run.stderr[-3000:]


def test_every_samba_deviation_is_still_needed_and_settled_in_the_ledger(calibration):
    _, document = calibration
    profile = load_profile(SAMBA_PROFILE, environ={"WCCE_SAMBA_PASSWORD": "x"})
    ledger = shipped_ledger()
    for quirk in profile.quirks:
        covered = [c for c in document["cases"] if quirk.covers(c["id"])]
        assert covered and any(c["verdict"] == "FAIL" for c in covered), f"{quirk.case} is no longer needed"
        for case in covered:
            situation = ledger[case["situation"]["id"]]
            assert situation.samba, f"{case['id']}: the ledger does not record how Samba differs ({situation.id})"


def test_the_level_3_rows_pass_against_samba(calibration):
    _, document = calibration
    rows = [c for c in document["cases"] if c["id"].startswith("rpce/2.2.1.1.8/bind-level/") and c["id"].endswith("/l3")]
    assert rows and all(c["verdict"] == "PASS" and c["actual"] == "bind_nak 9" for c in rows if c["verdict"] != "N/A")
    assert any(c["verdict"] == "PASS" for c in rows)
