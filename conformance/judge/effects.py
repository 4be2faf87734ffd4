"""A refusal judged by its effect, not only by its reply.

"MUST refuse" ([MS-WCCE] 2.1, 3.2.1.4.2.1) means the request is not processed.  Around a
Request/Request2 the target refuses below PKT_PRIVACY, the engine brackets the refused
call with two marker requests on a PKT_PRIVACY session of its own (their request IDs are
the CA's numbering before and after) and inspects every request ID between them by status
inspection (Request with an empty request and the ID): a certificate for the refused
request's key among them means the CA processed what it refused.  The observation is a
:class:`RefusalEffect`; the ``refusal-effect`` check (:mod:`conformance.judge.checks`)
judges it.

Entered but not issued (a row that failed, was denied or waits) is told from another
client's request only when nobody else submits: a status inspection answers both alike.
So on a CA other clients use, only a certificate for the refused request's own key
counts; when the profile claims ``sole_requester`` (every embedded CA does), any request
the CA numbered between the markers is the refused one, entered.  The cases of one run
take :func:`requests_lock` (shared; a bracket exclusive), so its other workers do not
submit inside a bracket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import pathlib
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conformance.client import methods
from conformance.client.errors import TargetFault
from conformance.client.session import WcceSession
from conformance.judge.settings import settings_for
from conformance.model.profile import Target
from conformance.wire import wcce
from conformance.wire.hresult import HResult
from conformance.wire.wcce import Disposition

__all__ = ["RefusalEffect", "EffectProbe", "public_key_of_csr", "requests_lock"]

#: IDs between the markers the probe inspects at most (a busy shared CA: the rest unknown)
MAX_INSPECTED = 32
#: What status inspection answers for an ID that names no request ([MS-WCCE] 3.2.1.4.2.1.3;
#: which one a Windows CA uses is unconfirmed, both are accepted)
NO_SUCH_REQUEST = frozenset({HResult.CERTSRV_E_PROPERTY_EMPTY, HResult.CERTSRV_E_NO_REQUEST})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RefusalEffect:
    before: int  # the marker request's ID before the refused call
    after: int  # ... and after it
    issued: tuple[int, ...] = ()  # IDs holding a certificate for the refused request's key
    other: tuple[int, ...] = ()  # IDs between the markers that are not (provably) ours
    #: IDs between the markers that name a request, when nobody else submits: the refused one
    entered: tuple[int, ...] = ()
    uninspected: int = 0  # IDs between the markers beyond MAX_INSPECTED


def public_key_of_csr(csr: bytes) -> bytes:
    return x509.load_der_x509_csr(csr).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class EffectProbe:
    """A PKT_PRIVACY session of the target's account, kept open across cases."""

    def __init__(self, target: Target, tickets=None) -> None:
        self.target = target
        self.tickets = tickets
        self._session: WcceSession | None = None

    def _open(self) -> WcceSession:
        if self._session is None:
            settings = settings_for(self.target, {"provider": "spnego-ntlm", "level": 6, "server_alive2": False},
                                    tickets=self.tickets)
            session = WcceSession.from_settings(settings)
            _, activation = session.activate()
            if activation is None or activation.status != 0:
                session.close()
                raise ProbeFailed("the effect probe could not activate at PKT_PRIVACY")
            session.connect_exporter()
            self._session = session
        return self._session

    def _call(self, request):
        try:
            result = self._open().call(request)
        except (OSError, TargetFault) as exc:  # whatever the target does to the probe: not observed
            self.close()
            raise ProbeFailed(f"the effect probe's session failed: {exc}") from exc
        if result.response is None:
            self.close()
            raise ProbeFailed(f"the effect probe's call was refused at PKT_PRIVACY (ptype {result.outcome.ptype})")
        return result.response

    def marker(self) -> int:
        """A request of the issuing template, at PKT_PRIVACY: the CA's next request ID."""
        csr = methods.new_pkcs10("wcce-conformance-effect-marker")
        response = self._call(methods.request(self.target.ca_name, csr, template=self.target.issue_template))
        return int(response.pdwRequestId)

    def observe(self, before: int, after: int, refused_key: bytes) -> RefusalEffect:
        issued, entered, other = [], [], []
        sole = self.target.claims.sole_requester is True
        between = list(range(before + 1, after))
        for request_id in between[:MAX_INSPECTED]:
            response = self._call(methods.retrieve(self.target.ca_name, request_id))
            der = wcce.blob_bytes(response.pctbEncodedCert)
            disposition = int(response.pdwDisposition)
            if disposition == Disposition.ISSUED and der and _public_key(der, request_id) == refused_key:
                issued.append(request_id)
            elif disposition in NO_SUCH_REQUEST:
                continue  # a number the CA skipped: nothing entered
            elif sole:
                entered.append(request_id)
            else:
                other.append(request_id)
        return RefusalEffect(before=before, after=after, issued=tuple(issued), entered=tuple(entered),
                             other=tuple(other), uninspected=max(0, len(between) - MAX_INSPECTED))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


@contextlib.contextmanager
def requests_lock(target: Target, *, exclusive: bool):
    """Held around each case against ``target`` by every worker of every run on this machine:
    shared for a case, exclusive for a refusal-effect bracket, so that nothing of ours is
    submitted between its markers but the refused request."""
    name = hashlib.sha256(f"{target.host}|{target.activation_port}|{target.ca_name}".encode()).hexdigest()[:16]
    path = pathlib.Path(tempfile.gettempdir()) / f"wcce-conformance-{name}.lock"
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ProbeFailed(Exception):
    """The probe itself could not observe (the target refused or dropped its PKT_PRIVACY session)."""


def _public_key(der: bytes, request_id: int) -> bytes:
    try:
        return x509.load_der_x509_certificate(der).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except ValueError as exc:  # the target's bytes: the probe cannot tell whose key it holds
        raise ProbeFailed(f"request {request_id}'s certificate does not parse: {exc}") from exc
