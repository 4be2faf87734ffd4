"""The wire checks (conformance.judge.checks) on recorded transcripts, no sockets.

Each check PASSes on the conformant client, FAILs (WARNs for a SHOULD) on the recording
that breaks its requirement with the offending PDUs as evidence, and is N/A where its
subject never went on the wire.  The recordings are real bytes of the suite's client and
the reference CA (tests/support/recorded.py, tests/data/transcripts/); the server-side
faults no client mode can produce are made by naming the field a recorded reply changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import pytest

from conformance.judge.checks import CHECKS, CheckContext, run_check
from conformance.model.catalogue import check_requirements, load_catalogue
from conformance.model.verdicts import Direction, Level, Side, Verdict
from conformance.wire.framing import CommonHeader
from conformance.wire.protection import Mechanism, PduLayout, SecTrailer, signature_bit_flipped
from conformance.wire.rpc import PfcFlag
from conformance.wire.transcript import Transcript, build_transcript
from tests.support.recorded import SCENARIOS, Recording, load, read

REQUIREMENT = check_requirements(load_catalogue())

#: C706 12.6.3.1: rpc_vers, rpc_vers_minor, PTYPE, pfc_flags — the flags are the 4th octet
PFC_FLAGS_AT = 3


# -- what the server-side faults look like, made from recorded replies -----------------------


def header_sign_granted(rec: Recording, index: int) -> Recording:
    """The server's bind_ack ``index`` echoing PFC_SUPPORT_HEADER_SIGN (mutant header-sign-unrequested)."""
    raw = bytearray(rec.transcript(keys=False).pdus[index].raw)
    raw[PFC_FLAGS_AT] |= PfcFlag.SUPPORT_HEADER_SIGN
    return rec.with_pdu(index, bytes(raw))


def auth_type_swapped(rec: Recording, index: int) -> Recording:
    """PDU ``index`` naming raw NTLM (10) in its sec_trailer (mutant wrong-auth-type)."""
    return rec.with_pdu(index, SecTrailer.patched(rec.transcript(keys=False).pdus[index].raw, auth_type=10))


def body_overwritten(rec: Recording, index: int, data: bytes) -> Recording:
    """PDU ``index`` with the first bytes of its body (stub, as sealed) replaced by ``data``."""
    raw = rec.transcript(keys=False).pdus[index].raw
    header = CommonHeader.parse(raw)
    start = PduLayout.of(raw, header, SecTrailer.parse(raw, header)).header_len
    return rec.with_pdu(index, raw[:start] + data + raw[start + len(data):])


def tampered(rec: Recording, index: int) -> Recording:
    """A sealed body with one bit flipped: it no longer verifies."""
    raw = rec.transcript(keys=False).pdus[index].raw
    header = CommonHeader.parse(raw)
    start = PduLayout.of(raw, header, SecTrailer.parse(raw, header)).header_len
    return body_overwritten(rec, index, bytes([raw[start] ^ 0x01]))


def signature_corrupted(rec: Recording, index: int) -> Recording:
    """PDU ``index`` with one bit of its NTLM checksum flipped (mutant corrupt-response-signature)."""
    raw = rec.transcript(keys=False).pdus[index].raw
    return rec.with_pdu(index, signature_bit_flipped(raw, Mechanism.NTLM))


def ca_name_in_clear(rec: Recording, index: int) -> Recording:
    """A sealed body that carries the CA name in clear (mutant plaintext-at-privacy)."""
    return body_overwritten(rec, index, rec.ca_name.encode("utf-16-le"))


# -- the tables -----------------------------------------------------------------------------


_PATCHED: dict[str, Transcript] = {}  # patched recordings, read once (frozen values)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    check: str
    recording: str
    verdict: Verdict
    evidence: Mapping[int, str] = dataclasses.field(default_factory=dict)  # PDU index -> "c2s bind" …
    actual: str | None = None
    patch: Callable[[Recording], Recording] | None = None
    label: str = ""  # what the patch changes
    conns: tuple[int, ...] | None = None
    directions: tuple[Direction, ...] | None = None

    @property
    def id(self) -> str:
        return f"{self.check}@{self.recording}" + (f"+{self.label}" if self.label else "") + (
            f"/conn{','.join(map(str, self.conns))}" if self.conns else "") + (
            "/" + ",".join(d.value for d in self.directions) if self.directions else "")

    def transcript(self) -> Transcript:
        assert (self.patch is None) == (not self.label), "a patched row says what it changes"
        if self.patch is None:
            return read(self.recording, conns=self.conns, directions=self.directions)
        if self.id not in _PATCHED:
            _PATCHED[self.id] = self.patch(load(self.recording)).transcript(conns=self.conns,
                                                                           directions=self.directions)
        return _PATCHED[self.id]

    def result(self, **context):
        return run_check(self.check, self.transcript(), load(self.recording).context(**context))


