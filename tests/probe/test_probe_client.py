"""probe-client end to end: the reference CA records, a real client process enrolls,
the client-side cases judge the recorded wire, and the report says why."""

from __future__ import annotations

import json
import pathlib

import pytest

from conformance.commands.cli import main
from tests.support import tools
from tests.support.hosts import can_bind_privileged, fresh_loopback

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "clients"
OURS = ["{python}", "-m", "conformance", "enroll", "--host", "{host}", "--port", "{port}", "--ca", "{ca}",
        "--user", "{user}", "--domain", "{domain}", "--password-env", "WCCE_PROBE_PASSWORD", "--key", "ec-p256",
        "--out", "ours"]
OURS_KERBEROS = [*OURS, "--provider", "spnego-kerberos", "--kdc", "{kdc}", "--realm", "{realm}",
                 "--service-host", "{service_host}"]


def probe(tmp_path, *args: str, port: int = 0) -> tuple[int, dict, pathlib.Path]:
    reports = tmp_path / "reports"
    code = main(["probe-client", "--report-dir", str(reports), "--host", fresh_loopback(), "--port", str(port),
                 "--timeout", "90", *args])
    runs = sorted(p for p in reports.iterdir() if p.is_dir()) if reports.exists() else []
    if not runs:
        return code, {}, reports
    document = json.loads((runs[-1] / "results.json").read_text())
    return code, document, runs[-1]


def verdicts(document: dict) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in document["cases"]}


def test_our_client_at_its_defaults_passes_every_client_must(tmp_path, capsys):
    code, document, run = probe(tmp_path, "--client", str(EXAMPLES / "ours.toml"))
    assert code == 0, capsys.readouterr().err
    cases = {c["id"]: c for c in document["cases"]}
    musts = [c for c in cases.values() if c["level"] == "MUST"]
    assert musts and all(c["verdict"] in ("PASS", "INFO", "N/A") for c in musts)
    assert all(cases[cid]["verdict"] in ("PASS", "INFO") for cid in document["run"]["expected_must_cases"])
    assert cases["wcce/2.1/client/security-provider"]["verdict"] == "PASS"
    # honest applicability: it never resolves OXIDs nor uses Kerberos, so those are N/A
    assert cases["wcce/2.1/client/resolver-level"]["verdict"] == "N/A"
    assert cases["wcce/2.1/client/kerberos-spn"]["verdict"] == "N/A"
    assert document["run"]["target"]["kind"] == "client" and document["run"]["client"]["exit_status"] == 0
    assert (run / "report.html").exists() and (run / "junit.xml").exists()
    assert (run / "pcap" / "client.pcapng").stat().st_size > 0


