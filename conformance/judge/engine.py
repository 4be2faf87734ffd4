"""Runs one conformance case against a target and judges it.

Flow helpers drive the client (activation, bind, call, raw PDUs) and return what
the target did as a normalized *observed outcome* string; the case's expected
outcomes are alternatives of the same form (Samba's ``nak_reason=`` /
``fault_status=`` as data).  Then the wire checks the case names run on the
tapped transcript.  The verdict is the worst of the outcome and the checks.

:meth:`Engine.run` is the one boundary where what went wrong becomes a verdict
(style rule 11):

* what the target sent or did (:class:`conformance.client.errors.TargetFault`: a reply
  that does not parse, a security token the client cannot read; resets, EOF and
  silence are already outcomes) is the observed outcome, judged against the case;
* string bindings that name no usable exporter
  (:class:`conformance.client.errors.NoUsableBinding`) FAIL WCCE-T-01 wherever the
  activation is the step, and the case's own requirements were not reached;
* a target that cannot be reached, or that did not do what the case needs, is
  INCONCLUSIVE, saying why;
* anything else is a defect of the suite: ERROR, with the traceback.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import socket
import time
import traceback
import uuid
from collections.abc import Mapping

from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL

from conformance.capture.pcap import write_pcapng
from conformance.capture.tap import Tap
from conformance.client import methods
from conformance.client.bindings import Resolver
from conformance.client.dcom import Activation, orpc_request_stub
from conformance.client.errors import NoUsableBinding, TargetFault
from conformance.client.kerberos import KerberosError, TicketCache
from conformance.client.rpc import RpcError
from conformance.client.session import WcceSession
from conformance.client.settings import ClientSettings, SettingsError
from conformance.judge import evidence
from conformance.judge.checks import CheckContext, run_check
from conformance.judge.decide import decide
from conformance.judge.endpoints import DcomEndpoint, Endpoint, RpcEndpoint
from conformance.judge.effects import EffectProbe, ProbeFailed, public_key_of_csr, requests_lock
from conformance.judge.errors import Inconclusive, Unreachable
from conformance.judge.flows import dropped
from conformance.judge.outcome import of_activation, of_call, of_reply
from conformance.judge.raw import RAW_ACTIONS
from conformance.judge.settings import settings_for
from conformance.model import outcomes
from conformance.model.cases import Case
from conformance.model.catalogue import Requirement
from conformance.model.ledger import shipped_ledger
from conformance.model.profile import DEFAULT_DROP_WAIT, Target
from conformance.model.results import CaseResult, CheckResult
from conformance.model.verdicts import Verdict, strongest
from conformance.wire import wcce
from conformance.wire.dcom import IID_IREMUNKNOWN2
from conformance.wire.gss import nt_hash
from conformance.wire.kerberos import ServiceKeys
from conformance.wire.rpc import NDR20, NDR64
from conformance.wire.wcce import CAPropId, Disposition, PropType

__all__ = ["Engine", "slug"]

_INTERFACES = {"ICertRequestD": wcce.IID_ICERTREQUESTD, "ICertRequestD2": wcce.IID_ICERTREQUESTD2,
               "IRemUnknown2": IID_IREMUNKNOWN2}
_SYNTAXES = {"NDR": NDR20, "NDR64": NDR64}

#: The requirement string bindings break: "the object exporter on the port its string
#: binding names" ([MS-WCCE] 2.1; [MS-DCOM] 2.2.19.3).
BINDINGS_REQUIREMENT = "WCCE-T-01"
#: The ledger situation every case's activation step is in: Windows answers ``accept``, an
#: activation whose reply names an exporter the client reaches (a Windows client tries the
#: ncacn_ip_tcp string bindings in order, [MS-DCOM] 3.2.4.1.1.2), so an activation whose
#: bindings name nothing usable is not Windows' answer.
ACTIVATION_SITUATION = "dcom/activation/accepted"


def slug(case_id: str) -> str:
    """A case ID as a file name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", case_id).strip("_")


