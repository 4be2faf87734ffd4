"""Runs one conformance case against a target and judges it.

Flow helpers drive the client (activation, bind, call, raw PDUs) and return what
the target did as a normalized *observed outcome* string; the case's expected
outcomes are alternatives of the same form (Samba's ``nak_reason=`` /
``fault_status=`` as data).  Then the wire checks the case names run on the
tapped transcript.  The verdict is the worst of the outcome and the checks; a
target that cannot be reached is INCONCLUSIVE, a bug in the suite ERROR.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import socket
import time
import traceback
from collections.abc import Mapping

from conformance.capture.pcap import write_pcapng
from conformance.capture.tap import Tap
from conformance.casebook import CREDENTIALS, Case
from conformance.catalogue import Requirement
from conformance.client import methods
from conformance.client.dcom import Activation
from conformance.client.kerberos import KerberosError, TicketCache
from conformance.client.rpc import Outcome, RpcConnection
from conformance.client.session import WcceSession
from conformance.client.settings import ClientSettings, SettingsError
from conformance.profile import Target
from conformance.rawcases import RAW_ACTIONS, Inconclusive
from conformance.report import evidence
from conformance.wire.kerberos import ServiceKeys
from conformance.refca.config import nt_hash
from conformance.wire import wcce
from conformance.wire.checks import CheckContext, CheckResult, Level, Verdict, run_check
from conformance.wire.rpc import PType
from conformance.wire.wcce import CAPropId, Disposition, PropType

__all__ = ["CaseResult", "Engine", "observe", "worst"]

_ORDER = [Verdict.ERROR, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.WARN, Verdict.PASS,
          Verdict.INFO, Verdict.NA]


def worst(verdicts) -> Verdict:
    present = set(verdicts)
    return next((v for v in _ORDER if v in present), Verdict.PASS)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    case_id: str
    title: str
    requirements: tuple[str, ...]
    verdict: Verdict
    expected: tuple[str, ...]
    actual: str
    outcome_matched: bool | None = None  # None: the case did not run
    connection_matched: bool | None = None  # None: the case does not say whether the connection drops
    checks: tuple[CheckResult, ...] = ()
    reason: str = ""
    level: Level = Level.MUST  # the strongest level of the cited requirements
    ladder: tuple[Mapping[str, object], ...] = ()  # the PDU ladder (conformance.report.evidence)
    connections: tuple[Mapping[str, object], ...] = ()
    pcap: str | None = None
    settings: Mapping[str, object] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


class _Unreachable(Exception):
    pass


def observe(result) -> str:
    """Normalized outcome of a WCCE call (CallResult)."""
    if result.response is None:
        return _outcome_text(result.outcome)
    resp = result.response
    status = int(resp.status)
    if status:
        return f"hresult 0x{status:08x}"
    if hasattr(resp, "pdwDisposition"):
        disposition = int(resp.pdwDisposition)
        if disposition == Disposition.ISSUED:
            return "accept"
        return f"disposition {disposition}" if disposition < 0x100 else f"disposition 0x{disposition:08x}"
    return "accept"


def _outcome_text(outcome: Outcome) -> str:
    if not outcome.pdus:
        return "drop" if outcome.closed else "silent"
    if outcome.unverified:
        return "unverifiable response"
    ptype = outcome.ptype
    pkt = outcome.packet()
    if ptype == PType.FAULT:
        return f"fault 0x{int(pkt.status):08x}"
    if ptype == PType.BIND_NAK:
        return f"bind_nak {int(pkt.provider_reject_reason)}"
    if ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP):
        rejected = [r for r in pkt.results if int(r.result) == 2]
        accepted = [r for r in pkt.results if int(r.result) == 0]
        if not accepted and rejected:
            return f"reject {int(rejected[0].reason)}"
        return "accept"
    if ptype == PType.RESPONSE:
        return "accept"
    return f"ptype {ptype}"


def _slug(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", case_id).strip("_")


# Security negatives name a fault in the target's credentials; the table never holds one.
_CREDENTIAL_FAULTS = {
    "target": lambda t: {},
    "wrong-password": lambda t: {"password": t.password + "-not-it"},
    "unknown-user": lambda t: {"user": "wcce-no-such-user"},
    "second": lambda t: {"user": t.second.user, "domain": t.second.domain, "password": t.second.password},
}
assert _CREDENTIAL_FAULTS.keys() == CREDENTIALS  # the names cases may write (casebook validates them)


class Engine:
    """One per worker: holds the target and the activations cases may share."""

    def __init__(self, target: Target, catalogue: Mapping[str, Requirement], *,
                 evidence_dir: pathlib.Path | None = None, service_keys: ServiceKeys | None = None) -> None:
        self.target = target
        self.catalogue = catalogue
        self.evidence_dir = evidence_dir
        self.identities = {target.user: nt_hash(target.password)}
        kerberos = target.kerberos
        if service_keys is None and kerberos is not None and kerberos.keytab is not None:
            service_keys = ServiceKeys.from_keytab(kerberos.keytab)
        self.service_keys = service_keys  # the target's keytab: Kerberos PDUs can be read
        self.tickets = None
        if kerberos is not None:
            self.tickets = TicketCache(kdc_host=kerberos.kdc_host, kdc_port=kerberos.kdc_port, realm=kerberos.realm,
                                       user=target.user, password=target.password)
        self._activations: dict[tuple, Activation] = {}
        self._exporter_spn: str | None = None

    # -- settings ----------------------------------------------------------------------

    def settings(self, case: Case) -> ClientSettings:
        t = self.target
        fixed = {"host": t.host, "port": t.activation_port}
        if case.client.get("provider", "spnego-ntlm") != "none":
            fixed.update(user=t.user, domain=t.domain, password=t.password)
            fixed.update(_CREDENTIAL_FAULTS[case.params.get("credentials", "target")](t))
        if t.kerberos is not None:
            fixed.update(kdc=t.kerberos.kdc, realm=t.kerberos.realm, service_host=t.kerberos.service_host,
                         tickets=self.tickets)
        return ClientSettings.from_mapping(case.client, **fixed)

    def ca_name(self, case: Case) -> str | None:
        name = case.params.get("ca_name", "target")
        return {"target": self.target.ca_name, "wrong": f"NOT-{self.target.ca_name}",
                "lower": self.target.ca_name.lower(), "empty": "", "null": None}.get(name, name)

    def template(self, case: Case) -> str:
        name = case.params.get("template", "issue")
        return {"issue": self.target.issue_template,
                "pending": self.target.templates.get("pending", "UserApproval"),
                "unknown": "NoSuchTemplate-0x80094800"}.get(name, name)

    # -- running ------------------------------------------------------------------------

    def run(self, case: Case) -> CaseResult:
        start = time.monotonic()
        levels = [self.catalogue[r].level for r in case.requirements]
        level = Level.MUST if Level.MUST in levels else (Level.SHOULD if Level.SHOULD in levels else Level.MAY)
        base = dict(case_id=case.id, title=case.title, requirements=case.requirements,
                    expected=case.expect, settings=dict(case.client), level=level)
        for claim in case.claims:
            holds = self.target.claims.holds(claim)
            if not holds:
                why = "unknown" if holds is None else "not claimed"
                return CaseResult(**base, verdict=Verdict.NA, actual="not run",
                                  reason=f"target claim {claim}: {why}")
        tap = Tap()
        try:
            settings = self.settings(case)
            observed, dropped = self._drive(case, settings, tap)
        except SettingsError as exc:
            return CaseResult(**base, verdict=Verdict.ERROR, actual="not run", reason=str(exc))
        except Inconclusive as exc:  # the target did not do what the case needs
            return CaseResult(**base, verdict=Verdict.INCONCLUSIVE, actual="not judged", reason=str(exc),
                              seconds=time.monotonic() - start)
        except (_Unreachable, ConnectionRefusedError, KerberosError) as exc:  # also mid-run; or no ticket
            return CaseResult(**base, verdict=Verdict.INCONCLUSIVE, actual="target unreachable",
                              reason=str(exc), seconds=time.monotonic() - start)
        except Exception as exc:  # a suite bug: ERROR, with the traceback as reason
            return CaseResult(**base, verdict=Verdict.ERROR, actual=f"{type(exc).__name__}: {exc}",
                              reason=traceback.format_exc(limit=6), seconds=time.monotonic() - start)
        transcript = tap.transcript(self.identities, service_keys=self.service_keys)
        reasons = []
        verdicts = []
        if observed in case.expect:
            verdicts.append(Verdict.PASS)
        else:
            verdicts.append(level.violation)
            reasons.append(f"observed {observed!r}, expected one of {list(case.expect)}")
        connection_matched = None
        if case.connection_drops is not None and dropped is not None:
            connection_matched = dropped == case.connection_drops
        if connection_matched is False:
            verdicts.append(level.violation)
            reasons.append("the connection " + ("stayed open" if case.connection_drops else "was dropped"))
        context = CheckContext(
            side=case.side, impersonation=settings.impersonation, expected_level=6,
            exporter_spn=self._exporter_spn,
            plaintexts=tuple(p for p in (
                (self.ca_name(case) or "").encode("utf-16-le"),
                f"CertificateTemplate:{self.template(case)}".encode("utf-16-le")) if len(p) > 4))
        check_results = tuple(run_check(name, transcript, context) for name in case.checks)
        for result in check_results:
            verdicts.append(result.verdict)
            if result.verdict in (Verdict.FAIL, Verdict.WARN, Verdict.ERROR):
                reasons.append(f"{result.check} ({result.requirement}): {result.actual}")
        verdict = worst(v for v in verdicts if v not in (Verdict.NA, Verdict.INFO))
        pcap = None
        if self.evidence_dir is not None:
            path = self.evidence_dir / f"{_slug(case.id)}.pcapng"
            write_pcapng(path, tap.chunks, tap.connections)
            pcap = str(path)
        return CaseResult(**base, verdict=verdict, actual=observed, checks=check_results,
                          outcome_matched=observed in case.expect, connection_matched=connection_matched,
                          reason="; ".join(reasons), ladder=tuple(evidence.ladder(transcript)),
                          connections=tuple(evidence.connections(transcript)),
                          pcap=pcap, seconds=time.monotonic() - start)

    # -- flows ----------------------------------------------------------------------------

    def _session(self, settings: ClientSettings, tap: Tap) -> WcceSession:
        return WcceSession.from_settings(settings, tap=tap)

    def _activate(self, case: Case, settings: ClientSettings, tap: Tap,
                  session: WcceSession) -> str | None:
        """Activate (or reuse a shared activation); None on success, else the outcome."""
        key = (settings.provider, settings.impersonation, settings.activation_level, settings.level >= 5,
               settings.clsid, settings.iids, settings.server_alive2)
        if not case.params.get("fresh_activation") and key in self._activations:
            session.activation = self._activations[key]
            return None
        try:
            outcome, activation = session.activate()
        except (ConnectionRefusedError, socket.timeout, OSError) as exc:
            raise _Unreachable(f"{self.target.host}:{self.target.activation_port}: {exc}") from exc
        if activation is None:
            return "activation " + _outcome_text(outcome)
        if activation.status != 0:
            return f"activation hresult 0x{activation.status:08x}"
        self._activations[key] = activation
        return None

    def _drive(self, case: Case, settings: ClientSettings, tap: Tap) -> tuple[str, bool | None]:
        session = self._session(settings, tap)
        self._exporter_spn = None
        try:
            if case.kind == "activation":
                return self._activation_case(case, session), None
            failed = self._activate(case, settings, tap, session)
            if failed is not None:
                return failed, None
            self._exporter_spn = session.exporter_spn()
            if case.kind == "bind":
                return self._bind_case(case, settings, session, tap)
            if case.kind == "raw":
                return RAW_ACTIONS[case.action](self, case, settings, session, tap)
            if case.kind == "flow":
                return self._flow_case(case, session)
            return self._call_case(case, session)
        finally:
            session.close()

    def _activation_case(self, case: Case, session: WcceSession) -> str:
        try:
            outcome, activation = session.activate()
        except (ConnectionRefusedError, socket.timeout, OSError) as exc:
            raise _Unreachable(str(exc)) from exc
        if activation is None:
            return _outcome_text(outcome)
        if activation.status != 0:
            return f"hresult 0x{activation.status:08x}"
        failed = [i.hresult for i in activation.interfaces if i.hresult != 0]
        return f"hresult 0x{failed[0]:08x}" if failed else "accept"

    def _bind_case(self, case: Case, settings: ClientSettings, session: WcceSession,
                   tap: Tap) -> tuple[str, bool | None]:
        host, port = session.exporter_address()
        interface = _interface(case.params.get("interface", "ICertRequestD"))
        syntaxes = [_syntax(s) for s in case.params.get("transfer_syntaxes", ["NDR"])]
        with RpcConnection(host, port, security=settings.security(), tap=tap) as conn:
            outcome = conn.bind(interface, settings.if_version, transfer_syntaxes=syntaxes)
            return _outcome_text(outcome), _dropped(case, conn)

    def _method(self, case: Case, method: str | None = None):
        method = method or case.method
        ca = self.ca_name(case)
        csr = methods.new_pkcs10(f"wcce-conformance-{_slug(case.id)[-40:]}")
        if method == "Request":
            return methods.request(ca, csr, template=self.template(case)), wcce.IID_ICERTREQUESTD
        if method == "Request2":
            return methods.request2(ca, csr, template=self.template(case)), wcce.IID_ICERTREQUESTD2
        if method == "GetCACert":
            return methods.get_ca_cert(ca), wcce.IID_ICERTREQUESTD
        if method == "Ping":
            return methods.ping(ca), wcce.IID_ICERTREQUESTD
        if method == "Ping2":
            return methods.ping2(ca), wcce.IID_ICERTREQUESTD2
        if method == "GetCAProperty":
            return methods.get_ca_property(ca, CAPropId.CATYPE, PropType.LONG), wcce.IID_ICERTREQUESTD2
        return methods.get_ca_property_info(ca), wcce.IID_ICERTREQUESTD2

    def _call_case(self, case: Case, session: WcceSession) -> tuple[str, bool | None]:
        bound = session.connect_exporter()
        if wcce.IID_ICERTREQUESTD not in session.exporter.contexts:
            return _outcome_text(bound), _dropped(case, session.exporter)
        request, interface = self._method(case)
        ipid = None
        if case.params.get("ipid") == "unknown":
            import uuid

            ipid = uuid.uuid4()
        result = session.call(request, interface=interface, ipid=ipid)
        return observe(result), _dropped(case, session.exporter)

    def _flow_case(self, case: Case, session: WcceSession) -> tuple[str, bool | None]:
        """pending -> retrieve: disposition 5 with an ID, then 5 again for that ID."""
        session.connect_exporter()
        request, interface = self._method(case)
        first = session.call(request, interface=interface)
        if first.response is None or int(first.response.pdwDisposition) != Disposition.UNDER_SUBMISSION:
            return f"submit {observe(first)}", None
        request_id = int(first.response.pdwRequestId)
        again = session.call(methods.retrieve(self.ca_name(case), request_id))
        if again.response is None:
            return f"retrieve {observe(again)}", None
        if int(again.response.pdwRequestId) != request_id:
            return "retrieve answered another request ID", None
        return ("accept" if int(again.response.pdwDisposition) == Disposition.UNDER_SUBMISSION
                else f"retrieve {observe(again)}"), None


def _dropped(case: Case, conn: RpcConnection) -> bool | None:
    """Whether the server closed the connection; only waited for when the case asks."""
    return None if case.connection_drops is None else not conn.is_connected()


def _interface(name: str):
    from conformance.wire.dcom import IID_IREMUNKNOWN2

    return {"ICertRequestD": wcce.IID_ICERTREQUESTD, "ICertRequestD2": wcce.IID_ICERTREQUESTD2,
            "IRemUnknown2": IID_IREMUNKNOWN2}[name]


def _syntax(name: str):
    from conformance.wire.rpc import NDR20, NDR64

    return {"NDR": NDR20, "NDR64": NDR64}[name]
