"""Wire checks: each reads a Transcript and returns a CheckResult, never asserts.

A check names the requirement it verifies (WCCE-T-nn, wcce-wire.md section 5),
what was expected (every acceptable alternative), what the wire showed, and the
PDUs that show it.  Violating a MUST gives FAIL, a SHOULD gives WARN; a check
whose subject never appeared on the wire gives N/A, and one that cannot decide
(no keys to read a sealed stub) gives INCONCLUSIVE — never PASS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from scapy.layers.dcerpc import RPC_C_AUTHN, RPC_C_AUTHN_LEVEL, RPC_C_IMP_LEVEL

from conformance.model.catalogue import Requirement, check_names, check_requirements, shipped_catalogue
from conformance.model.results import CheckResult
from conformance.model.verdicts import Direction, Side, Verdict
from conformance.wire import wcce
from conformance.wire.activation import requested_class
from conformance.wire.dcom import (
    IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR, IID_IREMUNKNOWN, IID_IREMUNKNOWN2, ObjectExporterOpnum,
    RemoteActivatorOpnum,
)
from conformance.wire.framing import CommonHeader
from conformance.wire.kerberos import GssFlag
from conformance.wire.passive import MECH_NAMES, NtlmFlag
from conformance.wire.protection import PduLayout, verifier_sequence
from conformance.wire.rpc import PfcFlag, PType
from conformance.wire.stubs import INTERFACES, interface_name
from conformance.wire.transcript import Transcript

__all__ = ["CheckContext", "CHECKS", "run_check", "wcce_connections", "WCCE_INTERFACES",
           "interface_version", "security_provider", "auth_type_consistent", "auth_level",
           "stub_confidentiality", "impersonation_flags", "privacy_requested", "kerberos_spn", "not_anonymous",
           "spnego_mechanism", "even_legs", "activation_clsid", "activation_iids", "activation_level",
           "resolver_level", "header_signing", "auth_padding", "orpc_object_uuid", "orpcthis",
           "request_returns_zero", "refusal_effect", "response_protection"]

WCCE_INTERFACES = frozenset({wcce.IID_ICERTREQUESTD, wcce.IID_ICERTREQUESTD2})
_CALLS = (PType.REQUEST, PType.RESPONSE)
_AUTH_PDUS = (PType.BIND, PType.ALTER_CONTEXT, PType.AUTH3)
_RESOLVER_CALLS = (ObjectExporterOpnum.RESOLVE_OXID, ObjectExporterOpnum.SIMPLE_PING,
                   ObjectExporterOpnum.COMPLEX_PING, ObjectExporterOpnum.RESOLVE_OXID2)


def _requirement(check: str) -> Requirement:
    """The requirement the check verifies, with its level: the catalogue says which."""
    return check_requirements(shipped_catalogue())[check]


def _found(check: str, verdict: Verdict, expected: Sequence[str], actual: str,
           evidence: Sequence[int] = ()) -> CheckResult:
    return CheckResult(check=check, requirement=_requirement(check).id, verdict=verdict,
                       expected=tuple(expected), actual=actual, evidence=tuple(evidence))


def _violation(check: str) -> Verdict:
    return _requirement(check).level.violation


def _result(check: str, expected: Sequence[str], bad: list[int],
            *, actual_ok: str, actual_bad: str, subjects: int, unreadable: Sequence[int] = ()) -> CheckResult:
    """FAIL/WARN when a subject breaks the rule; otherwise INCONCLUSIVE when some subjects
    were sealed and could not be read (no keys), N/A when there was none, else PASS."""
    if unreadable and not bad:
        return _found(check, Verdict.INCONCLUSIVE, expected,
                      f"{len(unreadable)} sealed PDUs could not be unsealed (no keys)", unreadable)
    if subjects == 0:
        return _found(check, Verdict.NA, expected, "not exercised on the wire")
    return _found(check, _violation(check) if bad else Verdict.PASS, expected,
                  actual_bad if bad else actual_ok, bad)


def wcce_connections(t: Transcript) -> set[int]:
    """Connections on which a WCCE interface (ICertRequestD/D2) was bound."""
    return {p.conn for p in t.of_type(PType.BIND, PType.ALTER_CONTEXT)
            if any(c.interface in WCCE_INTERFACES for c in p.contexts)}


# -- WCCE-T-02 ---------------------------------------------------------------------------


def interface_version(t: Transcript, *, expected: int = 0) -> CheckResult:
    """"The RPC version number for all interfaces MUST be 0.0" ([MS-WCCE] 2.1, [MS-DCOM] 2.1)."""
    offers = [(p, c) for p in t.of_type(PType.BIND, PType.ALTER_CONTEXT) for c in p.contexts]
    bad = [p for p, c in offers if c.if_version != expected]
    text = ", ".join(sorted({f"{interface_name(c.interface)} v{c.version_text}"
                             for p, c in offers if c.if_version != expected}))
    return _result("interface-version", [f"if_version 0x{expected:08x} (0.0) in every p_cont_elem"],
                   sorted({p.index for p in bad}), subjects=len(offers),
                   actual_ok=f"{len(offers)} contexts, all 0.0", actual_bad=f"offered {text}")


# -- WCCE-T-06 ---------------------------------------------------------------------------


def security_provider(t: Transcript, *, expected: int = RPC_C_AUTHN.GSS_NEGOTIATE) -> CheckResult:
    """"security provider RPC_C_AUTHN_GSS_NEGOTIATE" ([MS-WCCE] 2.1): the auth_type of
    every authenticated bind, alter_context and auth3 the client sent."""
    legs = [p for p in t.of_type(*_AUTH_PDUS) if p.sec_trailer is not None]
    bad = [p.index for p in legs if p.sec_trailer.auth_type != expected]
    seen = sorted({p.sec_trailer.auth_type for p in legs})
    return _result("security-provider", [f"auth_type {expected} (GSS_NEGOTIATE)"],
                   bad, subjects=len(legs), actual_ok=f"auth_type {expected} on {len(legs)} PDUs",
                   actual_bad=f"auth_type {', '.join(map(str, seen))}")


# -- RPCE: every sec_trailer of a security context carries its negotiated auth_type ---------


def auth_type_consistent(t: Transcript, *, side: Side = Side.BOTH) -> CheckResult:
    """[MS-RPCE] 2.2.2.11 / 3.3.1.5.2: all PDUs of a security context, in both
    directions, carry the auth_type negotiated when it was created."""
    negotiated = {(s.conn, s.context_id): s.auth_type for s in t.security}
    with_trailer = [p for p in t.pdus if p.sec_trailer is not None and side.covers(p.direction)
                    and (p.conn, p.sec_trailer.auth_context_id) in negotiated]
    bad = [p.index for p in with_trailer
           if p.sec_trailer.auth_type != negotiated[(p.conn, p.sec_trailer.auth_context_id)]]
    detail = "; ".join(f"#{i} {t.pdus[i].ptype_name} auth_type {t.pdus[i].sec_trailer.auth_type}"
                       for i in bad[:5])
    return _result("auth-type-consistent", ["the auth_type negotiated for the context, on every PDU of it"], bad,
                   subjects=len(with_trailer), actual_ok=f"{len(with_trailer)} sec_trailers agree",
                   actual_bad=detail)


# -- WCCE-T-07 -------------------------------------------------------------------------


def auth_level(t: Transcript, *, expected: int = RPC_C_AUTHN_LEVEL.PKT_PRIVACY) -> CheckResult:
    """"authentication level ... SHOULD be RPC_C_AUTHN_LEVEL_PKT_PRIVACY" ([MS-WCCE] 2.1):
    the level of the binds and of every request/response on WCCE connections."""
    conns = wcce_connections(t)
    # An alter_context without a sec_trailer only adds a presentation context to the
    # security context in force ([MS-RPCE] 3.3.2.4.1.3): it has no level of its own.
    subjects = [p for p in t.pdus if p.conn in conns and (
        p.ptype in _CALLS + (PType.BIND,) or (p.ptype == PType.ALTER_CONTEXT and p.sec_trailer))]
    # Calls at CONNECT carry no sec_trailer; without a security context they are at NONE.
    connect = {s.conn for s in t.security if s.auth_level == RPC_C_AUTHN_LEVEL.CONNECT}

    def level_of(p) -> int:
        if p.sec_trailer:
            return p.sec_trailer.auth_level
        return RPC_C_AUTHN_LEVEL.CONNECT if p.conn in connect else RPC_C_AUTHN_LEVEL.NONE

    bad = [p.index for p in subjects if level_of(p) != expected]
    levels = sorted({int(level_of(p)) for p in subjects})
    return _result("auth-level", [f"auth_level {expected} on every PDU"], bad,
                   subjects=len(subjects), actual_ok=f"auth_level {expected} on {len(subjects)} PDUs",
                   actual_bad=f"auth_level {', '.join(map(str, levels))} seen")


def stub_confidentiality(t: Transcript, plaintexts: Iterable[bytes], *, side: Side = Side.BOTH) -> CheckResult:
    """At PKT_PRIVACY "the PDU body will be encrypted" ([MS-RPCE] 3.3.1.5.2.2): every
    sealed request/response body holds none of the plaintext known to be in the call,
    and it verifies and decrypts to the NDR of that call (whether a response verifies is
    ``response-protection``'s, RPCE-PROT-02).  Below privacy the body is plaintext, so on
    WCCE connections the known values must be visible in it."""
    needles = [n for n in plaintexts if n]
    conns = wcce_connections(t)
    calls = [p for p in t.pdus if p.ptype in _CALLS and side.covers(p.direction)]
    sealed = [p for p in calls if p.sec_trailer and p.sec_trailer.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY]
    clear = [p for p in calls if p not in sealed and p.conn in conns]
    leaked = [p.index for p in sealed if any(n in p.body for n in needles) or p.readable_unsealed]
    # a response that does not verify is RPCE-PROT-02's finding (response-protection): whether
    # it would unseal to its NDR cannot be told, so it is not judged here
    unverified = [p.index for p in sealed if p.verified is False and p.direction is Direction.TO_CLIENT]
    # "unseals to its NDR" is judged for the interfaces the suite can decode (not, e.g., the
    # plain DCE/RPC interface of a calibration target)
    unreadable = [p.index for p in sealed if p.index not in unverified and (
        p.verified is False or (p.decoded is not None and not p.decoded.ok and p.interface in INTERFACES))]
    unknown = [p.index for p in sealed if p.verified is None]
    hidden = []
    # the known plaintext is that of ICertRequestD(2) calls: other calls (IRemUnknown2) carry none
    clear_wcce = [p for p in clear if p.interface in WCCE_INTERFACES]
    whole = b"".join(p.body for p in clear_wcce)
    if clear_wcce and needles and not any(n in whole for n in needles):
        hidden = [p.index for p in clear_wcce]
    bad = sorted(set(leaked + unreadable + hidden))
    expected = ("sealed stubs hold none of the call's plaintext and unseal to its NDR",
                "stubs below PKT_PRIVACY carry the plaintext")
    if not bad and (unknown or unverified):
        return _found("stub-confidentiality", Verdict.INCONCLUSIVE, expected, "; ".join(filter(None, [
            f"{len(unknown)} sealed PDUs could not be unsealed (no keys)" if unknown else "",
            f"{len(unverified)} sealed responses do not verify (response-protection judges them)"
            if unverified else ""])), sorted(unknown + unverified))
    actual_bad = "; ".join(filter(None, [
        f"plaintext in sealed PDUs {leaked}" if leaked else "",
        f"sealed PDUs that do not verify or decode {unreadable}" if unreadable else "",
        "no known plaintext in the unsealed stubs" if hidden else ""]))
    return _result("stub-confidentiality", expected, bad,
                   subjects=len(sealed) + len(clear),
                   actual_ok=f"{len(sealed)} sealed PDUs unreadable without keys and decoding with "
                             f"them; {len(clear)} clear", actual_bad=actual_bad)


# -- WCCE-T-09 / 10 / 11: what the client asked of NTLM ---------------------------------------


def _ntlm_contexts(t: Transcript, conns: set[int] | None = None):
    return [s for s in t.security if s.facts.ntlm_negotiate_flags is not None
            and (conns is None or s.conn in conns)]


def _kerberos_contexts(t: Transcript, conns: set[int] | None = None, *, opened: bool = True):
    return [s for s in t.security if s.facts.kerberos is not None
            and (not opened or s.facts.kerberos.checksum_flags is not None)
            and (conns is None or s.conn in conns)]


def _unopened(t: Transcript, conns: set[int] | None = None) -> int:
    return len(_kerberos_contexts(t, conns, opened=False)) - len(_kerberos_contexts(t, conns))


def impersonation_flags(t: Transcript, *, impersonation: int = RPC_C_IMP_LEVEL.IMPERSONATE) -> CheckResult:
    """"impersonation level RPC_C_IMP_LEVEL_IMPERSONATE" ([MS-WCCE] 2.1): with NTLM it
    shows only as NEGOTIATE_IDENTIFY, absent at IMPERSONATE ([MS-NLMP] 2.2.2.5); with
    Kerberos as the authenticator checksum's GSS_C_IDENTIFY_FLAG (0x2000), absent at
    IMPERSONATE, and GSS_C_DELEG_FLAG (0x1), absent below DELEGATE ([MS-KILE] 3.2.5.2)."""
    identify_expected = impersonation <= RPC_C_IMP_LEVEL.IDENTIFY
    ntlm = _ntlm_contexts(t)
    kerberos = _kerberos_contexts(t)
    bad = [s.legs[0] for s in ntlm if bool(s.facts.ntlm_negotiate_flags & NtlmFlag.IDENTIFY) != identify_expected]
    for s in kerberos:
        flags = GssFlag(s.facts.kerberos.checksum_flags)
        if bool(flags & GssFlag.IDENTIFY) != identify_expected or (
                flags & GssFlag.DELEG and impersonation < RPC_C_IMP_LEVEL.DELEGATE):
            bad.append(s.legs[0])
    want = "IDENTIFY set" if identify_expected else "IDENTIFY clear"
    expected = [f"NTLM NEGOTIATE with NEGOTIATE_{want}",
                f"Kerberos checksum with GSS_C_{want}" + (", GSS_C_DELEG clear" if impersonation < 4 else "")]
    if not ntlm and not kerberos and _unopened(t):
        return _found("impersonation-flags", Verdict.NA, expected,
                      "Kerberos checksum encrypted: the target's service key is not known")
    seen = ", ".join(f"{hex(int(s.facts.kerberos.checksum_flags))}" for s in kerberos)
    return _result("impersonation-flags", expected, bad,
                   subjects=len(ntlm) + len(kerberos),
                   actual_ok=f"{want} in {len(ntlm)} NTLM NEGOTIATE and {len(kerberos)} Kerberos checksums",
                   actual_bad=f"flags that do not match impersonation level {impersonation}"
                   + (f" (Kerberos checksum flags {seen})" if seen else ""))


def privacy_requested(t: Transcript) -> CheckResult:
    """PKT_PRIVACY "requests confidentiality" of the SSP ([MS-RPCE] 3.3.1.5.2.2) on every
    context bound at PKT_PRIVACY: NTLM NEGOTIATE carries SEAL and SIGN; the Kerberos
    checksum CONF and INTEG."""
    at_privacy = {s.conn for s in t.security if s.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY}
    ntlm = [s for s in _ntlm_contexts(t, at_privacy) if s.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY]
    kerberos = [s for s in _kerberos_contexts(t, at_privacy) if s.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY]
    need = NtlmFlag.SEAL | NtlmFlag.SIGN
    bad = [s.legs[0] for s in ntlm if (s.facts.ntlm_negotiate_flags & need) != need]
    bad += [s.legs[0] for s in kerberos if (GssFlag(s.facts.kerberos.checksum_flags) & (GssFlag.CONF | GssFlag.INTEG))
            != GssFlag.CONF | GssFlag.INTEG]
    return _result("privacy-requested", ["NTLM NEGOTIATE with SEAL and SIGN", "Kerberos checksum with CONF and INTEG"],
                   bad, subjects=len(ntlm) + len(kerberos), actual_ok="confidentiality requested",
                   actual_bad="SEAL/SIGN or CONF/INTEG missing")


def kerberos_spn(t: Transcript, *, exporter_spn: str | None = None) -> CheckResult:
    """Activation and the OXID resolver authenticate to RPCSS/<server>; ORPCs to the
    principal the exporter's SECURITYBINDING names ([MS-DCOM] 3.2.4.1.1.2, 3.2.4.2)."""
    rpcss = {p.conn for p in t.of_type(PType.BIND, PType.ALTER_CONTEXT)
             if any(c.interface in (IID_IREMOTE_SCM_ACTIVATOR, IID_IOBJECT_EXPORTER) for c in p.contexts)}
    orpc = wcce_connections(t)
    contexts = _kerberos_contexts(t, rpcss | orpc, opened=False)
    bad = []
    for s in contexts:
        sname = s.facts.kerberos.sname.lower()
        if s.conn in rpcss and not sname.startswith("rpcss/"):
            bad.append(s.legs[0])
        elif s.conn in orpc and (sname.startswith("rpcss/") if exporter_spn is None
                                 else sname != exporter_spn.lower()):
            bad.append(s.legs[0])
    names = sorted({s.facts.kerberos.sname for s in contexts})
    return _result("kerberos-spn", ["RPCSS/<server> for activation and OXID resolution",
                    f"{exporter_spn or 'the SECURITYBINDING principal'} for ORPCs"], bad,
                   subjects=len(contexts), actual_ok="tickets for " + ", ".join(names),
                   actual_bad="tickets for " + ", ".join(names))


def not_anonymous(t: Transcript) -> CheckResult:
    """NULL identity means the caller's own credentials, not anonymous ([MS-WCCE] 2.1):
    an NTLM user with an NT response, or a Kerberos ticket of a named client."""
    contexts = [s for s in t.security if s.facts.ntlm_user is not None]
    bad = [s.legs[-1] for s in contexts if s.facts.ntlm_anonymous or not s.facts.ntlm_user
           or (s.facts.ntlm_authenticate_flags or 0) & NtlmFlag.ANONYMOUS]
    kerberos = _kerberos_contexts(t, opened=False)
    bad += [s.legs[0] for s in kerberos
            if (s.facts.kerberos.cname or "").upper().startswith("WELLKNOWN/ANONYMOUS")]
    who = sorted({s.facts.ntlm_user for s in contexts} | {s.facts.kerberos.cname or "a Kerberos client"
                                                           for s in kerberos})
    return _result("not-anonymous", ["NTLM AUTHENTICATE with a user and an NT response, no ANONYMOUS flag",
                    "a Kerberos ticket of a named client"], bad,
                   subjects=len(contexts) + len(kerberos), actual_ok="authenticated as " + ", ".join(who),
                   actual_bad="anonymous authentication")


def spnego_mechanism(t: Transcript) -> CheckResult:
    """Which mechanism SPNEGO chose (recorded; Kerberos or NTLM are both allowed)."""
    spnego = [s for s in t.security if s.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE]
    if not spnego:
        return _found("spnego-mechanism", Verdict.NA, ("NTLM", "Kerberos"), "no SPNEGO context")
    chosen = sorted({MECH_NAMES.get(s.facts.mechanism_chosen or "", s.facts.mechanism_chosen or "?")
                     for s in spnego})
    return _found("spnego-mechanism", Verdict.INFO, ("NTLM", "Kerberos"), ", ".join(chosen),
                  [s.legs[0] for s in spnego])


def even_legs(t: Transcript) -> CheckResult:
    """SPNEGO is an even-leg provider: no rpc_auth3 on an auth_type 9 context
    ([MS-RPCE] 2.2.1.1.7 legs table, note <98>)."""
    spnego = {(s.conn, s.context_id) for s in t.security if s.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE}
    bad = [p.index for p in t.of_type(PType.AUTH3) if p.sec_trailer
           and (p.conn, p.sec_trailer.auth_context_id) in spnego]
    return _result("even-legs", ["SPNEGO legs on bind/alter_context only"], bad,
                   subjects=len(spnego), actual_ok="no rpc_auth3 on SPNEGO contexts",
                   actual_bad="rpc_auth3 on a SPNEGO context")



# -- activation and ORPC framing ([MS-DCOM]) ---------------------------------------------------


def _unreadable(pdus) -> list[int]:
    """The last fragments of sealed calls whose stub could not be read (no keys)."""
    return [p.index for p in pdus if p.protected and p.verified is None and p.decoded is None
            and p.pfc_flags & PfcFlag.LAST_FRAG]


def _activations(t: Transcript):
    return [(p, requested_class(p.decoded.packet)) for p in t.of_type(PType.REQUEST)
            if p.decoded is not None and p.decoded.name == "RemoteCreateInstance_Request"
            and p.decoded.packet is not None]


def _sealed_activations(t: Transcript) -> list[int]:
    return _unreadable(p for p in t.of_type(PType.REQUEST) if p.interface == IID_IREMOTE_SCM_ACTIVATOR
                       and p.opnum == RemoteActivatorOpnum.REMOTE_CREATE_INSTANCE)


def activation_clsid(t: Transcript, *, expected=wcce.CLSID_CCERTREQUESTD) -> CheckResult:
    """The client activates CCertRequestD ([MS-WCCE] 1.9)."""
    found = _activations(t)
    bad = [p.index for p, cls in found if cls is None or cls[0] != expected]
    seen = sorted({str(cls[0]) if cls else "undecodable" for _, cls in found})
    return _result("activation-clsid", [f"InstantiationInfoData.classId {expected}"],
                   bad, subjects=len(found), actual_ok=f"{expected}", actual_bad=", ".join(seen),
                   unreadable=_sealed_activations(t))


def activation_iids(t: Transcript) -> CheckResult:
    """The client asks for ICertRequestD and/or ICertRequestD2 ([MS-WCCE] 2.1)."""
    found = _activations(t)
    bad = [p.index for p, cls in found
           if cls is None or not cls[1] or not set(cls[1]) <= WCCE_INTERFACES]
    seen = sorted({interface_name(i) for _, cls in found if cls for i in cls[1]})
    return _result("activation-iids", ["pIID within {ICertRequestD, ICertRequestD2}"],
                   bad, subjects=len(found), actual_ok=", ".join(seen), actual_bad=", ".join(seen),
                   unreadable=_sealed_activations(t))


def _interface_binds(t: Transcript, interface) -> list:
    return [p for p in t.of_type(PType.BIND, PType.ALTER_CONTEXT)
            if any(c.interface == interface for c in p.contexts)]


def activation_level(t: Transcript) -> CheckResult:
    """ServerAlive2 "MUST NOT specify security"; RemoteCreateInstance is bound at
    PKT_INTEGRITY or above ([MS-DCOM] 3.2.4.1.1.1, notes <80>, <81>)."""
    alive = [p for p in t.of_type(PType.REQUEST) if p.interface == IID_IOBJECT_EXPORTER
             and p.opnum == ObjectExporterOpnum.SERVER_ALIVE2]
    alive_conns = {p.conn for p in alive}
    alive_bad = [p.index for p in t.pdus if p.conn in alive_conns and p.sec_trailer is not None
                 and p.direction is Direction.TO_SERVER]
    scm = _interface_binds(t, IID_IREMOTE_SCM_ACTIVATOR)
    scm_bad = [p.index for p in scm
               if not p.sec_trailer or p.sec_trailer.auth_level < RPC_C_AUTHN_LEVEL.PKT_INTEGRITY]
    return _result("activation-level", ["ServerAlive2 without security", "RemoteCreateInstance at PKT_INTEGRITY or above"],
                   alive_bad + scm_bad, subjects=len(alive) + len(scm),
                   actual_ok="as required", actual_bad=(
                       ("ServerAlive2 authenticated; " if alive_bad else "")
                       + ("activation below PKT_INTEGRITY" if scm_bad else "")))


def resolver_level(t: Transcript) -> CheckResult:
    """ResolveOxid(2), SimplePing and ComplexPing at PKT_INTEGRITY or above
    ([MS-DCOM] 3.2.4.1.2.2, 3.2.6.1)."""
    calls = [p for p in t.of_type(PType.REQUEST)
             if p.interface == IID_IOBJECT_EXPORTER and p.opnum in _RESOLVER_CALLS]
    bad = [p.index for p in calls
           if not p.sec_trailer or p.sec_trailer.auth_level < RPC_C_AUTHN_LEVEL.PKT_INTEGRITY]
    return _result("resolver-level", ["OXID resolution and pings at PKT_INTEGRITY+"],
                   bad, subjects=len(calls), actual_ok="at PKT_INTEGRITY or above",
                   actual_bad="below PKT_INTEGRITY")


def header_signing(t: Transcript) -> CheckResult:
    """The server echoes PFC_SUPPORT_HEADER_SIGN only when the client offered it
    ([MS-RPCE] 3.3.1.5.2.2); whether it was negotiated is recorded."""
    contexts = list(t.security)
    bad = [s.legs[1] if len(s.legs) > 1 else s.legs[0] for s in contexts
           if s.header_sign_granted and not s.header_sign_requested]
    if not contexts:
        return _found("header-signing", Verdict.NA, ("echo only what was offered",), "no security context")
    summary = ", ".join(f"{'requested' if s.header_sign_requested else 'not requested'}/"
                        f"{'granted' if s.header_sign_granted else 'not granted'}" for s in contexts)
    return _found("header-signing", _violation("header-signing") if bad else Verdict.INFO,
                  ("echo only what was offered",), summary, bad)


def _orpc_requests(t: Transcript):
    orpc = WCCE_INTERFACES | {IID_IREMUNKNOWN, IID_IREMUNKNOWN2}
    return [p for p in t.of_type(PType.REQUEST) if p.interface in orpc]


def auth_padding(t: Transcript, *, side: Side = Side.CLIENT) -> CheckResult:
    """"The sec_trailer structure MUST be 16-byte aligned with respect to the beginning of
    the PDU Body" ([MS-RPCE] 2.2.2.11): on requests and responses the stub is padded so."""
    protected = [p for p in t.of_type(PType.REQUEST, PType.RESPONSE)
                 if p.sec_trailer is not None and side.covers(p.direction)]
    bad = [p.index for p in protected if (p.sec_trailer.offset - _body_start(p)) % 16]
    return _result("auth-padding", ["sec_trailer 16-byte aligned from the PDU body"],
                   bad, subjects=len(protected), actual_ok=f"{len(protected)} sec_trailers aligned",
                   actual_bad="a sec_trailer not 16-byte aligned from the start of the PDU body")


def _body_start(p) -> int:
    return PduLayout.of(p.raw, CommonHeader.parse(p.raw), None).header_len


def orpc_object_uuid(t: Transcript) -> CheckResult:
    """Every ORPC request names its IPID as object UUID ([MS-DCOM] 3.2.4.2)."""
    calls = _orpc_requests(t)
    bad = [p.index for p in calls if p.object_uuid is None]
    return _result("orpc-object-uuid", ["PFC_OBJECT_UUID with the IPID"], bad,
                   subjects=len(calls), actual_ok=f"{len(calls)} ORPCs addressed",
                   actual_bad="ORPC without object UUID")


def orpcthis(t: Transcript, *, server_minor: int = 7) -> CheckResult:
    """ORPCTHIS: version 5.x not above the server's, flags 0, reserved1 0, a causality
    ID ([MS-DCOM] 2.2.13.3, 3.2.4.2)."""
    orpcs = _orpc_requests(t)
    calls = [p for p in orpcs if p.decoded is not None and p.decoded.orpc is not None]
    bad, seen = [], set()
    for p in calls:
        head = p.decoded.orpc
        version = (int(head.version.MajorVersion), int(head.version.MinorVersion))
        problems = []
        if version[0] != 5 or version[1] > server_minor:
            problems.append(f"version {version[0]}.{version[1]}")
        if int(head.flags) != 0:
            problems.append(f"flags {int(head.flags)}")
        if int(head.reserved1) != 0:
            problems.append("reserved1 not 0")
        if bytes(head.cid) == bytes(16):
            problems.append("null cid")
        if problems:
            bad.append(p.index)
            seen.update(problems)
    return _result("orpcthis", [f"version 5.<={server_minor}, flags 0, cid set"], bad,
                   subjects=len(calls), actual_ok=f"{len(calls)} ORPCTHIS well formed",
                   actual_bad=", ".join(sorted(seen)), unreadable=_unreadable(orpcs))


def refusal_effect(effect, problem: str | None = None) -> CheckResult:
    """A refused request is not processed ([MS-WCCE] 2.1 "MUST refuse", 3.2.1.4.2.1): no
    certificate for its key among the requests the CA numbered around the refusal, and, when
    nobody else submits (claim ``sole_requester``), no request numbered there at all
    (:mod:`conformance.judge.effects` observes; this judges)."""
    expected = ["no request between the markers holds a certificate for the refused request's key, "
                "and none was entered when nobody else submits"]
    if problem is not None:
        return _found("refusal-effect", Verdict.INCONCLUSIVE, expected, problem)
    if effect is None:
        return _found("refusal-effect", Verdict.NA, expected, "no refused request to inspect")
    if effect.issued:
        return _found("refusal-effect", _violation("refusal-effect"), expected,
                      f"request(s) {', '.join(map(str, effect.issued))} between markers {effect.before} and "
                      f"{effect.after} hold a certificate for the refused request's key: the CA processed "
                      f"what it refused")
    if effect.entered:
        return _found("refusal-effect", _violation("refusal-effect"), expected,
                      f"request(s) {', '.join(map(str, effect.entered))} between markers {effect.before} and "
                      f"{effect.after} were entered, and nobody else submits to this CA (sole_requester): the "
                      f"CA entered what it refused")
    if effect.uninspected:
        return _found("refusal-effect", Verdict.INCONCLUSIVE, expected,
                      f"{effect.uninspected} request IDs between markers {effect.before} and {effect.after} "
                      f"were not inspected (a busy CA)")
    others = f"; {len(effect.other)} other request(s) between them, not the refused one" if effect.other else ""
    return _found("refusal-effect", Verdict.PASS, expected,
                  f"markers {effect.before} and {effect.after}: the refused request was not issued{others}")


def request_returns_zero(t: Transcript) -> CheckResult:
    """Request/Request2 "MUST return zero ... errors through pdwDisposition" ([MS-WCCE] 3.2.1.4.2.1)."""
    responses = [p for p in t.of_type(PType.RESPONSE) if p.decoded is not None and p.decoded.ok
                 and p.decoded.name in ("Request_Response", "Request2_Response")]
    bad = [p.index for p in responses if int(p.decoded.packet.status) != 0]
    sealed = _unreadable(p for p in t.of_type(PType.RESPONSE) if p.interface in WCCE_INTERFACES
                         and p.opnum in (wcce.Opnum.REQUEST, wcce.Opnum.REQUEST2))
    return _result("request-returns-zero", ["return value 0"], bad,
                   subjects=len(responses), actual_ok="0", actual_bad=", ".join(
                       f"0x{int(t.pdus[i].decoded.packet.status):08x}" for i in bad[:3]), unreadable=sealed)


# -- RPCE-PROT-02: every protected response verifies, in sequence ----------------------------------

def response_protection(t: Transcript) -> CheckResult:
    """Every response to a protected request (PKT and above, NTLM or Kerberos) is protected,
    verifies with its security context's keys, and carries the sequence number after the last
    one that context sent ([MS-RPCE] 3.3.1.5.2.2; [MS-NLMP] 3.4.4; RFC 4121 4.2.6).  The
    transcript verifies each one passively (:mod:`conformance.wire.passive`); this reads the
    result and, for a response that does not verify, whether its sequence number repeats an
    earlier one of its context."""
    expected = ["every response to a protected request is protected and verifies with its security "
                "context's keys, in sequence"]
    asked = {(p.conn, p.call_id): p.sec_trailer.auth_level for p in t.of_type(PType.REQUEST) if p.protected}
    responses = [p for p in t.of_type(PType.RESPONSE) if p.direction is Direction.TO_CLIENT
                 and (p.protected or (p.conn, p.call_id) in asked)]
    if not responses:
        return _found("response-protection", Verdict.NA, expected, "no protected response on the wire")
    contexts = {(s.conn, s.context_id): s.facts.keys for s in t.security}
    bad, why, unknown, seen = [], [], [], {}
    for p in responses:
        if not p.protected:  # [MS-RPCE] 3.3.1.5.2.2: the response is protected like its request
            bad.append(p.index)
            level = p.sec_trailer.auth_level if p.sec_trailer else RPC_C_AUTHN_LEVEL.NONE
            why.append(f"#{p.index} answers a request protected at level {asked[(p.conn, p.call_id)]} "
                       f"at level {level}")
            continue
        context = (p.conn, p.sec_trailer.auth_context_id)
        sequence = verifier_sequence(p.auth_token)
        earlier = seen.setdefault(context, set())
        if p.verified is True:
            pass
        elif p.error is not None:
            bad.append(p.index)
            why.append(f"#{p.index} cannot be taken apart ({p.error})")
        elif context not in contexts:
            bad.append(p.index)
            why.append(f"#{p.index} names auth_context_id {context[1]}, which no bind established")
        elif p.verified is False or contexts[context]:
            bad.append(p.index)
            why.append(f"#{p.index} repeats sequence number {sequence}" if sequence in earlier
                       else f"#{p.index} does not verify")
        else:  # the context's keys are not known (a Kerberos service key the suite lacks)
            unknown.append(p.index)
        if sequence is not None:
            earlier.add(sequence)
    if bad:
        shown = ", ".join(why[:4]) + (f" (+{len(why) - 4})" if len(why) > 4 else "")
        return _found("response-protection", _violation("response-protection"), expected,
                      f"{len(bad)} of {len(responses)} responses to protected calls do not verify: {shown}", bad)
    if unknown:
        return _found("response-protection", Verdict.INCONCLUSIVE, expected,
                      f"{len(unknown)} protected responses could not be verified (no keys for their "
                      f"security context)", unknown)
    return _found("response-protection", Verdict.PASS, expected,
                  f"{len(responses)} protected responses verify, in sequence")


# -- registry -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CheckContext:
    """What a case tells its checks: the side to judge and what the client meant."""

    side: Side = Side.BOTH
    plaintexts: tuple[bytes, ...] = ()
    impersonation: int = RPC_C_IMP_LEVEL.IMPERSONATE
    expected_level: int = RPC_C_AUTHN_LEVEL.PKT_PRIVACY
    exporter_spn: str | None = None  # the principal the exporter's SECURITYBINDING named
    effect: object | None = None  # a judge.effects.RefusalEffect observed around a refused request
    effect_problem: str | None = None  # why the effect could not be observed


CHECKS = {
    "interface-version": lambda t, c: interface_version(t),
    "security-provider": lambda t, c: security_provider(t),
    "spnego-mechanism": lambda t, c: spnego_mechanism(t),
    "auth-level": lambda t, c: auth_level(t, expected=c.expected_level),
    "privacy-requested": lambda t, c: privacy_requested(t),
    "impersonation-flags": lambda t, c: impersonation_flags(t, impersonation=c.impersonation),
    "not-anonymous": lambda t, c: not_anonymous(t),
    "even-legs": lambda t, c: even_legs(t),
    "header-signing": lambda t, c: header_signing(t),
    "orpc-object-uuid": lambda t, c: orpc_object_uuid(t),
    "orpcthis": lambda t, c: orpcthis(t),
    "request-returns-zero": lambda t, c: request_returns_zero(t),
    "activation-clsid": lambda t, c: activation_clsid(t),
    "activation-iids": lambda t, c: activation_iids(t),
    "activation-level": lambda t, c: activation_level(t),
    "resolver-level": lambda t, c: resolver_level(t),
    "kerberos-spn": lambda t, c: kerberos_spn(t, exporter_spn=c.exporter_spn),
    "auth-type-consistent": lambda t, c: auth_type_consistent(t, side=c.side),
    "auth-padding": lambda t, c: auth_padding(t, side=Side.SERVER if c.side is Side.SERVER else Side.CLIENT),
    "stub-confidentiality": lambda t, c: stub_confidentiality(t, c.plaintexts, side=c.side),
    "refusal-effect": lambda t, c: refusal_effect(c.effect, c.effect_problem),
    "response-protection": lambda t, c: response_protection(t),
}


# The catalogue names every check and the requirement it verifies; this registry is
# how each is run.  The two must agree (a check nobody cites, or one cited but missing).
assert set(CHECKS) == check_names(shipped_catalogue()), set(CHECKS) ^ check_names(shipped_catalogue())


def run_check(name: str, t: Transcript, context: CheckContext) -> CheckResult:
    """Run a check by name; a bug in a check is an ERROR result, not an exception."""
    try:
        return CHECKS[name](t, context)
    except Exception as exc:  # the suite failed, not the target
        return _found(name, Verdict.ERROR, (), f"check raised {type(exc).__name__}: {exc}")