#: The conformant client: every check PASSes, or records (INFO) what it only observes.
PASSING = [Row(check=check, recording="conformant", verdict=Verdict.PASS) for check in (
    "interface-version", "security-provider", "auth-level", "privacy-requested", "impersonation-flags",
    "not-anonymous", "even-legs", "orpc-object-uuid", "orpcthis", "request-returns-zero", "activation-clsid",
    "activation-iids", "activation-level", "resolver-level", "auth-type-consistent", "auth-padding",
    "stub-confidentiality", "response-protection")] + [
    Row(check="spnego-mechanism", recording="conformant", verdict=Verdict.INFO, actual="NTLM",
        evidence={4: "c2s bind", 10: "c2s bind", 16: "c2s bind"}),
    Row(check="header-signing", recording="conformant", verdict=Verdict.INFO,
        actual="requested/granted, requested/granted, requested/granted"),
    Row(check="header-signing", recording="no-header-signing", verdict=Verdict.INFO,
        actual="not requested/not granted"),
    Row(check="kerberos-spn", recording="kerberos", verdict=Verdict.PASS,
        actual="tickets for RPCSS/ca01.lab.test, host/ca01.lab.test"),
    Row(check="spnego-mechanism", recording="kerberos", verdict=Verdict.INFO, actual="Kerberos (MS)",
        evidence={0: "c2s bind", 6: "c2s bind"}),
]

