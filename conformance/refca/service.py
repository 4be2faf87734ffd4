"""ICertRequestD / ICertRequestD2 semantics ([MS-WCCE] 3.2.1.4).

Handlers take the :class:`~conformance.refca.rpc.calls.Call` and the dissected
[in] parameters (ORPCTHIS already removed by the exporter) and return the
response packet (ORPCTHAT is added by the exporter) or a Fault.

Processing order for every method ([MS-WCCE] 3.2.1.4.2.1): IF_NOREMOTEICERTREQUEST,
then the privacy rule of IF_ENFORCEENCRYPTICERTREQUEST, then the CA name, then the
method itself.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from scapy.layers.dcerpc import RPC_C_AUTHN_LEVEL

from conformance.refca.config import CAConfig, RequestDenial
from conformance.refca.issuer import CertificateAuthority, IssuanceError, Requester
from conformance.refca.properties import (
    NAME_CHECK_EXEMPT, CAFacts, PropertyError, ca_cert_value, property_info, property_value,
    sanitize_ca_name,
)
from conformance.refca.requests import RequestRejected, parse_attributes, parse_request
from conformance.refca.rpc.calls import Call, Fault
from conformance.refca.store import RequestStatus, RequestStore, StoredRequest, serial_text
from conformance.refca.templates import IssuePolicy, Template, templates_property
from conformance.wire import wcce
from conformance.wire.rpc import FaultStatus
from conformance.wire.wcce import (
    CAINFO, Disposition, HResult, InterfaceFlag, Opnum, RequestFlag, blob_bytes, blob_record, utf16z,
)
from conformance.wire.ndrcodec import record

__all__ = ["WcceBehaviour", "RequestErrorCarrier", "UnpublishedTemplate", "WcceService", "Outcome"]

LogFn = Callable[..., None]

# Disposition messages as Windows words them ([MS-WCCE] 3.2.1.4.2.1 note <82>).
MSG_ISSUED = "Issued"
MSG_PENDING = "Taken Under Submission"
MSG_DENIED = "Denied by Policy Module"
#: The template an UnpublishedTemplate.ISSUE_AS_USER request is issued under.
_FALLBACK_TEMPLATE = "user"


class RequestErrorCarrier(enum.Enum):
    """Where Request/Request2 put an error that refuses the call."""

    DISPOSITION = "disposition"  # "The server MUST return errors through the pdwDisposition parameter"
    HRESULT = "hresult"  # the method's return value


class UnpublishedTemplate(enum.Enum):
    """What a request for a template the CA does not publish gets."""

    REFUSE = "refuse"  # CERTSRV_E_UNSUPPORTED_CERT_TYPE ([MS-WCCE] 3.2.1.4.2.1.4)
    ISSUE_AS_USER = "issue-as-user"  # a certificate of the User template
    #: refused as a template the requester may not enroll for (CERTSRV_E_TEMPLATE_DENIED)
    REFUSE_AS_DENIED = "refuse-as-denied"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WcceBehaviour:
    """ICertRequestD/D2's declared behaviour; defaults are the reference (Windows) rules.

    A server mutant (conformance.mutation.server) replaces one field.
    """

    #: With IF_ENFORCEENCRYPTICERTREQUEST the CA "MUST refuse" calls below
    #: RPC_C_AUTHN_LEVEL_PKT_PRIVACY ([MS-WCCE] 2.1).
    honour_enforce_encrypt: bool = True
    #: pwszAuthority must name this CA, else E_INVALIDARG ([MS-WCCE] 3.1.1.4.2, 3.2.1.4.2.1.1).
    check_ca_name: bool = True
    #: Request/Request2 "MUST return zero ... errors through the pdwDisposition
    #: parameter" ([MS-WCCE] 3.2.1.4.2.1).
    request_errors: RequestErrorCarrier = RequestErrorCarrier.DISPOSITION
    #: A template the CA does not publish is refused ([MS-WCCE] 3.2.1.4.2.1.4).
    unpublished_template: UnpublishedTemplate = UnpublishedTemplate.REFUSE
    #: A template that needs CA manager approval takes the request under submission
    #: (disposition 5, [MS-WCCE] 3.1.1.4.3.7, 3.2.1.4.2.1.3).
    pend_approval_templates: bool = True
    #: "MUST refuse" below PKT_PRIVACY means the request is not processed ([MS-WCCE] 2.1):
    #: the refusal comes before the request is entered or issued.
    refuse_before_processing: bool = True
    #: The IF_ENFORCEENCRYPTICERTREQUEST rule applies to calls on ICertRequestD2 as on
    #: ICertRequestD ([MS-WCCE] 2.1: every certificate-request operation).  False: only
    #: calls bound to ICertRequestD are held to PKT_PRIVACY.
    enforce_encrypt_on_icertrequestd2: bool = True
    #: pwszAuthority is compared case-insensitively ([MS-WCCE] 3.2.1.4.2.1.1).
    ca_name_ignores_case: bool = True
    #: A request refused below PKT_PRIVACY is not entered in the database ([MS-WCCE] 2.1:
    #: "MUST refuse").  True: it is entered as a failed request (an ID, no certificate).
    record_refused_requests: bool = False
    #: Status inspection by request ID finds requests under submission (disposition 5,
    #: [MS-WCCE] 3.2.1.4.2.1.3).  False: only resolved requests are found.
    inspect_pending_requests: bool = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """Result of Request/Request2 before it is put into either response shape."""

    request_id: int = 0
    disposition: int = Disposition.ERROR
    chain: bytes = b""
    certificate: bytes = b""
    message: str = ""
    status: int = HResult.S_OK


class _Refused(Exception):
    """A method refuses before doing anything; ``hresult`` or a fault."""

    def __init__(self, *, hresult: int | None = None, fault: int | None = None,
                 privacy: bool = False) -> None:
        super().__init__(hex(hresult if hresult is not None else fault))
        self.hresult = hresult
        self.fault = fault
        self.privacy = privacy  # the IF_ENFORCEENCRYPTICERTREQUEST refusal


class WcceService:
    def __init__(self, *, config: CAConfig, ca: CertificateAuthority, store: RequestStore,
                 templates: dict[str, Template], behaviour: WcceBehaviour | None = None,
                 log: LogFn | None = None) -> None:
        self.behaviour = behaviour or WcceBehaviour()
        self.config = config
        self.ca = ca
        self.store = store
        self.templates = templates
        self._log = log or (lambda event, **fields: None)
        name = config.ca_name
        # "CN, sanitized CN, or short sanitized CN of the latest signing cert,
        # compared case-insensitively" ([MS-WCCE] 3.2.1.4.2.1.1).
        self._names = {name.lower(), sanitize_ca_name(name).lower()}
        self.facts = CAFacts(
            ca_name=name, dns_name=config.dns_name, ca_type=config.ca_type,
            ca_cert_der=ca.certificate_der, ca_chain_pkcs7=ca.chain_pkcs7(),
            crl_der=self._crl, templates=templates_property(templates),
            cainfo=CAINFO(CAType=config.ca_type, cExitAlgorithms=0, cKRACertCount=0,
                          fAdvancedServer=0),
        )

    def _crl(self) -> bytes:
        return self.ca.crl_der()

    def handlers(self) -> dict[int, Callable]:
        return {
            Opnum.REQUEST: self.request,
            Opnum.GET_CA_CERT: self.get_ca_cert,
            Opnum.PING: self.ping,
            Opnum.REQUEST2: self.request2,
            Opnum.GET_CA_PROPERTY: self.get_ca_property,
            Opnum.GET_CA_PROPERTY_INFO: self.get_ca_property_info,
            Opnum.PING2: self.ping2,
        }

    # -- common checks -------------------------------------------------------------------

    def _admit(self, call: Call, *, enroll_denied: int = HResult.CERTSRV_E_ENROLL_DENIED) -> None:
        policy = self.config.policy
        if policy.interface_flags & InterfaceFlag.NOREMOTEICERTREQUEST:
            raise _Refused(hresult=enroll_denied)
        # [MS-WCCE] 2.1: with IF_ENFORCEENCRYPTICERTREQUEST the CA "MUST refuse to
        # establish a connection with the client by returning a nonzero error" unless
        # the call is at RPC_C_AUTHN_LEVEL_PKT_PRIVACY.
        held = (self.behaviour.enforce_encrypt_on_icertrequestd2
                or call.interface != wcce.IID_ICERTREQUESTD2)
        if (self.behaviour.honour_enforce_encrypt and policy.enforce_privacy and held
                and call.auth.auth_level < RPC_C_AUTHN_LEVEL.PKT_PRIVACY):
            denial = policy.request_denial
            self._log("privacy_refused", opnum=call.opnum, auth_level=call.auth.auth_level,
                      form=denial.value)
            if denial is RequestDenial.FAULT_ACCESS_DENIED:
                raise _Refused(fault=FaultStatus.ACCESS_DENIED, privacy=True)
            if denial is RequestDenial.HRESULT_LEGACY:
                raise _Refused(hresult=HResult.E_ACCESSDENIED_LEGACY, privacy=True)
            raise _Refused(hresult=HResult.E_ACCESSDENIED, privacy=True)
        if not call.auth.authenticated:
            raise _Refused(hresult=HResult.E_ACCESSDENIED)

    def _check_name(self, authority: str | None, *, empty_allowed: bool = False) -> None:
        if not self.behaviour.check_ca_name or (not authority and empty_allowed):
            return
        if not self.behaviour.ca_name_ignores_case:
            name = self.config.ca_name
            if authority not in (name, sanitize_ca_name(name)):
                raise _Refused(hresult=HResult.E_INVALIDARG)
            return
        if not authority or authority.lower() not in self._names:
            raise _Refused(hresult=HResult.E_INVALIDARG)

    @staticmethod
    def _text(req, field: str) -> str | None:
        value = req.valueof(field)
        if value is None:
            return None
        if isinstance(value, bytes):
            # scapy hands NDR strings back as UTF-8 (already decoded from UTF-16)
            value = value.decode("utf-8", errors="replace")
        return value.rstrip("\0")

    def _requester(self, call: Call) -> Requester:
        domain, _, user = (call.auth.user or "").rpartition("\\")
        return Requester(user=user, domain=domain or self.config.domain,
                         dns_domain=self.config.dns_domain)

    def _refusal(self, refused: _Refused, make_response, *, disposition_carrier: bool):
        """A refused Request/Request2: a fault, or the error in pdwDisposition or the HRESULT."""
        if refused.fault is not None:
            return Fault(refused.fault)
        if disposition_carrier and self.behaviour.request_errors is RequestErrorCarrier.DISPOSITION:
            return make_response(Outcome(disposition=refused.hresult, status=HResult.S_OK))
        return make_response(Outcome(status=refused.hresult))

    # -- Request / Request2 ---------------------------------------------------------------

    def request(self, call: Call, req):
        def make(o: Outcome):
            return record(
                wcce.Request_Response, pdwRequestId=o.request_id, pdwDisposition=o.disposition,
                pctbCertChain=blob_record(o.chain), pctbEncodedCert=blob_record(o.certificate),
                pctbDispositionMessage=blob_record(utf16z(o.message) if o.message else b""),
                status=o.status)

        return self._enroll(call, req, make, serial=None)

    def request2(self, call: Call, req):
        def make(o: Outcome):
            return record(
                wcce.Request2_Response, pdwRequestId=o.request_id, pdwDisposition=o.disposition,
                pctbFullResponse=blob_record(o.chain), pctbEncodedCert=blob_record(o.certificate),
                pctbDispositionMessage=blob_record(utf16z(o.message) if o.message else b""),
                status=o.status)

        # CR_IN_FULLRESPONSE (CMC full PKI response) is not built yet: the certs-only
        # chain is returned in pctbFullResponse whatever the flag (README: limits).
        return self._enroll(call, req, make, serial=self._text(req, "pwszSerialNumber"))

    def _enroll(self, call: Call, req, make, *, serial: str | None):
        try:
            self._admit(call)
        except _Refused as refused:
            if refused.privacy and not self.behaviour.refuse_before_processing:
                data = blob_bytes(req.pctbRequest)
                if data:  # processed first, refused afterwards: the request is entered and issued
                    self._submit(call, int(req.dwFlags), self._text(req, "pwszAttributes") or "", data)
            elif refused.privacy and self.behaviour.record_refused_requests:
                self._record_refusal(call, req, refused)
            # The privacy refusal takes the configured form; every other error of
            # Request/Request2 travels in pdwDisposition.
            carrier = (not refused.privacy
                       or self.config.policy.request_denial is RequestDenial.DISPOSITION)
            return self._refusal(refused, make, disposition_carrier=carrier)
        # "The method MUST return zero unless otherwise explicitly stated ... The
        # server MUST return errors through the pdwDisposition parameter."
        try:
            self._check_name(self._text(req, "pwszAuthority"))
        except _Refused as refused:
            return self._refusal(refused, make, disposition_carrier=True)
        flags = int(req.dwFlags)
        data = blob_bytes(req.pctbRequest)
        attributes = self._text(req, "pwszAttributes") or ""
        if flags & RequestFlag.PADDING_MASK:
            return make(Outcome(disposition=HResult.E_INVALIDARG, message="dwFlags Padding2 is not 0"))
        if not data:
            outcome = self._inspect(call, int(req.pdwRequestId), serial)
        else:
            outcome = self._submit(call, flags, attributes, data)
        self._log("enroll", opnum=call.opnum, user=call.auth.user, request_id=outcome.request_id,
                  disposition=hex(outcome.disposition))
        return make(outcome)

    def _record_refusal(self, call: Call, req, refused: _Refused) -> None:
        """Enter a refused request in the database as failed (no certificate)."""
        data = blob_bytes(req.pctbRequest)
        if not data:
            return
        attributes = self._text(req, "pwszAttributes") or ""
        hresult = refused.hresult if refused.hresult is not None else HResult.E_ACCESSDENIED
        row = self.store.submit(
            requester=call.auth.user or "", template=parse_attributes(attributes).get("certificatetemplate"),
            attributes=attributes, request_der=data, request_type=int(req.dwFlags) & RequestFlag.FORMAT_MASK,
            decide=lambda request_id: self._failed(hresult, "refused below PKT_PRIVACY"))
        self._log("refusal_recorded", request_id=row.id if row else None)

    def _submit(self, call: Call, flags: int, attributes: str, data: bytes) -> Outcome:
        pairs = parse_attributes(attributes)
        template_name = pairs.get("certificatetemplate")
        template = self._published(template_name) if template_name else None
        requester = self._requester(call)
        request_type = flags & RequestFlag.FORMAT_MASK

        def decide(request_id: int):
            if template_name is None:
                return self._failed(HResult.CERTSRV_E_NO_CERT_TYPE, "no CertificateTemplate given")
            if template is None and self.behaviour.unpublished_template is UnpublishedTemplate.REFUSE_AS_DENIED:
                return self._failed(HResult.CERTSRV_E_TEMPLATE_DENIED,
                                    f"template {template_name!r}: enrollment denied")
            if template is None:
                return self._failed(HResult.CERTSRV_E_UNSUPPORTED_CERT_TYPE,
                                    f"template {template_name!r} is not published")
            try:
                parsed = parse_request(data, request_type)
            except RequestRejected as exc:
                return self._failed(exc.hresult, str(exc))
            if template.policy is IssuePolicy.DENY:
                return RequestStatus.DENIED, Disposition.DENIED, MSG_DENIED, None, None
            if template.policy is IssuePolicy.PENDING and self.behaviour.pend_approval_templates:
                return RequestStatus.PENDING, Disposition.UNDER_SUBMISSION, MSG_PENDING, None, None
            return self._issue(parsed.csr, template, requester)

        row = self.store.submit(requester=call.auth.user or "", template=template_name,
                                attributes=attributes, request_der=data,
                                request_type=request_type, decide=decide)
        return self._outcome(row)

    def resolve_pending(self, request_id: int, *, approve: bool) -> StoredRequest | None:
        def decide(row: StoredRequest):
            if not approve:
                return RequestStatus.DENIED, Disposition.DENIED, "Denied by CA manager", None, None
            template = self._published(row.template or "")
            if template is None:
                return self._failed(HResult.CERTSRV_E_UNSUPPORTED_CERT_TYPE, "template withdrawn")
            domain, _, user = row.requester.rpartition("\\")
            requester = Requester(user=user, domain=domain or self.config.domain,
                                  dns_domain=self.config.dns_domain)
            parsed = parse_request(row.request_der, row.request_type)
            return self._issue(parsed.csr, template, requester)

        return self.store.resolve(request_id, decide)

    def _published(self, name: str) -> Template | None:
        """The published template ``name`` (case-insensitive), or None."""
        template = self.templates.get(name.lower())
        if template is None and self.behaviour.unpublished_template is UnpublishedTemplate.ISSUE_AS_USER:
            return self.templates.get(_FALLBACK_TEMPLATE)
        return template

    def _issue(self, csr, template: Template, requester: Requester):
        try:
            cert = self.ca.issue(csr, template, requester)
        except IssuanceError as exc:
            return self._failed(exc.hresult, str(exc))
        der = cert.public_bytes(serialization.Encoding.DER)
        return RequestStatus.ISSUED, Disposition.ISSUED, MSG_ISSUED, serial_text(cert.serial_number), der

    @staticmethod
    def _failed(hresult: int, message: str):
        return RequestStatus.FAILED, hresult, message, None, None

    def _inspect(self, call: Call, request_id: int, serial: str | None) -> Outcome:
        """Status inspection ([MS-WCCE] 3.2.1.4.2.1.3, 3.2.1.4.3.1.2)."""
        if serial and request_id:
            return Outcome(disposition=HResult.E_INVALIDARG, message="both request ID and serial")
        if serial:
            row = self.store.by_serial(serial)
        elif request_id:
            row = self.store.get(request_id)
        else:
            return Outcome(disposition=HResult.E_INVALIDARG, message="no request ID")
        if row is None:
            return Outcome(request_id=request_id, disposition=HResult.CERTSRV_E_PROPERTY_EMPTY)
        if row.requester.lower() != (call.auth.user or "").lower():
            return Outcome(request_id=request_id, disposition=HResult.E_ACCESSDENIED)
        if row.status is RequestStatus.PENDING and not self.behaviour.inspect_pending_requests:
            # looked up among resolved requests only: one under submission is "not found"
            return Outcome(request_id=request_id, disposition=HResult.CERTSRV_E_PROPERTY_EMPTY)
        return self._outcome(row)

    def _outcome(self, row: StoredRequest) -> Outcome:
        if row.status is RequestStatus.ISSUED:
            leaf = x509.load_der_x509_certificate(row.certificate_der)
            return Outcome(request_id=row.id, disposition=Disposition.ISSUED,
                           certificate=row.certificate_der, chain=self.ca.chain_pkcs7(leaf),
                           message=row.message)
        return Outcome(request_id=row.id, disposition=row.disposition, message=row.message)

    # -- GetCACert / properties / ping ------------------------------------------------------

    def get_ca_cert(self, call: Call, req):
        def make(value: bytes = b"", status: int = HResult.S_OK):
            return record(wcce.GetCACert_Response, pctbOut=blob_record(value), status=status)

        fchain = int(req.fchain)
        try:
            self._admit(call)
            if fchain not in NAME_CHECK_EXEMPT:
                self._check_name(self._text(req, "pwszAuthority"))
            return make(ca_cert_value(self.facts, fchain))
        except _Refused as refused:
            return Fault(refused.fault) if refused.fault is not None else make(status=refused.hresult)
        except PropertyError as exc:
            return make(status=exc.hresult)

    def get_ca_property(self, call: Call, req):
        def make(value: bytes = b"", status: int = HResult.S_OK):
            return record(wcce.GetCAProperty_Response, pctbPropertyValue=blob_record(value), status=status)

        try:
            self._admit(call)
            self._check_name(self._text(req, "pwszAuthority"))
            return make(property_value(self.facts, int(req.PropID), int(req.PropIndex),
                                       int(req.PropType)))
        except _Refused as refused:
            return Fault(refused.fault) if refused.fault is not None else make(status=refused.hresult)
        except PropertyError as exc:
            return make(status=exc.hresult)

    def get_ca_property_info(self, call: Call, req):
        try:
            # IF_NOREMOTEICERTREQUEST: "the error is E_ACCESSDENIED (0x80000009)" (note <121>)
            self._admit(call, enroll_denied=HResult.E_ACCESSDENIED_LEGACY)
            self._check_name(self._text(req, "pwszAuthority"))
        except _Refused as refused:
            if refused.fault is not None:
                return Fault(refused.fault)
            return record(wcce.GetCAPropertyInfo_Response, pcProperty=0, pctbPropInfo=blob_record(b""),
                          status=refused.hresult)
        count, info = property_info()
        return record(wcce.GetCAPropertyInfo_Response, pcProperty=count, pctbPropInfo=blob_record(info),
                      status=HResult.S_OK)

    def _ping(self, call: Call, req, response_cls):
        try:
            self._admit(call)
            # Ping/Ping2: EmptyNameAllowed is true ([MS-WCCE] 3.2.1.4.2.3).
            self._check_name(self._text(req, "pwszAuthority"), empty_allowed=True)
        except _Refused as refused:
            if refused.fault is not None:
                return Fault(refused.fault)
            return record(response_cls, status=refused.hresult)
        return record(response_cls, status=HResult.S_OK)

    def ping(self, call: Call, req):
        return self._ping(call, req, wcce.Ping_Response)

    def ping2(self, call: Call, req):
        return self._ping(call, req, wcce.Ping2_Response)
