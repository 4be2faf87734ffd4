"""The pytest plugin end to end: collection, selection, verdict mapping, deviations,
INCONCLUSIVE when the target is down, results across xdist workers.

Each run is ``pytest`` in a subprocess against a real reference CA on loopback: the
embedded one the plugin starts, or one started here and named by a target profile.
"""

from __future__ import annotations

import json
import re
import socket

import pytest

from conformance.model.cases import CASES_DIR
from conformance.model.exitcodes import Exit
from tests.conftest import CA_NAME, USERS

PROFILE = '''
[target]
host = "{host}"
activation_port = {port}
ca_name = "{ca_name}"
[credentials]
user = "alice"
domain = "lab.test"
password_env = "WCCE_TEST_PASSWORD"
{extra}
'''

# A table of our own: one case per verdict.  Binding ICertRequestD at 0.0 is accepted by
# the reference CA, so expecting "reject 1" is a violation of the cited requirement.
TABLE = '''
[defaults]
kind = "bind"
client = { provider = "spnego-ntlm", level = 6 }
params = { interface = "ICertRequestD" }

[[case]]
id = "t/pass"
requirements = ["WCCE-T-02"]
expect = "accept"

[[case]]
id = "t/must-violated"
requirements = ["WCCE-T-02"]
expect = "reject 1"

[[case]]
id = "t/should-violated"
requirements = ["WCCE-T-05"]
expect = "reject 1"

[[case]]
id = "t/unclaimed"
requirements = ["WCCE-T-08"]
claims = ["enforce_privacy"]
expect = "accept"

[[case]]
id = "t/suite-bug"
kind = "raw"
action = "suite-bug"
params = {}  # a raw action takes no interface
requirements = ["WCCE-T-02"]
expect = "accept"
'''

# A raw action that raises, as a defect of the suite would (registered before collection).
SUITE_BUG = '''
from conformance.judge.raw import RAW_ACTIONS
from conformance.model import cases

def _bug(engine, case, settings, session, tap):
    raise RuntimeError("a defect of the suite")

RAW_ACTIONS["suite-bug"] = _bug
cases.RAW_ACTIONS = cases.RAW_ACTIONS | {"suite-bug"}  # the table schema's word for it
'''


def _results(path) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in json.loads(path.read_text())["cases"]}


@pytest.fixture
def profile_for(pytester, monkeypatch):
    monkeypatch.setenv("WCCE_TEST_PASSWORD", USERS["alice"])

    def write(host: str, port: int, extra: str = "", name: str = "target.toml"):
        return pytester.makefile(".toml", **{name.removesuffix(".toml"): PROFILE.format(
            host=host, port=port, ca_name=CA_NAME, extra=extra)})
    return write


@pytest.fixture
def own_table(pytester):
    pytester.mkdir("cases")
    (pytester.path / "cases" / "t.toml").write_text(TABLE)
    pytester.makeconftest(SUITE_BUG)


def test_collects_every_table_case():
    from conformance.judge.tables import load_cases
    from conformance.model.cases import case_files
    from conformance.model.catalogue import load_catalogue

    expected = len(load_cases(case_files(), load_catalogue()))
    assert expected >= 300


def test_collection_and_selection(pytester):
    result = pytester.runpytest_subprocess(str(CASES_DIR), "--collect-only", "-q", "-p", "no:cacheprovider")
    assert re.search(r"^(\d+) tests collected", result.stdout.str(), re.M)
    assert int(re.search(r"^(\d+) tests collected", result.stdout.str(), re.M).group(1)) >= 300
    result = pytester.runpytest_subprocess(str(CASES_DIR), "-p", "no:cacheprovider",
                                           "--case", "wcce/2.1/interface-version/ICertRequestD/",
                                           "--requirement", "WCCE-T-02")
    result.assert_outcomes(passed=4, deselected=len_cases() - 4)
    result.stdout.fnmatch_lines(["*wcce-conformance: 4 cases: 4 PASS*"])