#: The recording that breaks each check's requirement, and the PDUs that show it.
BREAKING = [
    Row(check="interface-version", recording="version-1.0", verdict=Verdict.FAIL,
        evidence={6: "c2s bind", 8: "c2s alter_context", 10: "c2s alter_context"},
        actual="offered ICertRequestD v1.0"),
    Row(check="interface-version", recording="replies", verdict=Verdict.FAIL,
        evidence={4: "c2s alter_context"}, actual="offered IObjectExporter v1.0"),
    Row(check="security-provider", recording="raw-ntlm", verdict=Verdict.FAIL,
        evidence={0: "c2s bind", 2: "c2s auth3", 5: "c2s bind", 7: "c2s auth3"}, actual="auth_type 10"),
    Row(check="auth-level", recording="level-5", verdict=Verdict.WARN,
        evidence={6: "c2s bind", 8: "c2s alter_context", 10: "c2s request", 11: "s2c response"},
        actual="auth_level 5 seen"),
    Row(check="auth-level", recording="level-2", verdict=Verdict.WARN,
        evidence={6: "c2s bind", 8: "c2s alter_context", 10: "c2s request"},
        actual="auth_level 2 seen"),  # at CONNECT the request carries no sec_trailer
    Row(check="privacy-requested", recording="no-seal-flag", verdict=Verdict.WARN,
        evidence={0: "c2s bind"}, actual="SEAL/SIGN or CONF/INTEG missing"),
    Row(check="impersonation-flags", recording="identify", verdict=Verdict.FAIL,
        evidence={0: "c2s bind", 6: "c2s bind"},
        actual="flags that do not match impersonation level 3"),
    Row(check="not-anonymous", recording="anonymous", verdict=Verdict.FAIL,
        evidence={6: "c2s alter_context"}, actual="anonymous authentication"),
    Row(check="even-legs", recording="spnego-auth3", verdict=Verdict.FAIL,
        evidence={6: "c2s auth3"}, actual="rpc_auth3 on a SPNEGO context"),
    Row(check="header-signing", recording="no-header-signing", verdict=Verdict.FAIL,
        patch=lambda rec: header_sign_granted(rec, 1), label="header-sign-granted", evidence={1: "s2c bind_ack"},
        actual="not requested/granted"),
    Row(check="orpc-object-uuid", recording="no-object-uuid", verdict=Verdict.FAIL,
        evidence={10: "c2s request"}, actual="ORPC without object UUID"),
    Row(check="orpcthis", recording="orpcthis-flags", verdict=Verdict.FAIL,
        evidence={10: "c2s request"}, actual="flags 1"),
    Row(check="request-returns-zero", recording="level-5", verdict=Verdict.FAIL,
        evidence={11: "s2c response"}, actual="0x80070005"),
    Row(check="activation-clsid", recording="wrong-class", verdict=Verdict.FAIL,
        evidence={4: "c2s request"}, actual="6f0b7c1e-2c8b-4d0e-9a53-7c1c0b6d2a11"),
    Row(check="activation-iids", recording="foreign-iid", verdict=Verdict.WARN,
        evidence={4: "c2s request"}, actual="0000010b-0000-0000-c000-000000000046"),
    Row(check="activation-level", recording="activation-connect", verdict=Verdict.FAIL,
        evidence={4: "c2s bind", 6: "c2s alter_context"}, actual="activation below PKT_INTEGRITY"),
    Row(check="resolver-level", recording="resolve-connect", verdict=Verdict.FAIL,
        evidence={10: "c2s request"}, actual="below PKT_INTEGRITY"),
    Row(check="kerberos-spn", recording="kerberos-activation-spn", verdict=Verdict.FAIL,
        evidence={0: "c2s bind"}, actual="tickets for host/ca01.lab.test"),
    Row(check="auth-type-consistent", recording="conformant", verdict=Verdict.FAIL,
        patch=lambda rec: auth_type_swapped(rec, 21), label="response-auth-type-10", evidence={21: "s2c response"},
        actual="#21 response auth_type 10"),
    Row(check="auth-type-consistent", recording="conformant", verdict=Verdict.FAIL,
        patch=lambda rec: auth_type_swapped(rec, 6), label="alter-auth-type-10", evidence={6: "c2s alter_context"},
        actual="#6 alter_context auth_type 10"),
    Row(check="auth-padding", recording="auth-pad-8", verdict=Verdict.FAIL,
        evidence={4: "c2s request", 10: "c2s request"},
        actual="a sec_trailer not 16-byte aligned from the start of the PDU body"),
    Row(check="stub-confidentiality", recording="conformant", verdict=Verdict.FAIL,
        patch=lambda rec: tampered(rec, 20), label="request-tampered", evidence={20: "c2s request"},
        actual="sealed PDUs that do not verify or decode [20]"),
    Row(check="stub-confidentiality", recording="conformant", verdict=Verdict.FAIL,
        patch=lambda rec: ca_name_in_clear(rec, 21), label="response-plaintext", evidence={21: "s2c response"},
        actual="plaintext in sealed PDUs [21]"),  # that it does not verify is response-protection's
    Row(check="response-protection", recording="conformant", verdict=Verdict.FAIL,
        patch=lambda rec: signature_corrupted(rec, 21), label="response-signature-flipped",
        evidence={21: "s2c response"},
        actual="1 of 3 responses to protected calls do not verify: #21 does not verify"),
    Row(check="response-protection", recording="conformant", verdict=Verdict.FAIL,
        patch=lambda rec: rec.with_pdu(21, SecTrailer.patched(rec.transcript(keys=False).pdus[21].raw,
                                                              auth_level=1)),
        label="response-level-none", evidence={21: "s2c response"},
        actual="1 of 3 responses to protected calls do not verify: #21 answers a request protected at level 6 "
               "at level 1"),
    Row(check="response-protection", recording="conformant", verdict=Verdict.FAIL,
        patch=lambda rec: tampered(rec, 9), label="activation-response-tampered",
        evidence={9: "s2c response"},
        actual="1 of 3 responses to protected calls do not verify: #9 does not verify"),
]

_ALIVE = (1,)  # the conformant recording's first connection: ServerAlive2, unauthenticated
_EXPORTER = (4,)  # … and its last: the ORPC connection to the object exporter

