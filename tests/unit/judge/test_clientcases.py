"""Judging a client from what it sent (conformance.judge.clientcases.judge_client) with
the shipped client cases (cases/client/), on recorded transcripts of the suite's own
client: conformant, and in modes that break one requirement each."""

from __future__ import annotations

import dataclasses

import pytest

from conformance.judge.clientcases import judge_client
from conformance.model.cases import load_client_cases
from conformance.model.catalogue import load_catalogue
from conformance.model.verdicts import Level, Verdict, strongest
from conformance.wire.protection import SecTrailer
from tests.support.recorded import Recording, load, read

CATALOGUE = load_catalogue()
CASES = load_client_cases(CATALOGUE)
NEVER_DID = "the client never did what this case is about: the run has no verdict"


def judged(name: str, *, transcript=None, cases=CASES) -> dict[str, tuple]:
    rec: Recording = load(name)
    results = judge_client(read(name) if transcript is None else transcript, cases, CATALOGUE,
                           ca_name=rec.ca_name, template=rec.template, exporter_spn=rec.exporter_spn)
    return {item.case.id: (item, result) for item, result in results}


def verdicts(name: str) -> dict[str, Verdict]:
    return {cid: result.verdict for cid, (_, result) in judged(name).items()}


def case(cid: str):
    return next(c for c in CASES if c.case.id == cid)


#: The conformant client: every case PASSes or records (INFO); Kerberos is not exercised.
CONFORMANT = {
    "wcce/2.1/client/security-provider": Verdict.PASS,
    "wcce/2.1/client/spnego-mechanism": Verdict.INFO,
    "wcce/2.1/client/auth-level": Verdict.PASS,
    "wcce/2.1/client/privacy-requested": Verdict.PASS,
    "wcce/2.1/client/impersonation": Verdict.PASS,
    "wcce/2.1/client/identity": Verdict.PASS,
    "wcce/2.1/client/interface-version": Verdict.PASS,
    "wcce/1.9/client/activation-clsid": Verdict.PASS,
    "wcce/2.1/client/activation-iids": Verdict.PASS,
    "wcce/2.1/client/activation-level": Verdict.PASS,
    "wcce/2.1/client/resolver-level": Verdict.PASS,
    "wcce/2.1/client/kerberos-spn": Verdict.NA,
    "wcce/2.1/client/even-legs": Verdict.PASS,
    "wcce/2.1/client/header-signing": Verdict.INFO,
    "dcom/3.2.4.2/client/object-uuid": Verdict.PASS,
    "dcom/2.2.13.3/client/orpcthis": Verdict.PASS,
    "rpce/2.2.2.11/client/auth-type": Verdict.PASS,
    "rpce/2.2.2.11/client/auth-padding": Verdict.PASS,
    "rpce/3.3.1.5.2.2/client/confidentiality": Verdict.PASS,
}


def test_the_conformant_client_passes_every_case():
    assert verdicts("conformant") == CONFORMANT
    for cid, (item, result) in judged("conformant").items():
        assert result.reason == "", cid
        assert result.requirements == item.case.requirements
        assert result.expected == ("client conformant",)
        assert [c.check for c in result.checks] == list(item.case.checks)
        assert result.actual == "; ".join(c.actual for c in result.checks)
        assert result.level is strongest(CATALOGUE[r].level for r in item.case.requirements)
    levels = {cid: result.level for cid, (_, result) in judged("conformant").items()}
    assert {cid for cid, level in levels.items() if level is Level.SHOULD} == {
        "wcce/2.1/client/auth-level", "wcce/2.1/client/privacy-requested", "wcce/2.1/client/activation-iids"}