def test_certipy_is_scored_and_fails_the_security_provider(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("conformance.commands.probe_client._new_password", lambda: SECRET)
    tools.certipy()
    if not can_bind_privileged():
        pytest.skip("certipy -dcom only knows port 135 (needs root)")
    code, document, run = probe(tmp_path, "--client", str(EXAMPLES / "certipy.toml"), port=135)
    assert code == 1, capsys.readouterr().err  # a MUST failed
    assert document["run"]["client"]["exit_status"] == 0  # certipy itself got its certificate
    cases = {c["id"]: c for c in document["cases"]}
    provider = cases["wcce/2.1/client/security-provider"]
    assert provider["verdict"] == "FAIL" and provider["actual"] == "auth_type 10"
    (check,) = provider["checks"]
    assert check["requirement"] == "WCCE-T-06" and check["evidence"]
    ladder = {p["n"]: p for p in provider["evidence"]["ladder"]}
    assert all(ladder[n]["auth"]["type"] == 10 for n in check["evidence"])  # the PDUs that prove it
    for right in ("wcce/2.1/client/interface-version", "wcce/1.9/client/activation-clsid",
                  "wcce/2.1/client/auth-level", "wcce/2.1/client/identity", "wcce/2.1/client/impersonation",
                  "dcom/3.2.4.2/client/object-uuid", "dcom/2.2.13.3/client/orpcthis"):
        assert cases[right]["verdict"] == "PASS", right
    assert cases["wcce/2.1/client/spnego-mechanism"]["verdict"] == "N/A"  # no SPNEGO at all
    html = (run / "report.html").read_text()
    assert "wcce/2.1/client/security-provider" in html and "Not conformant" in html
    password_free(run)


SECRET = "Probe-Secret-4711"


def password_free(run: pathlib.Path) -> None:
    """The lab password never lands in what the run wrote (the tests fix it to SECRET)."""
    command = json.loads((run / "results.json").read_text())["run"]["client"]["command"]
    assert command[command.index("-p") + 1] == "{password}"
    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("mode, case, verdict", [
    ("client-raw-ntlm", "wcce/2.1/client/security-provider", "FAIL"),
    ("client-level-5", "wcce/2.1/client/auth-level", "WARN"),
    ("client-identify", "wcce/2.1/client/impersonation", "FAIL"),
    ("client-anonymous", "wcce/2.1/client/identity", "FAIL"),
    ("client-version-1.0", "wcce/2.1/client/interface-version", "FAIL"),
    ("client-auth-pad-8", "rpce/2.2.2.11/client/auth-padding", "FAIL"),
    # with a throwaway realm beside the CA
    ("client-kerberos-activation-spn", "wcce/2.1/client/kerberos-spn", "FAIL"),
    ("client-kerberos-identify", "wcce/2.1/client/impersonation", "FAIL"),
    ("client-kerberos-raw", "wcce/2.1/client/security-provider", "FAIL"),
    ("client-kerberos-no-conf", "wcce/2.1/client/privacy-requested", "WARN"),
])
def test_each_client_check_catches_its_client_mutant(tmp_path, capsys, mode, case, verdict):
    client = ["--kerberos", "--", *OURS_KERBEROS] if "kerberos" in mode else ["--", *OURS]
    code, document, _ = probe(tmp_path, "--strict", *client, "--client-mode", mode)
    assert verdicts(document)[case] == verdict, capsys.readouterr().err
    others = {cid: v for cid, v in verdicts(document).items() if cid != case and v in ("FAIL", "WARN")}
    assert code == (1 if verdict == "FAIL" else 4), (code, others)


def test_our_client_over_kerberos_has_its_kerberos_cases_judged(tmp_path, capsys):
    code, document, run = probe(tmp_path, "--client", str(EXAMPLES / "ours-kerberos.toml"))
    assert code == 0, capsys.readouterr().err
    cases = {c["id"]: c for c in document["cases"]}
    spn = cases["wcce/2.1/client/kerberos-spn"]
    assert spn["verdict"] == "PASS" and "RPCSS/" in spn["actual"]
    assert "Kerberos checksums" in cases["wcce/2.1/client/impersonation"]["actual"]
    assert cases["rpce/3.3.1.5.2.2/client/confidentiality"]["verdict"] == "PASS"  # unsealed with the keytab
    assert cases["wcce/2.1/client/identity"]["actual"].endswith("@LAB.TEST")
    assert [cid for cid, c in cases.items() if c["verdict"] == "N/A"] == ["wcce/2.1/client/resolver-level"]


def test_certipy_over_kerberos_in_the_domain_is_scored_with_its_spns_judged(tmp_path, capsys):
    """certipy req -dcom -k against the reference CA as computer CA01$ of the lab's AD domain."""
    from conformance.targets.domain import domain_wanted

    tools.certipy()
    if not can_bind_privileged():
        pytest.skip("certipy -dcom only knows port 135 (needs root)")
    if not domain_wanted():
        pytest.skip("the lab's AD domain needs Samba and root (bash .ci/install)")
    code, document, run = probe(tmp_path, "--client", str(EXAMPLES / "certipy-kerberos.toml"), port=135)
    err = capsys.readouterr().err
    assert document["run"]["client"]["exit_status"] == 0, err  # certipy got its certificate
    assert (run / "certipy.pfx").stat().st_size > 0
    assert not (run / "krb5cc").exists()  # the client's tickets do not stay in the report
    cases = {c["id"]: c for c in document["cases"]}
    assert not [cid for cid, c in cases.items() if c["verdict"] == "ERROR"]
    assert cases["wcce/2.1/client/security-provider"]["verdict"] == "PASS"  # SPNEGO (9) carrying Kerberos
    assert cases["wcce/2.1/client/spnego-mechanism"]["actual"].startswith("Kerberos")
    # judged, not N/A: certipy asks HOST/ for the activation too, where [MS-DCOM] 3.2.4.1.1.2 says RPCSS/
    spn = cases["wcce/2.1/client/kerberos-spn"]
    assert spn["verdict"] == "FAIL" and "HOST/" in spn["actual"]
    for judged in ("wcce/2.1/client/impersonation", "wcce/2.1/client/privacy-requested",
                   "rpce/3.3.1.5.2.2/client/confidentiality", "wcce/2.1/client/identity"):
        assert cases[judged]["verdict"] == "PASS", (judged, cases[judged]["actual"])
    assert "Kerberos checksums" in cases["wcce/2.1/client/impersonation"]["actual"]
    assert code == 1


def test_kerberos_placeholders_need_kerberos(tmp_path, capsys):
    code, _, _ = probe(tmp_path, "--", "{python}", "-c", "pass", "{realm}")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "{realm}" not in err[-1].split("known:")[1]


def test_a_client_that_sends_nothing_gets_no_verdict(tmp_path, capsys):
    code, document, _ = probe(tmp_path, "--", "{python}", "-c", "pass")
    assert code == 6  # the connection failed, not the client's conformance
    assert set(verdicts(document).values()) == {"N/A"}
    assert "sent nothing" in capsys.readouterr().err


@pytest.mark.parametrize("args, fragment", [
    ([], "name the client under test"),
    (["--client", "x.toml", "--", "true"], "not both"),
    (["--", "{nope}"], "placeholder"),
    (["--", "/nonexistent/client"], "cannot run /nonexistent/client"),
])
def test_bad_invocations_are_one_line(tmp_path, capsys, args, fragment):
    if args[:1] == ["--client"]:
        (tmp_path / "x.toml").write_text('[client]\ncommand = ["true"]\n')
        args = ["--client", str(tmp_path / "x.toml"), *args[2:]]
    code, _, _ = probe(tmp_path, *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and fragment in err[-1] and "Traceback" not in "\n".join(err)


def test_client_profile_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[client]\ncommand = "certipy"\n')
    assert probe(tmp_path, "--client", str(bad))[0] == 2
    assert "client.command must be a non-empty list" in capsys.readouterr().err
    bad.write_text('[client]\ncommand = ["true"]\nkerberos = "yes"\n')
    assert probe(tmp_path, "--client", str(bad))[0] == 2
    assert "client.kerberos must be true or false" in capsys.readouterr().err


def test_impacket_is_scored(tmp_path, capsys):
    if not can_bind_privileged():
        pytest.skip("impacket's DCOMConnection only knows port 135 (needs root)")
    code, document, _ = probe(tmp_path, "--client", str(EXAMPLES / "impacket.toml"), port=135)
    assert document["run"]["client"]["exit_status"] == 0, capsys.readouterr().err
    v = verdicts(document)
    assert v["wcce/2.1/client/security-provider"] == "FAIL"  # raw NTLM (10), like certipy
    assert v["wcce/2.1/client/interface-version"] == "PASS" and code == 1