#: Where each check's subject never went on the wire.
ABSENT = [
    Row(check="interface-version", recording="conformant", verdict=Verdict.NA,
        directions=(Direction.TO_CLIENT,)),  # the server's half: no p_cont_elem offered
    Row(check="security-provider", recording="conformant", verdict=Verdict.NA, conns=_ALIVE),
    Row(check="spnego-mechanism", recording="raw-ntlm", verdict=Verdict.NA, actual="no SPNEGO context"),
    Row(check="auth-level", recording="raw-ntlm", verdict=Verdict.NA),  # no WCCE connection
    Row(check="privacy-requested", recording="level-5", verdict=Verdict.NA),
    Row(check="impersonation-flags", recording="conformant", verdict=Verdict.NA, conns=_ALIVE),
    Row(check="impersonation-flags", recording="kerberos", verdict=Verdict.NA,
        actual="Kerberos checksum encrypted: the target's service key is not known"),
    Row(check="not-anonymous", recording="conformant", verdict=Verdict.NA, conns=_ALIVE),
    Row(check="even-legs", recording="raw-ntlm", verdict=Verdict.NA),
    Row(check="header-signing", recording="conformant", verdict=Verdict.NA, conns=_ALIVE,
        actual="no security context"),
    Row(check="orpc-object-uuid", recording="raw-ntlm", verdict=Verdict.NA),
    Row(check="orpcthis", recording="raw-ntlm", verdict=Verdict.NA),
    Row(check="request-returns-zero", recording="level-2", verdict=Verdict.NA),  # the Request faulted
    Row(check="activation-clsid", recording="anonymous", verdict=Verdict.NA),  # refused before the call
    Row(check="activation-iids", recording="anonymous", verdict=Verdict.NA),
    Row(check="activation-level", recording="conformant", verdict=Verdict.NA, conns=_EXPORTER),
    Row(check="resolver-level", recording="no-object-uuid", verdict=Verdict.NA),
    Row(check="kerberos-spn", recording="conformant", verdict=Verdict.NA),
    Row(check="auth-type-consistent", recording="conformant", verdict=Verdict.NA, conns=_ALIVE),
    Row(check="auth-padding", recording="anonymous", verdict=Verdict.NA),
    Row(check="stub-confidentiality", recording="conformant", verdict=Verdict.NA, conns=_ALIVE),
    Row(check="response-protection", recording="replies", verdict=Verdict.NA,
        actual="no protected response on the wire"),  # unauthenticated calls only
]

#: Checks that only record what they saw (INFO), never judge: no recording can break them.
RECORD_ONLY = {"spnego-mechanism": "NTLM and Kerberos are both allowed under SPNEGO"}


def _shown(t: Transcript, evidence) -> dict[int, str]:
    return {i: f"{t.pdus[i].direction.value} {t.pdus[i].ptype_name}" for i in evidence}


# -- the tests ------------------------------------------------------------------------------


#: Checks that judge what the engine observed beside the wire (tests/unit/judge/test_effects.py)
NOT_ON_THE_WIRE = {"refusal-effect": "judges the request IDs around a refusal, not a transcript"}


def test_every_check_has_a_passing_a_breaking_and_an_absent_recording():
    passing = {r.check for r in PASSING if r.verdict in (Verdict.PASS, Verdict.INFO)}
    breaking = {r.check for r in BREAKING if r.verdict in (Verdict.FAIL, Verdict.WARN)}
    absent = {r.check for r in ABSENT if r.verdict is Verdict.NA}
    wire = set(CHECKS) - set(NOT_ON_THE_WIRE)
    assert sorted(wire - passing) == []
    assert sorted(wire - breaking) == sorted(RECORD_ONLY)
    assert sorted(wire - absent) == []
    assert {r.check for r in PASSING + BREAKING + ABSENT} <= set(CHECKS)


@pytest.mark.parametrize("row", PASSING, ids=lambda r: r.id)
def test_conformant_recording_passes(row):
    result = row.result()
    assert (result.check, result.requirement) == (row.check, REQUIREMENT[row.check].id)
    assert result.verdict is row.verdict, result.actual
    if row.verdict is Verdict.PASS:
        assert result.evidence == ()
    else:
        assert _shown(row.transcript(), result.evidence) == dict(row.evidence)
    if row.actual is not None:
        assert result.actual == row.actual


