"""Users' runs of ``wcce-conformance run``: the header and progress a person reads, shards
that join into the unsharded verdict (``--shard`` + ``report merge``), and their own case
tables beside the shipped ones (``--cases DIR``, ``cases --list``)."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from tests.integration.test_run_cli import cli

SELECTION = ["-k", "interface-version or transfer-syntax"]  # 18 cases: quick, and more than one table row
OWN_TABLE = """\
[defaults]
kind = "bind"
side = "server"
checks = ["auth-type-consistent", "stub-confidentiality", "response-protection"]

[[case]]
id = "vendor/extra/icertrequestd-v0.0-ntlm-l6"
title = "Our own: bind ICertRequestD at 0.0 over raw NTLM at privacy: accepted"
requirements = ["WCCE-T-02"]
client = { provider = "ntlm", level = 6, version = "0.0" }
params = { interface = "ICertRequestD" }
situation = "dcom/bind/interface-version-0.0"
expect = "accept"
"""


def _results(directory: pathlib.Path) -> dict:
    (path,) = directory.glob("*/results.json") if not (directory / "results.json").exists() else [
        directory / "results.json"]
    return json.loads(path.read_text())


def test_the_run_opens_with_its_target_and_says_how_far_it_is(tmp_path):
    result = cli("run", "--report-dir", str(tmp_path), *SELECTION)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    out = result.stdout
    header = [line for line in out.splitlines() if line.startswith("wcce-conformance: ")][:3]
    assert header[0].startswith("wcce-conformance: target: embedded reference CA")
    assert "Kerberos: " in header[0]
    assert header[1].startswith("wcce-conformance: claims: ") and "enforce_privacy" in header[1]
    assert header[2] == "wcce-conformance: 18 case(s) on 1 worker(s)"
    progress = re.findall(r"wcce-conformance: (\d+)/18 cases \((\d+) %\): (\d+) PASS(; about \d+ s left)?", out)
    assert progress and progress[0][0] == "10" and progress[0][3]  # a tenth (at least 10), with the time left
    run_dir = next(tmp_path.iterdir())
    assert f"wrote {run_dir / 'report.html'}" in result.stderr  # the end says where the report is


def test_quiet_mode_keeps_the_header_and_drops_the_progress(tmp_path):
    result = cli("run", "-q", "--report-dir", str(tmp_path), *SELECTION)
    assert result.returncode == 0, result.stderr
    assert "wcce-conformance: 18 case(s) on 1 worker(s)" in result.stdout
    assert "cases (" not in result.stdout
    assert len(result.stdout.splitlines()) < 12


def test_two_shards_merged_give_the_unsharded_run(tmp_path):
    whole = cli("run", "--report-dir", str(tmp_path / "whole"), *SELECTION)
    shards = [cli("run", "--report-dir", str(tmp_path / f"shard{k}"), "--shard", f"{k}/2", *SELECTION) for k in (1, 2)]
    assert whole.returncode == 0 and all(s.returncode == 0 for s in shards), [s.stderr for s in shards]
    parts = [_results(tmp_path / f"shard{k}") for k in (1, 2)]
    assert [p["run"]["shard"]["index"] for p in parts] == [1, 2]
    assert parts[0]["run"]["shard"]["selection"] == parts[1]["run"]["shard"]["selection"]
    assert not {c["id"] for c in parts[0]["cases"]} & {c["id"] for c in parts[1]["cases"]}
    assert sum(len(p["cases"]) for p in parts) == 18 and all(len(p["cases"]) >= 6 for p in parts)  # balanced by cost
    merged = cli("report", "merge", *(str(next((tmp_path / f"shard{k}").glob("*/results.json"))) for k in (1, 2)),
                 "--out", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    assert {p.name for p in (tmp_path / "merged").iterdir()} == {"results.json", "report.html", "junit.xml"}
    joined, unsharded = _results(tmp_path / "merged"), _results(tmp_path / "whole")
    assert sorted(c["id"] for c in joined["cases"]) == sorted(c["id"] for c in unsharded["cases"])
    assert [c["verdict"] for c in sorted(joined["cases"], key=lambda c: c["id"])] == \
        [c["verdict"] for c in sorted(unsharded["cases"], key=lambda c: c["id"])]
    gates = [cli("gate", str(path)) for path in (tmp_path / "merged" / "results.json",
                                                  next((tmp_path / "whole").glob("*/results.json")))]
    assert gates[0].returncode == gates[1].returncode
    assert gates[0].stderr.splitlines()[0] == gates[1].stderr.splitlines()[0]  # the same summary line


def test_shards_of_different_selections_are_refused_in_one_line(tmp_path):
    runs = [cli("run", "--report-dir", str(tmp_path / name), "--shard", "1/2", "-k", keyword)
            for name, keyword in (("a", "interface-version"), ("b", "transfer-syntax"))]
    assert all(r.returncode == 0 for r in runs)
    merged = cli("report", "merge", *(str(next((tmp_path / n).glob("*/results.json"))) for n in "ab"),
                 "--out", str(tmp_path / "merged"))
    lines = [line for line in merged.stderr.splitlines() if line.strip()]
    assert merged.returncode == 2 and len(lines) == 1 and "another selection" in lines[0], merged.stderr
    assert not (tmp_path / "merged" / "results.json").exists()


def test_a_users_own_table_runs_beside_the_shipped_ones(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "extra.toml").write_text(OWN_TABLE)
    listed = cli("cases", "--list", "--cases", str(own), "--case", "vendor/")
    assert listed.returncode == 0 and listed.stdout.strip() == \
        "vendor/extra/icertrequestd-v0.0-ntlm-l6\tWCCE-T-02\textra.toml"
    result = cli("run", "--report-dir", str(tmp_path / "reports"), "--cases", str(own), "--case", "vendor/")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    document = _results(tmp_path / "reports")
    assert [(c["id"], c["verdict"]) for c in document["cases"]] == [("vendor/extra/icertrequestd-v0.0-ntlm-l6", "PASS")]
    assert document["run"]["case_dirs"] == [str(own)]


@pytest.mark.parametrize("table, fragment", [
    (OWN_TABLE.replace("vendor/extra/icertrequestd-v0.0-ntlm-l6", "wcce/2.1/interface-version/ICertRequestD/v0.0"),
     "wcce/2.1/interface-version/ICertRequestD/v0.0"),
    (OWN_TABLE.replace('"dcom/bind/interface-version-0.0"', '"nowhere/at-all"'), "nowhere/at-all"),
])
def test_a_bad_own_table_is_one_line_and_nothing_runs(tmp_path, table, fragment):
    own = tmp_path / "own"
    own.mkdir()
    (own / "extra.toml").write_text(table)
    result = cli("run", "--report-dir", str(tmp_path / "reports"), "--cases", str(own))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