class Engine:
    """One per worker: holds the target and the activations cases may share."""

    def __init__(self, target: Target, catalogue: Mapping[str, Requirement], *,
                 evidence_dir: pathlib.Path | None = None, service_keys: ServiceKeys | None = None,
                 timeout: float | None = None, resolver: Resolver | None = None) -> None:
        self.target = target
        self.timeout = timeout  # every wait of the client (None: the client settings' own)
        self.resolver = resolver or Resolver()  # names in string bindings, looked up once per run
        self.catalogue = catalogue
        self.evidence_dir = evidence_dir
        # every account a case authenticates as (the second one too): the wire is read with each
        self.identities = {a.user: nt_hash(a.password) for a in (target, target.second) if a is not None}
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
        self._refused_key: bytes | None = None  # the public key of the last request a case sent
        self._bindings_fault: NoUsableBinding | None = None  # an activation case's unusable bindings
        self._probe = EffectProbe(target, self.tickets) if target.kind == "ca" else None

    def drop_wait_for(self, case: Case) -> float:
        """How long after its answer the target has to close a connection for the close to be
        seen: the profile's ``drop_wait``, a connection still open then has stayed.  A case
        that expects the drop looks for it at least DEFAULT_DROP_WAIT, as every case did
        before targets had their own: the wait ends at the close, so a target that drops as
        expected costs nothing, and a CA slowed by its machine's load is not taken for one
        that kept the connection."""
        if case.connection_drops:
            return max(self.target.drop_wait, DEFAULT_DROP_WAIT)
        return self.target.drop_wait

    # -- what a case's params stand for --------------------------------------------------

    def settings(self, case: Case) -> ClientSettings:
        settings = settings_for(self.target, case.client, credentials=case.params.credentials, tickets=self.tickets)
        return settings if self.timeout is None else dataclasses.replace(settings, timeout=self.timeout)

    def ca_name(self, case: Case) -> str | None:
        name = self.target.ca_name
        return {"target": name, "wrong": f"NOT-{name}", "lower": name.lower(), "empty": "",
                "null": None}[case.params.ca_name]

    def template(self, case: Case) -> str:
        return {"issue": self.target.issue_template,
                "pending": self.target.templates.get("pending", "UserApproval"),
                "unknown": "NoSuchTemplate-0x80094800"}[case.params.template]

    # -- running ------------------------------------------------------------------------

    def run(self, case: Case) -> CaseResult:
        """``case``'s result.  A refusal-effect bracket holds the target to itself (no other
        case of any run on this machine submits inside it); other cases share it."""
        probing = "refusal-effect" in case.checks and self._probe is not None
        with requests_lock(self.target, exclusive=probing):
            return self._run(case, probing)

    def _run(self, case: Case, probing: bool) -> CaseResult:
        start = time.monotonic()
        level = strongest(self.catalogue[r].level for r in case.requirements)
        base = dict(case_id=case.id, title=case.title, requirements=case.requirements,
                    expected=case.expect, settings=dict(case.client), level=level)
        for claim in case.claims:
            holds = self.target.claims.holds(claim)
            if not holds:
                why = "unknown" if holds is None else "not claimed"
                return CaseResult(**base, verdict=Verdict.NA, actual="not run",
                                  reason=f"target claim {claim}: {why}")
        tap = Tap()
        effect, effect_problem, before = None, None, None
        self._refused_key = None
        self._bindings_fault = None
        try:
            settings = self.settings(case)
        except SettingsError as exc:  # the case table or the profile: the suite's own input
            return CaseResult(**base, verdict=Verdict.ERROR, actual="not run", reason=str(exc))
        # -- the boundary: what went wrong becomes a verdict here, and only here ----------
        try:
            if probing:
                try:
                    before = self._probe.marker()
                except ProbeFailed as exc:
                    effect_problem = str(exc)
            observed, connection_dropped = self._drive(case, settings, tap)
        except NoUsableBinding as exc:
            if exc.conclusive:  # the bindings name nothing a client could use: WCCE-T-01
                return self._unusable_bindings(case, base, exc, tap, start)
            return CaseResult(**base, verdict=Verdict.INCONCLUSIVE, actual="exporter unreachable",
                              reason=f"none of the exporter's string bindings could be reached from here: {exc.detail}",
                              seconds=time.monotonic() - start)
        except TargetFault as exc:  # what the target sent: the observed outcome, judged below
            observed, connection_dropped = str(exc), None
        except Unreachable as exc:
            return CaseResult(**base, verdict=Verdict.INCONCLUSIVE, actual="target unreachable",
                              reason=str(exc), seconds=time.monotonic() - start)
        except (Inconclusive, RpcError) as exc:  # the target did not do what the case needs
            return CaseResult(**base, verdict=Verdict.INCONCLUSIVE, actual="not judged", reason=str(exc),
                              seconds=time.monotonic() - start)
        except (OSError, KerberosError) as exc:  # a connection refused or timed out, mid-run too; or no ticket
            return CaseResult(**base, verdict=Verdict.INCONCLUSIVE, actual="target unreachable",
                              reason=f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - start)
        except Exception as exc:  # a suite bug: ERROR, with the traceback as reason
            return CaseResult(**base, verdict=Verdict.ERROR, actual=f"{type(exc).__name__}: {exc}",
                              reason=traceback.format_exc(limit=6), seconds=time.monotonic() - start)
        transcript = tap.transcript(self.identities, service_keys=self.service_keys)
        if before is not None and self._refused_key is not None and observed in case.expect \
                and observed != outcomes.ACCEPT:  # a refusal of a request: judge its effect
            try:
                effect = self._probe.observe(before, self._probe.marker(), self._refused_key)
            except ProbeFailed as exc:
                effect_problem = str(exc)
        context = CheckContext(
            effect=effect, effect_problem=effect_problem if self._refused_key is not None else None,
            side=case.side, impersonation=settings.impersonation,
            exporter_spn=self._exporter_spn,
            plaintexts=tuple(p for p in (
                (self.ca_name(case) or "").encode("utf-16-le"),
                # the CA's name as its certificates spell it (issuer and chain of a Request's response)
                self.target.ca_name.encode("utf-8"),
                f"CertificateTemplate:{self.template(case)}".encode("utf-16-le")) if len(p) > 4))
        check_results = tuple(run_check(name, transcript, context) for name in case.checks)
        if self._bindings_fault is not None:  # an activation case: accepted, but no usable binding
            check_results += (self._bindings_row(self._bindings_fault),)
        decision = decide(case, level, observed, connection_dropped, check_results)
        return CaseResult(**base, verdict=decision.verdict, actual=observed, checks=check_results,
                          outcome_matched=decision.outcome_matched, connection_matched=decision.connection_matched,
                          reason=decision.reason, **self._evidence(case, tap, transcript),
                          seconds=time.monotonic() - start)

    def _evidence(self, case: Case, tap: Tap, transcript) -> dict:
        pcap = None
        if self.evidence_dir is not None:
            path = self.evidence_dir / f"{slug(case.id)}.pcapng"
            write_pcapng(path, tap.chunks, tap.connections)
            pcap = str(path)
        return dict(ladder=tuple(evidence.ladder(transcript)), connections=tuple(evidence.connections(transcript)),
                    pcap=pcap)

    # -- string bindings: WCCE-T-01 wherever the activation is the step -------------------

    def _bindings_row(self, fault: NoUsableBinding) -> CheckResult:
        """The activation step's verdict on the exporter's string bindings, as WCCE-T-01's."""
        requirement = self.catalogue[BINDINGS_REQUIREMENT]
        return CheckResult(check="string-bindings", requirement=BINDINGS_REQUIREMENT,
                           verdict=requirement.level.violation,
                           expected=("an ncacn_ip_tcp string binding whose host resolves and which names the "
                                     "exporter's endpoint (a client tries them in order, MS-DCOM 3.2.4.1.1.2)",),
                           actual=f"{fault.observed}: {fault.detail}")

    def _unusable_bindings(self, case: Case, base: dict, fault: NoUsableBinding, tap: Tap,
                           start: float) -> CaseResult:
        """The activation's reply named no exporter the client could use: the activation step
        FAILs WCCE-T-01, and the case's own requirements were not reached (INCONCLUSIVE)."""
        row = self._bindings_row(fault)
        not_reached = tuple(
            CheckResult(check="not-reached", requirement=r, verdict=Verdict.INCONCLUSIVE, expected=case.expect,
                        actual="not reached: the activation's string bindings name no usable exporter")
            for r in case.requirements if r != BINDINGS_REQUIREMENT)
        situation = shipped_ledger()[ACTIVATION_SITUATION]
        reason = (f"{BINDINGS_REQUIREMENT}: the activation's string bindings name no exporter a client can use "
                  f"({fault.detail}); {situation.id}: Windows answers {' or '.join(situation.windows)}, and a "
                  f"Windows client tries each ncacn_ip_tcp binding in order (MS-DCOM 3.2.4.1.1.2, 2.2.19.3); "
                  f"the case's own step was not reached")
        transcript = tap.transcript(self.identities, service_keys=self.service_keys)
        return CaseResult(**base, verdict=row.verdict, actual=outcomes.activation(fault.observed),
                          checks=(row, *not_reached), reason=reason, **self._evidence(case, tap, transcript),
                          seconds=time.monotonic() - start)

    # -- flows ----------------------------------------------------------------------------

    def _activate(self, case: Case, settings: ClientSettings, session: WcceSession) -> str | None:
        """Activate (or reuse a shared activation); None on success, else the outcome."""
        key = (settings.provider, settings.impersonation, settings.activation_level, settings.level >= RPC_C_AUTHN_LEVEL.PKT_INTEGRITY,
               settings.clsid, settings.iids, settings.server_alive2)
        if not case.params.fresh_activation and key in self._activations:
            session.activation = self._activations[key]
            return None
        try:
            outcome, activation = session.activate()
        except (ConnectionRefusedError, socket.timeout, OSError) as exc:
            raise Unreachable(f"{self.target.host}:{self.target.activation_port}: {exc}") from exc
        if activation is None:
            return outcomes.activation(of_reply(outcome))
        if activation.status != 0:
            return outcomes.activation(outcomes.hresult(activation.status))
        self._activations[key] = activation
        return None

    def _drive(self, case: Case, settings: ClientSettings, tap: Tap) -> tuple[str, bool | None]:
        if self.target.kind == "rpc":
            return self._drive_plain(case, settings, tap)
        session = WcceSession.from_settings(settings, tap=tap, resolver=self.resolver)
        self._exporter_spn = None
        try:
            if case.kind == "activation":
                return self._activation_case(session, judge_server_alive=case.client.get("server_alive2") is True), None
            failed = self._activate(case, settings, session)
            if failed is not None:
                return failed, None
            self._exporter_spn = session.exporter_spn()
            if case.kind == "bind":
                return self._bind_case(case, settings, DcomEndpoint(session, b""))
            if case.kind == "raw":
                endpoint = DcomEndpoint(session, orpc_request_stub(methods.ping(self.ca_name(case))))
                return RAW_ACTIONS[case.action](self, case, settings, endpoint, tap)
            if case.kind == "flow":
                return self._flow_case(case, session)
            return self._call_case(case, session)
        finally:
            session.close()

    def _drive_plain(self, case: Case, settings: ClientSettings, tap: Tap) -> tuple[str, bool | None]:
        """A plain DCE/RPC target: only RPC-layer bind and raw cases reach it (the others
        need the claim ``dcom``, which such a target does not make)."""
        t = self.target
        security = settings.security()
        if t.kerberos is not None:  # the server's own principal, not host/<address>
            security = dataclasses.replace(security, target_name=f"host/{t.kerberos.service_host}")
        endpoint = RpcEndpoint(t.host, t.activation_port, t.interface, security, tap=tap)
        try:
            if case.kind == "bind":
                return self._bind_case(case, settings, endpoint)
            if case.kind == "raw":
                return RAW_ACTIONS[case.action](self, case, settings, endpoint, tap)
            raise AssertionError(f"case kind {case.kind} cannot run on a plain RPC endpoint")
        finally:
            endpoint.close()

    def _activation_case(self, session: WcceSession, *, judge_server_alive: bool = False) -> str:
        """The activation's outcome; with ``judge_server_alive`` (a case whose client table asks
        for ServerAlive2 first), a refused ServerAlive2 is the outcome (WCCE-T-22)."""
        try:
            outcome, activation = session.activate()
        except (ConnectionRefusedError, socket.timeout, OSError) as exc:
            raise Unreachable(str(exc)) from exc
        if judge_server_alive and session.server_alive is not None \
                and of_reply(session.server_alive) != outcomes.ACCEPT:
            # the unauthenticated ServerAlive2 a Windows client sends first was refused (WCCE-T-22)
            return outcomes.step("serveralive2", of_reply(session.server_alive))
        observed = of_activation(outcome, activation)
        if observed == outcomes.ACCEPT:  # accepted: does the reply name an exporter a client can use?
            try:
                session.exporter_candidates()
            except NoUsableBinding as exc:
                if exc.conclusive:
                    self._bindings_fault = exc
        return observed

    def _bind_case(self, case: Case, settings: ClientSettings, endpoint: Endpoint) -> tuple[str, bool | None]:
        syntaxes = [_SYNTAXES[s] for s in case.params.transfer_syntaxes]
        if isinstance(endpoint, RpcEndpoint):  # RPC-layer binds: the endpoint's own interface
            interface, version = endpoint.interface, endpoint.if_version
        else:
            interface, version = _INTERFACES[case.params.interface], settings.if_version
        with endpoint.connection() as conn:
            outcome = conn.bind(interface, version, transfer_syntaxes=syntaxes)
            return of_reply(outcome), dropped(case, conn, self.drop_wait_for(case))

    def method_call(self, case: Case, method: str | None = None):
        """The case's WCCE method (or ``method``) as a request and the interface it is on."""
        method = method or case.method
        ca = self.ca_name(case)
        csr = methods.new_pkcs10(f"wcce-conformance-{slug(case.id)[-40:]}")
        if method in ("Request", "Request2"):
            self._refused_key = public_key_of_csr(csr)  # if it is refused, was it processed?
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
            return of_reply(bound), dropped(case, session.exporter, self.drop_wait_for(case))
        request, interface = self.method_call(case)
        ipid = uuid.uuid4() if case.params.ipid == "unknown" else None
        result = session.call(request, interface=interface, ipid=ipid)
        return of_call(result), dropped(case, session.exporter, self.drop_wait_for(case))

    def _flow_case(self, case: Case, session: WcceSession) -> tuple[str, bool | None]:
        """pending -> retrieve: disposition 5 with an ID, then 5 again for that ID."""
        session.connect_exporter()
        request, interface = self.method_call(case)
        first = session.call(request, interface=interface)
        if first.response is None or int(first.response.pdwDisposition) != Disposition.UNDER_SUBMISSION:
            return outcomes.step("submit", of_call(first)), None
        request_id = int(first.response.pdwRequestId)
        again = session.call(methods.retrieve(self.ca_name(case), request_id))
        if again.response is None:
            return outcomes.step("retrieve", of_call(again)), None
        if int(again.response.pdwRequestId) != request_id:
            return "retrieve answered another request ID", None
        return (outcomes.ACCEPT if int(again.response.pdwDisposition) == Disposition.UNDER_SUBMISSION
                else outcomes.step("retrieve", of_call(again))), None