@pytest.mark.parametrize("row", BREAKING, ids=lambda r: r.id)
def test_breaking_recording_fails_with_the_offending_pdus(row):
    # a MUST broken is FAIL, a SHOULD WARN: the table agrees with the catalogue
    assert row.verdict is REQUIREMENT[row.check].level.violation
    result = row.result()
    assert (result.check, result.requirement) == (row.check, REQUIREMENT[row.check].id)
    assert result.verdict is row.verdict, result.actual
    assert result.evidence == tuple(sorted(row.evidence))
    assert _shown(row.transcript(), result.evidence) == dict(row.evidence)
    assert result.actual == row.actual
    assert result.expected  # every acceptable alternative is named


@pytest.mark.parametrize("row", ABSENT, ids=lambda r: r.id)
def test_absent_subject_is_not_applicable(row):
    result = row.result()
    assert (result.check, result.requirement) == (row.check, REQUIREMENT[row.check].id)
    assert result.verdict is Verdict.NA, result.actual
    assert result.evidence == ()
    assert result.actual == (row.actual or "not exercised on the wire")


def test_the_should_checks_warn_and_the_must_checks_fail():
    levels = {r.check: REQUIREMENT[r.check].level for r in BREAKING}
    assert {c for c, level in levels.items() if level is Level.SHOULD} == {
        "auth-level", "privacy-requested", "activation-iids"}
    assert {r.verdict for r in BREAKING if levels[r.check] is Level.SHOULD} == {Verdict.WARN}
    assert {r.verdict for r in BREAKING if levels[r.check] is Level.MUST} == {Verdict.FAIL}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recordings_read_cleanly(name):
    """The data itself: every byte frames, every PDU decodes, every NTLM-protected PDU
    verifies with the lab account's NT hash (Kerberos ones stay unread: no keytab saved)."""
    t = read(name)
    assert t.garbage == ()
    assert [p.index for p in t.pdus if p.error] == []
    protected = [p for p in t.pdus if p.protected]
    if load(name).client.get("provider", "spnego-ntlm") in ("spnego-ntlm", "ntlm"):
        assert [p.index for p in protected if p.verified is not True] == []
    else:
        assert protected and {p.verified for p in protected} == {None}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_check_errors_and_each_names_its_requirement_on_any_recording(name):
    t, rec = read(name), load(name)
    for check in CHECKS:
        result = run_check(check, t, rec.context())
        assert result.verdict is not Verdict.ERROR, (check, result.actual)
        assert result.requirement == REQUIREMENT[check].id
        assert all(0 <= i < len(t.pdus) for i in result.evidence)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_record_only_checks_never_judge(name):
    for check in RECORD_ONLY:
        assert run_check(check, read(name), load(name).context()).verdict in (Verdict.INFO, Verdict.NA)


# -- what the case tells its checks ---------------------------------------------------------


def test_impersonation_is_judged_against_the_level_the_client_meant():
    identify = Row(check="impersonation-flags", recording="identify", verdict=Verdict.PASS)
    assert identify.result(impersonation=2).verdict is Verdict.PASS
    conformant = Row(check="impersonation-flags", recording="conformant", verdict=Verdict.FAIL)
    result = conformant.result(impersonation=2)
    assert result.verdict is Verdict.FAIL
    assert _shown(read("conformant"), result.evidence) == {4: "c2s bind", 10: "c2s bind", 16: "c2s bind"}


def test_auth_level_is_judged_against_the_expected_level():
    row = Row(check="auth-level", recording="level-5", verdict=Verdict.PASS)
    assert row.result(expected_level=5).verdict is Verdict.PASS
    assert Row(check="auth-level", recording="conformant", verdict=Verdict.WARN).result(
        expected_level=5).verdict is Verdict.WARN


@pytest.mark.parametrize(("side", "verdict"), [(Side.BOTH, Verdict.FAIL), (Side.SERVER, Verdict.FAIL),
                                               (Side.CLIENT, Verdict.PASS)])
def test_auth_type_consistency_judges_the_side_asked(side, verdict):
    rec = auth_type_swapped(load("conformant"), 21)  # a server response
    result = run_check("auth-type-consistent", rec.transcript(), rec.context(side=side))
    assert result.verdict is verdict
    assert result.evidence == ((21,) if verdict is Verdict.FAIL else ())