def len_cases() -> int:
    from conformance.judge.tables import load_cases
    from conformance.model.cases import case_files
    from conformance.model.catalogue import load_catalogue

    return len(load_cases(case_files(), load_catalogue()))


def test_verdicts_map_onto_pytest_outcomes(pytester, ca, profile_for, own_table):
    profile = profile_for(ca.config.listen.host, ca.activation_port)
    results = pytester.path / "out" / "results.json"
    result = pytester.runpytest_subprocess("cases", "-p", "no:cacheprovider", "-rA", "--target", str(profile),
                                           "--wcce-results", str(results))
    # PASS passes, WARN passes with a warning, FAIL fails, N/A skips, ERROR errors
    result.assert_outcomes(passed=2, failed=1, skipped=1, errors=1, warnings=1)
    assert result.ret == 1
    assert _results(results) == {"t/pass": "PASS", "t/must-violated": "FAIL", "t/should-violated": "WARN",
                                 "t/unclaimed": "N/A", "t/suite-bug": "ERROR"}
    out = result.stdout.str()
    # the failure reads like the spec: requirement, its text, expected alternatives vs actual
    assert "FAIL t/must-violated" in out and "-> WCCE-T-02 (MUST" in out
    assert "Expected: reject 1" in out and "Actual: accept" in out
    assert "N/A: t/unclaimed: target claim enforce_privacy: unknown" in out
    assert "ShouldViolation" in out and "a defect of the suite" in out
    assert "1 PASS, 1 FAIL, 1 WARN, 1 N/A, 1 ERROR" in out

    # --strict: the SHOULD violation fails too
    strict = pytester.runpytest_subprocess("cases", "-p", "no:cacheprovider", "--target", str(profile),
                                           "--strict", "--case", "t/should")
    strict.assert_outcomes(failed=1)


def test_deviations_turn_failures_into_xfail_until_they_expire(pytester, ca, profile_for, own_table):
    profile = profile_for(ca.config.listen.host, ca.activation_port)
    deviations = pytester.makefile(".toml", deviations='''
[[deviation]]
case = "t/must-*"
reason = "vendor ticket 42"
expires = 2099-12-31
''')
    result = pytester.runpytest_subprocess("cases", "-p", "no:cacheprovider", "-rA", "--target", str(profile),
                                           "--deviations", str(deviations), "--case", "t/must", "--case", "t/pass")
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*deviation (accepted until 2099-12-31): t/must-violated: vendor ticket 42*"])

    deviations.write_text(deviations.read_text().replace("2099-12-31", "2020-01-31"))
    result = pytester.runpytest_subprocess("cases", "-p", "no:cacheprovider", "--target", str(profile),
                                           "--deviations", str(deviations), "--case", "t/must", "--case", "t/pass")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Deviation: EXPIRED 2020-01-31: vendor ticket 42*",
                                 "*deviation (EXPIRED, counted as FAIL): t/must-violated*"])

    # a quirk in the target profile is a deviation of that target
    quirky = profile_for(ca.config.listen.host, ca.activation_port, name="quirky.toml", extra='''
[[quirk]]
case = "t/must-violated"
reason = "known quirk"
expires = 2099-01-01
''')
    result = pytester.runpytest_subprocess("cases", "-p", "no:cacheprovider", "--target", str(quirky),
                                           "--case", "t/must")
    result.assert_outcomes(xfailed=1)


def test_target_down_is_inconclusive_never_pass(pytester, profile_for):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    profile = profile_for("127.0.0.1", port)
    results = pytester.path / "results.json"
    result = pytester.runpytest_subprocess(str(CASES_DIR), "-p", "no:cacheprovider", "--target", str(profile),
                                           "--case", "wcce/2.1/auth-level/privacy/spnego-ntlm",
                                           "--wcce-results", str(results))
    assert result.ret == Exit.CONNECTION
    outcomes = result.parseoutcomes()
    assert "passed" not in outcomes and outcomes["skipped"] >= 4
    assert set(_results(results).values()) == {"INCONCLUSIVE"}
    assert "Connection refused" in result.stdout.str()