#: One broken requirement each: (recording, case) -> verdict and reason.
BROKEN = [
    ("raw-ntlm", "wcce/2.1/client/security-provider", Verdict.FAIL, "security-provider (WCCE-T-06): auth_type 10"),
    ("level-5", "wcce/2.1/client/auth-level", Verdict.WARN, "auth-level (WCCE-T-07): auth_level 5 seen"),
    ("no-seal-flag", "wcce/2.1/client/privacy-requested", Verdict.WARN,
     "privacy-requested (WCCE-T-09): SEAL/SIGN or CONF/INTEG missing"),
    ("identify", "wcce/2.1/client/impersonation", Verdict.FAIL,
     "impersonation-flags (WCCE-T-10): flags that do not match impersonation level 3"),
    ("anonymous", "wcce/2.1/client/identity", Verdict.FAIL, "not-anonymous (WCCE-T-11): anonymous authentication"),
    ("version-1.0", "wcce/2.1/client/interface-version", Verdict.FAIL,
     "interface-version (WCCE-T-02): offered ICertRequestD v1.0"),
    ("wrong-class", "wcce/1.9/client/activation-clsid", Verdict.FAIL,
     "activation-clsid (WCCE-T-04): 6f0b7c1e-2c8b-4d0e-9a53-7c1c0b6d2a11"),
    ("foreign-iid", "wcce/2.1/client/activation-iids", Verdict.WARN,
     "activation-iids (WCCE-T-05): 0000010b-0000-0000-c000-000000000046"),
    ("activation-connect", "wcce/2.1/client/activation-level", Verdict.FAIL,
     "activation-level (WCCE-T-22): activation below PKT_INTEGRITY"),
    ("resolve-connect", "wcce/2.1/client/resolver-level", Verdict.FAIL,
     "resolver-level (WCCE-T-23): below PKT_INTEGRITY"),
    ("kerberos-activation-spn", "wcce/2.1/client/kerberos-spn", Verdict.FAIL,
     "kerberos-spn (WCCE-T-12): tickets for host/ca01.lab.test"),
    ("spnego-auth3", "wcce/2.1/client/even-legs", Verdict.FAIL, "even-legs (WCCE-T-13): rpc_auth3 on a SPNEGO context"),
    ("no-object-uuid", "dcom/3.2.4.2/client/object-uuid", Verdict.FAIL,
     "orpc-object-uuid (WCCE-T-15): ORPC without object UUID"),
    ("orpcthis-flags", "dcom/2.2.13.3/client/orpcthis", Verdict.FAIL, "orpcthis (WCCE-T-16): flags 1"),
    ("auth-pad-8", "rpce/2.2.2.11/client/auth-padding", Verdict.FAIL,
     "auth-padding (RPCE-PAD-01): a sec_trailer not 16-byte aligned from the start of the PDU body"),
]


@pytest.mark.parametrize(("name", "cid", "verdict", "reason"), BROKEN, ids=[f"{b[0]}:{b[1]}" for b in BROKEN])
def test_a_client_breaking_one_requirement_fails_its_case(name, cid, verdict, reason):
    _, result = judged(name)[cid]
    assert (result.verdict, result.reason) == (verdict, reason)
    assert verdict is strongest(CATALOGUE[r].level for r in result.requirements).violation


@pytest.mark.parametrize(("name", "cid"), [
    pytest.param(name, cid, id=f"{name}:{cid}")
    for name, cid, _, _ in BROKEN])
def test_a_client_breaking_one_requirement_fails_only_that_case(name, cid):
    """The version-1.0 client retries its refused bind with an alter_context on the established
    security context: that is not a second fault."""
    others = {c: r.verdict for c, (_, r) in judged(name).items() if c != cid}
    assert not {Verdict.FAIL, Verdict.WARN, Verdict.ERROR} & set(others.values()), others


def test_every_judging_client_case_is_broken_by_some_recording():
    judging = {c.case.id for c in CASES} - {"wcce/2.1/client/spnego-mechanism", "wcce/2.1/client/header-signing",
                                            "rpce/2.2.2.11/client/auth-type",
                                            "rpce/3.3.1.5.2.2/client/confidentiality"}
    # spnego-mechanism and header-signing only record what a client does; no client mode of
    # ours breaks the auth_type or confidentiality rules (test_checks makes those from replies)
    assert judging == {cid for _, cid, _, _ in BROKEN}