def test_auth_padding_judges_the_client_unless_the_case_judges_the_server():
    rec = load("auth-pad-8")
    assert run_check("auth-padding", read("auth-pad-8"), rec.context(side=Side.SERVER)).verdict is Verdict.PASS
    assert run_check("auth-padding", read("auth-pad-8"), rec.context(side=Side.BOTH)).verdict is Verdict.FAIL


def test_sealed_stubs_without_keys_are_inconclusive_never_pass():
    rec = load("conformant")
    result = run_check("stub-confidentiality", read("conformant", keys=False), rec.context())
    assert result.verdict is Verdict.INCONCLUSIVE
    assert _shown(read("conformant"), result.evidence) == {
        8: "c2s request", 9: "s2c response", 20: "c2s request", 21: "s2c response"}
    assert result.actual == "4 sealed PDUs could not be unsealed (no keys)"


def test_a_response_that_does_not_verify_is_response_protections_finding_not_confidentialitys():
    """A sealed response that does not verify fails RPCE-PROT-02 (response-protection);
    stub-confidentiality cannot tell whether it would unseal to its NDR and says so."""
    rec = signature_corrupted(load("conformant"), 21)
    t = rec.transcript()
    assert run_check("response-protection", t, rec.context()).verdict is Verdict.FAIL
    result = run_check("stub-confidentiality", t, rec.context())
    assert (result.verdict, result.evidence) == (Verdict.INCONCLUSIVE, (21,))
    assert result.actual == "1 sealed responses do not verify (response-protection judges them)"


@pytest.mark.parametrize("name", ["conformant", "kerberos"])
def test_responses_without_keys_are_inconclusive_never_pass(name):
    """No NT hash (or, for the Kerberos recording, no keytab): nothing verifies, nothing passes."""
    result = run_check("response-protection", read(name, keys=False), load(name).context())
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.actual.endswith("protected responses could not be verified (no keys for their security context)")
    assert all(read(name).pdus[i].ptype_name == "response" for i in result.evidence)


def test_unsealed_stubs_must_show_the_calls_plaintext():
    """Below privacy the known values of the call are visible; a stub that shows none of
    them is not what the case sent."""
    rec = load("level-5")
    assert run_check("stub-confidentiality", read("level-5"), rec.context()).verdict is Verdict.PASS
    result = run_check("stub-confidentiality", read("level-5"), rec.context(plaintexts=(b"not in any call",)))
    assert result.verdict is Verdict.FAIL
    assert _shown(read("level-5"), result.evidence) == {10: "c2s request", 11: "s2c response"}
    assert result.actual == "no known plaintext in the unsealed stubs"


def test_a_check_that_raises_is_an_error_result(monkeypatch):
    def broken(t, c):
        raise KeyError("bug")

    monkeypatch.setitem(CHECKS, "orpcthis", broken)
    result = run_check("orpcthis", read("conformant"), CheckContext())
    assert (result.verdict, result.requirement, result.actual) == (
        Verdict.ERROR, REQUIREMENT["orpcthis"].id, "check raised KeyError: 'bug'")


def test_an_empty_transcript_is_not_applicable_to_every_check():
    """No PDU at all: nothing is judged, nothing passes."""
    empty = build_transcript([], [])
    verdicts = {check: run_check(check, empty, CheckContext()).verdict for check in CHECKS}
    assert verdicts == {check: Verdict.NA for check in CHECKS}


# -- defects found by these tests and fixed: the sealed-subject and pure-interface-change rules --


def test_a_pure_interface_change_keeps_the_level_of_its_security_context():
    t = read("second-interface")
    assert _shown(t, (10,)) == {10: "c2s alter_context"} and t.pdus[10].sec_trailer is None
    result = run_check("auth-level", t, load("second-interface").context())
    assert result.verdict is Verdict.PASS, (result.evidence, result.actual)


@pytest.mark.parametrize("check", ["activation-clsid", "activation-iids", "orpcthis", "request-returns-zero"])
def test_a_sealed_subject_without_keys_is_inconclusive(check):
    result = run_check(check, read("conformant", keys=False), load("conformant").context())
    assert result.verdict is Verdict.INCONCLUSIVE, result.actual