@pytest.mark.parametrize("args, fragment", [
    (["--target", "missing.toml"], "cannot read target profile missing.toml"),
    (["--requirement", "WCCE-X-99"], "--requirement WCCE-X-99: not in the catalogue"),
    (["--mutant", "no-such-mutant"], "unknown mutant 'no-such-mutant'"),
    (["--deviations", "missing.toml"], "cannot read deviations"),
])
def test_bad_options_are_one_line_usage_errors(pytester, args, fragment):
    result = pytester.runpytest_subprocess(str(CASES_DIR), "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == [f"ERROR: {errors[0][7:]}"] and fragment in errors[0]
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_bad_table_is_a_one_line_collection_error(pytester):
    pytester.mkdir("cases")
    (pytester.path / "cases" / "bad.toml").write_text(
        '[[case]]\nid = "x"\nrequirements = ["WCCE-T-02"]\nmethod = "Ping"\nexpect = "perhaps"\n')
    result = pytester.runpytest_subprocess("cases", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad.toml: case x: expected outcome 'perhaps' is not a known form*"])


def test_mutant_option_makes_its_cases_fail(pytester):
    result = pytester.runpytest_subprocess(str(CASES_DIR), "-p", "no:cacheprovider",
                                           "--mutant", "accept-interface-version-1.0",
                                           "--case", "wcce/2.1/interface-version/ICertRequestD/")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*FAIL wcce/2.1/interface-version/ICertRequestD/v1.0*"])


def test_results_travel_back_from_xdist_workers(pytester):
    results = pytester.path / "results.json"
    evidence = pytester.path / "pcap"
    result = pytester.runpytest_subprocess(str(CASES_DIR), "-p", "no:cacheprovider", "-n", "2",
                                           "--case", "wcce/2.1/interface-version/",
                                           "--wcce-results", str(results), "--evidence-dir", str(evidence))
    result.assert_outcomes(passed=12)
    verdicts = _results(results)
    assert len(verdicts) == 12 and set(verdicts.values()) == {"PASS"}
    assert len(list(evidence.glob("*.pcapng"))) == 12


def test_kerberos_cases_run_through_a_profile_and_are_na_without_one(pytester, kerberos_ca, realm, profile_for):
    prefix = "wcce/2.1/auth-level/privacy/spnego-kerberos-l6-imp3/"
    without = profile_for(kerberos_ca.config.listen.host, kerberos_ca.activation_port, name="ntlm-only.toml")
    result = pytester.runpytest_subprocess(str(CASES_DIR), "-p", "no:cacheprovider", "--target", str(without),
                                           "--case", prefix, "-rs")
    result.assert_outcomes(skipped=7)
    result.stdout.fnmatch_lines(["*N/A*target claim kerberos: unknown*"])
    with_kerberos = profile_for(kerberos_ca.config.listen.host, kerberos_ca.activation_port, name="krb.toml",
                                extra=f'''
[kerberos]
realm = "{realm.realm}"
kdc = "127.0.0.1:{realm.port}"
service_host = "ca01.lab.test"
keytab = "{realm.keytab}"
''')
    results = pytester.path / "krb.json"
    result = pytester.runpytest_subprocess(str(CASES_DIR), "-p", "no:cacheprovider", "--target", str(with_kerberos),
                                           "--case", prefix, "--wcce-results", str(results))
    result.assert_outcomes(passed=7)
    cases = json.loads(results.read_text())["cases"]
    assert {c["variant"]["provider"] for c in cases} == {"spnego-kerberos"}
    sealed = [p for c in cases for p in c["evidence"]["ladder"] if p["protection"] == "sealed"]
    assert sealed and all(p["verified"] and "plain_hex" in p for p in sealed)  # read with the keytab