def test_a_case_whose_subject_never_appeared_is_not_applicable():
    results = judged("raw-ntlm")  # activation only, raw NTLM: no ORPC, no SPNEGO
    for cid in ("dcom/3.2.4.2/client/object-uuid", "dcom/2.2.13.3/client/orpcthis",
                "wcce/2.1/client/auth-level"):
        item, result = results[cid]
        assert item.applies == "always"
        assert (result.verdict, result.reason) == (Verdict.NA, NEVER_DID), cid
        assert {c.verdict for c in result.checks} == {Verdict.NA}
    for cid in ("wcce/2.1/client/even-legs", "wcce/2.1/client/spnego-mechanism", "wcce/2.1/client/kerberos-spn"):
        item, result = results[cid]
        assert item.applies == "when-exercised"
        assert (result.verdict, result.reason) == (Verdict.NA, ""), cid


def test_only_record_checks_give_info_and_a_judging_check_decides():
    mixed = dataclasses.replace(case("wcce/2.1/client/security-provider"), case=dataclasses.replace(
        case("wcce/2.1/client/security-provider").case, checks=("spnego-mechanism", "security-provider")))
    info_only = case("wcce/2.1/client/spnego-mechanism")
    conformant = judged("conformant", cases=[mixed, info_only])
    assert conformant[mixed.case.id][1].verdict is Verdict.PASS  # INFO aside, the PASS decides
    assert conformant[info_only.case.id][1].verdict is Verdict.INFO
    raw = judged("raw-ntlm", cases=[mixed, info_only])
    assert raw[mixed.case.id][1].verdict is Verdict.FAIL  # N/A aside, the FAIL decides
    assert raw[info_only.case.id][1].verdict is Verdict.NA
    recorded = dataclasses.replace(info_only, case=dataclasses.replace(
        info_only.case, checks=("spnego-mechanism", "kerberos-spn")))
    _, result = judged("conformant", cases=[recorded])[recorded.case.id]
    assert [c.verdict for c in result.checks] == [Verdict.INFO, Verdict.NA]
    assert (result.verdict, result.reason) == (Verdict.INFO, "")  # something was recorded: not N/A


def test_the_client_is_judged_on_its_own_pdus_only():
    """A server PDU with the wrong auth_type is not the client's fault."""
    rec = load("conformant")
    raw = rec.transcript(keys=False).pdus[21].raw  # the server's Request response
    patched = rec.with_pdu(21, SecTrailer.patched(raw, auth_type=10)).transcript()
    _, result = judged("conformant", transcript=patched)["rpce/2.2.2.11/client/auth-type"]
    assert result.verdict is Verdict.PASS
    client_pdu = rec.with_pdu(20, SecTrailer.patched(rec.transcript(keys=False).pdus[20].raw, auth_type=10))
    _, result = judged("conformant", transcript=client_pdu.transcript())["rpce/2.2.2.11/client/auth-type"]
    assert (result.verdict, result.reason) == (
        Verdict.FAIL, "auth-type-consistent (RPCE-AUTH-01): #20 request auth_type 10")


def test_results_carry_the_ladder_and_the_connections():
    t = read("conformant")
    for _, result in judged("conformant").values():
        assert len(result.ladder) == len(t.pdus)
        assert len(result.connections) == len(t.connections)


def test_an_unreadable_activation_is_not_one_that_never_happened():
    results = judged("kerberos")  # sealed with Kerberos; the recording holds no keytab
    for cid in ("wcce/1.9/client/activation-clsid", "wcce/2.1/client/activation-iids"):
        _, result = results[cid]
        assert result.verdict is Verdict.INCONCLUSIVE and NEVER_DID not in result.reason, cid
