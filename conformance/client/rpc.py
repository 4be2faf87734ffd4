"""A DCE/RPC connection-oriented client with every knob exposed, over one TCP socket.

Unlike scapy's ``DCERPC_Client`` it signs at CALL/PKT as well as PKT_INTEGRITY,
keeps the auth_type, level, context id and header-signing choice per connection,
and returns what the server sent as data (:class:`Outcome`) instead of raising,
so a case can assert a bind_nak, a fault or a dropped connection.  A reset, EOF or
a stream that stops framing is an observation too (the connection ended); bytes of the
server's that the client must read and cannot (a PDU that does not dissect as its type,
a security token that does not parse) raise :class:`conformance.client.errors.MalformedReply`.

The GSS exchange uses scapy's SSPs; protection uses
:mod:`conformance.wire.protection`, the same code the reference CA uses.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import uuid

from scapy.layers.dcerpc import (
    DceRpc5, DceRpc5AbstractSyntax, DceRpc5AlterContextResp, DceRpc5BindAck,
    DceRpc5BindNak, DceRpc5Context, DceRpc5Fault, DceRpc5Result, DceRpc5TransferSyntax,
    RPC_C_AUTHN, RPC_C_AUTHN_LEVEL, RPC_C_IMP_LEVEL,
)
from scapy.layers.gssapi import GSS_C_FLAGS, GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED, SSP
from scapy.layers.spnego import SPNEGOSSP

from conformance.client.errors import PARSE_ERRORS, MalformedReply, TargetFault, malformed
from conformance.wire import pdu as build
from conformance.wire.framing import CommonHeader, FramingError, PduFramer
from conformance.wire.gss import token_packet
from conformance.wire.protection import ProtectionContext, ProtectionError, SecTrailer, without_verifier
from conformance.wire.scapymemo import built_as_is
from conformance.wire.rpc import BTFN_PREFIX, NDR20, SEC_TRAILER_LEN, BindTimeFeature, ContextResult, PfcFlag, PType

__all__ = ["Credentials", "Security", "Outcome", "RpcConnection", "RpcError", "gss_flags"]

#: [MS-RPCE] 3.3.1.5.3: the bind-time features the client offers (Windows offers both)
_OFFERED_FEATURES = BindTimeFeature.SECURITY_CONTEXT_MULTIPLEXING | BindTimeFeature.KEEP_CONNECTION_ON_ORPHAN

_RECV = 65536


class RpcError(Exception):
    """The client could not do what it was asked on this exchange (a tamper with nothing
    to tamper with): not the target's fault, and not a bug either; the case is not judged."""

    def __init__(self, message: str, outcome: "Outcome | None" = None) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    user: str
    domain: str
    password: str | None = None
    nt_hash: bytes | None = None
    anonymous: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Security:
    """How a connection authenticates.  ``auth_type`` 0 means unauthenticated."""

    auth_type: int = 0
    level: int = RPC_C_AUTHN_LEVEL.NONE
    impersonation: int = RPC_C_IMP_LEVEL.IMPERSONATE
    credentials: Credentials | None = None
    header_sign: bool = True
    context_id: int = 0
    target_name: str | None = None
    ntlm_clear_flags: int = 0  # NTLM NEGOTIATE flags to withhold (client mutants)
    spnego_auth3: bool = False  # send SPNEGO's third leg in rpc_auth3 (a client mutant)
    tamper_mech_list_mic: bool = False  # flip a bit of SPNEGO's mechListMIC (a security negative)
    auth_pad_alignment: int = 16  # [MS-RPCE] 2.2.2.11; another value is a client mutant
    kerberos: object | None = None  # conformance.client.kerberos.KerberosInitiator: Kerberos, not NTLM


def gss_flags(level: int, impersonation: int) -> GSS_C_FLAGS:
    """GSS request flags for an RPC level and impersonation level ([MS-RPCE]
    3.3.1.5.2.2, 2.2.1.1.9): CONF at privacy, INTEG from CALL (CALL is PKT on a
    connection-oriented transport, and PKT signs every PDU: Windows and Samba treat it as
    PKT_INTEGRITY and refuse a signed PDU whose NTLM context did not negotiate SIGN),
    IDENTIFY at IDENTIFY (and ANONYMOUS), DELEG at DELEGATE."""
    flags = (GSS_C_FLAGS.GSS_C_DCE_STYLE | GSS_C_FLAGS.GSS_C_REPLAY_FLAG
             | GSS_C_FLAGS.GSS_C_SEQUENCE_FLAG | GSS_C_FLAGS.GSS_C_MUTUAL_FLAG)
    if level >= RPC_C_AUTHN_LEVEL.CALL:
        flags |= GSS_C_FLAGS.GSS_C_INTEG_FLAG
    if level >= RPC_C_AUTHN_LEVEL.PKT_PRIVACY:
        flags |= GSS_C_FLAGS.GSS_C_CONF_FLAG
    if impersonation <= RPC_C_IMP_LEVEL.IDENTIFY:
        flags |= GSS_C_FLAGS.GSS_C_IDENTIFY_FLAG
    if impersonation == RPC_C_IMP_LEVEL.DELEGATE:
        flags |= GSS_C_FLAGS.GSS_C_DELEG_FLAG
    return flags


def tampered_mech_list_mic(token) -> bytes:
    """A SPNEGO NegTokenResp with one bit of its mechListMIC's checksum flipped: an
    attacker downgrading the negotiation cannot produce a MIC that verifies ([MS-SPNG] 3.2.5.1)."""
    raw = bytes(token)
    packet = token_packet(RPC_C_AUTHN.GSS_NEGOTIATE, raw)
    resp = getattr(getattr(packet, "innerToken", packet), "token", None)
    mic = getattr(resp, "mechListMIC", None)
    if mic is None:
        raise RpcError("this SPNEGO leg carries no mechListMIC to tamper with")
    signature = bytes(mic.value)
    at = raw.rfind(signature)
    if at < 0 or len(signature) < 8:
        raise RpcError("the mechListMIC could not be located in the token")
    flipped = bytearray(raw)
    flipped[at + 4] ^= 0x01  # the first checksum byte (after the 4-byte version)
    return bytes(flipped)


def _carries_mech_list_mic(token) -> bool:
    resp = getattr(getattr(token, "innerToken", token), "token", None)
    return getattr(resp, "mechListMIC", None) is not None


def _initiator(security: Security, target: str) -> SSP:
    if security.kerberos is not None:
        from conformance.client.kerberos import MicAnsweringSPNEGOSSP

        kerberos = security.kerberos.ssp(target)
        if security.auth_type == RPC_C_AUTHN.GSS_KERBEROS:
            return kerberos
        if security.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE:
            return MicAnsweringSPNEGOSSP([kerberos])  # answers an acceptor's mechListMIC (RFC 4178 5)
        raise ValueError(f"auth_type {security.auth_type} does not carry Kerberos")
    creds = security.credentials
    if creds is None:
        raise ValueError("an authenticated connection needs credentials")
    from conformance.client.ntlm import AnonymousNTLMSSP, FlagsNTLMSSP

    if creds.anonymous:
        ntlm = AnonymousNTLMSSP()
        return SPNEGOSSP([ntlm]) if security.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE else ntlm
    kwargs = {"UPN": f"{creds.user}@{creds.domain}" if creds.domain else creds.user,
              "clear_flags": security.ntlm_clear_flags}
    if creds.nt_hash is not None:
        kwargs["HASHNT"] = creds.nt_hash
    else:
        kwargs["PASSWORD"] = creds.password or ""
    ntlm = FlagsNTLMSSP(**kwargs)
    if security.auth_type == RPC_C_AUTHN.WINNT:
        return ntlm
    if security.auth_type == RPC_C_AUTHN.GSS_NEGOTIATE:
        return SPNEGOSSP([ntlm])
    raise ValueError(f"auth_type {security.auth_type} is not supported by this client yet")


def _connect(host: str, port: int, *, timeout: float | None) -> socket.socket:
    """A TCP connection that sends each PDU when it is written (TCP_NODELAY): with Nagle's
    rule a PDU written behind one the server does not answer (a request behind an auth3) waits
    for the server's delayed ACK, 40 ms on Linux."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the server answered to one step: PDUs (raw bytes) and whether it hung up."""

    pdus: tuple[bytes, ...]
    closed: bool = False
    unverified: str | None = None  # why a response's protection did not verify
    malformed: str | None = None  # why the server's byte stream stopped being PDUs (then it ended)

    @property
    def last(self) -> bytes | None:
        return self.pdus[-1] if self.pdus else None

    @property
    def ptype(self) -> int | None:
        return CommonHeader.parse(self.last).ptype if self.pdus else None

    def packet(self):
        """The last PDU dissected (:func:`dissected`); the fields the client and judge read of
        its type are there, or :class:`MalformedReply` says what is not."""
        return dissected(self.last) if self.pdus else None

    @property
    def fault_status(self) -> int | None:
        if self.ptype != PType.FAULT:
            return None
        return int(self.packet().status)


#: What the client reads of each PDU type it interprets ([C706] 12.6.4): a dissection that
#: lacks one of these is a malformed PDU.
_READ_FIELDS = {
    PType.FAULT: (DceRpc5Fault, ("status",), "fault"),
    PType.BIND_NAK: (DceRpc5BindNak, ("provider_reject_reason",), "bind_nak"),
    PType.BIND_ACK: (DceRpc5BindAck, ("assoc_group_id", "results"), "bind_ack"),
    PType.ALTER_CONTEXT_RESP: (DceRpc5AlterContextResp, ("results",), "alter_context_resp"),
}


def dissected(pdu: bytes, *, compiled: bool = True):
    """``pdu`` dissected, with the fields of its type that are read checked to be there (scapy
    leaves what it cannot dissect as Raw, or as defaults, without saying so).  A fault,
    bind_nak, bind_ack or alter_context_resp that the compiled layouts read with one meaning
    is their record (``wire.pdu.read_reply``: scapy's attribute names); anything else is scapy's
    ``DceRpc5``; ``compiled=False`` is scapy's reading alone (the tests compare the two).  The
    auth token is left out of the dissection (``_auth_token`` reads it; scapy's dissecting it
    was the costly part) unless the sec_trailer itself does not parse."""
    try:
        header = CommonHeader.parse(pdu)
        expected = _READ_FIELDS.get(header.ptype)
        try:
            body = without_verifier(pdu, header, SecTrailer.parse(pdu, header))
        except ProtectionError:
            body = pdu
        else:
            if expected is not None and compiled:
                try:  # the compiled reading of what has one meaning; scapy reads (and judges) the rest
                    return build.read_reply(body, little_endian=header.little_endian)
                except (ValueError, struct.error):
                    pass
        pkt = DceRpc5(body)
        if expected is None:
            return pkt
        layer, fields, name = expected
        if layer not in pkt:
            raise MalformedReply(name, "its body does not dissect")
        body = pkt[layer]
        for field in fields:
            if getattr(body, field) is None:
                raise MalformedReply(name, f"no {field}")
        if "results" in fields:
            results = body.results
            if not isinstance(results, list) or not all(isinstance(r, DceRpc5Result) for r in results) \
                    or len(results) != body.n_results:
                raise MalformedReply(name, f"p_result_list does not hold the n_results ({body.n_results}) it counts")
            for r in results:
                int(r.result), int(r.reason)
        return pkt
    except TargetFault:
        raise
    except PARSE_ERRORS as exc:
        raise malformed(f"PDU (ptype {pdu[2] if len(pdu) > 2 else '?'})", exc) from exc


class RpcConnection:
    """One TCP connection: binds, authenticates, calls; every step returns an Outcome."""

    def __init__(self, host: str, port: int, *, security: Security | None = None,
                 timeout: float = 10.0, max_frag: int = 5840, tap=None,
                 connect_timeout: float | None = None, max_recv_frag: int | None = None) -> None:
        self.host, self.port = host, port
        self.security = security or Security()
        self.timeout = timeout
        self.max_frag = max_frag
        #: the largest fragment the client says it takes: smaller, the server fragments its responses
        self.max_recv_frag = max_frag if max_recv_frag is None else max_recv_frag
        wait = timeout if connect_timeout is None else connect_timeout
        # ``tap`` (conformance.capture.tap.Tap) records every byte of the connection
        self.sock = (tap.connect(host, port, timeout=wait) if tap is not None
                     else _connect(host, port, timeout=wait))
        self._framer = PduFramer()
        self._queue: list[bytes] = []
        self.closed_by_peer = False
        self.malformed: str | None = None  # the stream stopped framing: why
        self.call_id = 0
        self.next_cont_id = 0
        self.contexts: dict[uuid.UUID, int] = {}  # interface -> accepted p_cont_id
        self.protection: ProtectionContext | None = None
        self.header_sign = False
        self._ssp: SSP | None = None
        self._gss = None
        self.assoc_group_id = 0
        self.bind_time_features: int | None = None  # acknowledged by the server's negotiate_ack
        #: what the alter_context carrying the client's next security leg says differently
        #: from the bind (a raw negative's one named change): auth_type, auth_level, or
        #: transfer_syntaxes re-presented for the accepted context
        self.next_leg: dict = {}

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RpcConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- bytes ------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send ``data``; a connection the server reset or closed is noted (the next
        receive sees it ended), not raised: it is what the server did."""
        if self.closed_by_peer:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed_by_peer = True

    def recv_pdu(self, timeout: float | None = None) -> bytes | None:
        """Next whole PDU, or None when the peer closed (or nothing came in ``timeout``)."""
        if self._queue:
            return self._queue.pop(0)
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        while not self._queue:
            try:
                data = self.sock.recv(_RECV)
            except socket.timeout:
                return None
            except OSError:
                data = b""
            if not data:
                self.closed_by_peer = True
                return None
            try:
                self._queue.extend(self._framer.feed(data))
            except FramingError as exc:
                self.closed_by_peer = True
                self.malformed = str(exc)
                return None
        return self._queue.pop(0)

    def exchange(self, data: bytes, *, replies: int = 1, timeout: float | None = None) -> Outcome:
        """Send ``data`` and collect up to ``replies`` PDUs (fewer if the server closes)."""
        self.send(data)
        got = []
        for _ in range(replies):
            pdu = self.recv_pdu(timeout)
            if pdu is None:
                break
            got.append(pdu)
            if CommonHeader.parse(pdu).pfc_flags & PfcFlag.LAST_FRAG:
                break
        return Outcome(pdus=tuple(got), closed=self.closed_by_peer, malformed=self.malformed)

    def is_connected(self, timeout: float) -> bool:
        """True unless the server closed (within ``timeout`` seconds: the judge waits the
        target's ``drop_wait``); consumes nothing if a PDU is waiting."""
        if self._queue:
            return True
        pdu = self.recv_pdu(timeout)
        if pdu is not None:
            self._queue.insert(0, pdu)
            return True
        return not self.closed_by_peer

    def next_call_id(self) -> int:
        self.call_id += 1
        return self.call_id

    # -- bind / alter_context ---------------------------------------------------------

    def contexts_for(self, interface: uuid.UUID, if_version: int, *,
                     transfer_syntaxes=(NDR20,), btfn: bool = True) -> list[DceRpc5Context]:
        elems = []
        for syntax, version in transfer_syntaxes:
            elems.append(DceRpc5Context(
                cont_id=self.next_cont_id,
                abstract_syntax=DceRpc5AbstractSyntax(if_uuid=interface, if_version=if_version),
                transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=syntax, if_version=version)]))
            self.next_cont_id += 1
        if btfn:
            elems.append(DceRpc5Context(
                cont_id=self.next_cont_id,
                abstract_syntax=DceRpc5AbstractSyntax(if_uuid=interface, if_version=if_version),
                transfer_syntaxes=[DceRpc5TransferSyntax(
                    if_uuid=uuid.UUID(bytes=BTFN_PREFIX + _OFFERED_FEATURES.to_bytes(8, "little")),
                    if_version=1)]))
            self.next_cont_id += 1
        return elems

    def _bind_pdu(self, elems, *, alter: bool, token: bytes | None, first_leg: bool) -> bytes:
        sec = self.security
        flags = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG
        if token is not None and sec.header_sign and first_leg:
            flags |= PfcFlag.SUPPORT_HEADER_SIGN
        verifier = None
        if token is not None:
            changed = self.next_leg if alter and not first_leg else {}
            verifier = build.Verifier(
                auth_type=changed.get("auth_type", sec.auth_type), auth_level=changed.get("auth_level", sec.level),
                context_id=sec.context_id, token=token)
        contexts = [(int(e.cont_id), (e.abstract_syntax.if_uuid, int(e.abstract_syntax.if_version)),
                     [(t.if_uuid, int(t.if_version)) for t in e.transfer_syntaxes]) for e in elems]
        return build.bind_bytes(call_id=self.next_call_id(), alter=alter, max_xmit_frag=self.max_frag,
                                max_recv_frag=self.max_recv_frag, assoc_group_id=self.assoc_group_id,
                                contexts=contexts, pfc_flags=int(flags), verifier=verifier)

    def bind(self, interface: uuid.UUID, if_version: int = 0, **context_args) -> Outcome:
        """Bind (first time) or alter_context, authenticating on the first bind.

        Returns the server's last answer.  On success the accepted context id is
        remembered for ``interface``.
        """
        alter = self.call_id > 0
        elems = self.contexts_for(interface, if_version, **context_args)
        sec = self.security
        if sec.auth_type == 0 or self.protection is not None:
            outcome = self.exchange(self._bind_pdu(elems, alter=alter, token=None, first_leg=False))
            self._note_contexts(interface, elems, outcome)
            return outcome
        target = sec.target_name or f"host/{self.host}"
        self._ssp = _initiator(sec, target)
        flags = gss_flags(sec.level, sec.impersonation)
        self._gss, token, status = self._ssp.GSS_Init_sec_context(None, req_flags=flags,
                                                                  target_name=target)
        outcome = self.exchange(self._bind_pdu(elems, alter=alter, token=_wire(token),
                                               first_leg=True))
        if outcome.ptype not in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP):
            return outcome
        self.header_sign = bool(CommonHeader.parse(outcome.last).pfc_flags
                                & PfcFlag.SUPPORT_HEADER_SIGN) and sec.header_sign
        self._note_contexts(interface, elems, outcome)
        tampered = False
        while True:
            reply_token = _auth_token(outcome.last)
            if not reply_token:
                break
            try:
                self._gss, token, status = self._ssp.GSS_Init_sec_context(
                    self._gss, input_token=token_packet(self._ssp.auth_type, reply_token),
                    target_name=target)
            except PARSE_ERRORS as exc:  # the server's token, as the provider read it
                raise malformed("security token", exc) from exc
            if status not in (GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED):
                raise TargetFault("security context refused by the client",
                                  f"GSS_Init_sec_context on the server's token: 0x{status:x}")
            if token is None:
                break
            if sec.tamper_mech_list_mic and not tampered and _carries_mech_list_mic(token):
                # the first leg with a mechListMIC: NTLM's AUTHENTICATE, or for Kerberos the
                # answer to an acceptor's mechListMIC
                token = tampered_mech_list_mic(token)
                tampered = True
            if self._ssp.LegsAmount(self._gss) % 2 == 1 or sec.spnego_auth3:
                # NTLM: rpc_auth3 carries the last leg; "the server MUST NOT respond"
                self.send(self._auth3_pdu(_wire(token)))
                break
            elems = [e for e in elems if e.cont_id == self.contexts.get(interface)] or elems
            if "transfer_syntaxes" in self.next_leg:  # the accepted context, other syntaxes
                elems = [DceRpc5Context(cont_id=e.cont_id, abstract_syntax=e.abstract_syntax,
                                        transfer_syntaxes=[DceRpc5TransferSyntax(if_uuid=s, if_version=v)
                                                           for s, v in self.next_leg["transfer_syntaxes"]])
                         for e in elems]
            outcome = self.exchange(self._bind_pdu(elems, alter=True, token=_wire(token),
                                                   first_leg=False))
            if outcome.ptype != PType.ALTER_CONTEXT_RESP:
                return outcome
        if sec.tamper_mech_list_mic and not tampered:
            raise RpcError("no SPNEGO leg of this handshake carried a mechListMIC to tamper with", outcome)
        self._verify_server_mic(outcome)
        self.protection = ProtectionContext(ssp=self._ssp, context=self._gss,
                                            header_sign=self.header_sign)
        return outcome

    def _verify_server_mic(self, outcome: Outcome) -> None:
        """scapy's SPNEGO initiator accepts the acceptor's final mechListMIC without
        checking it ([MS-SPNG] 3.1.5.1 requires it); check it here, which also
        consumes the acceptor's sequence number 0 as Windows does."""
        if not isinstance(self._ssp, SPNEGOSSP) or getattr(self._gss, "verified_mic", True):
            return
        try:
            token = token_packet(self._ssp.auth_type, _auth_token(outcome.last))
        except PARSE_ERRORS as exc:
            raise malformed("security token", exc) from exc
        resp = getattr(getattr(token, "innerToken", token), "token", None)
        mic = getattr(resp, "mechListMIC", None)
        if mic is None:
            return
        try:
            self._gss.ssp.VerifyMechListMIC(self._gss.ssp_context, mic.value,
                                            self._gss.get_mechListMIC())
        except Exception as exc:  # scapy raises what it likes for a MIC that does not verify
            raise TargetFault("server mechListMIC does not verify", str(exc)) from exc
        self._gss.verified_mic = True

    def _auth3_pdu(self, token: bytes) -> bytes:
        from scapy.layers.dcerpc import DceRpc5Auth3

        sec = self.security
        pkt = DceRpc5(pfc_flags=int(PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG),
                      call_id=self.next_call_id())
        pkt.auth_verifier = build.auth_verifier(auth_type=sec.auth_type, auth_level=sec.level,
                                                context_id=sec.context_id, token=token)
        pkt.auth_padding = b""
        return bytes(pkt / DceRpc5Auth3())

    def _note_contexts(self, interface: uuid.UUID, elems, outcome: Outcome) -> None:
        if outcome.ptype not in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP):
            return
        pkt = outcome.packet()  # checked: every result is there
        if outcome.ptype == PType.BIND_ACK:
            self.assoc_group_id = int(pkt.assoc_group_id)
        for elem, result in zip(elems, pkt.results):
            if result.result == ContextResult.ACCEPTANCE:
                self.contexts[interface] = elem.cont_id
            elif result.result == ContextResult.NEGOTIATE_ACK:
                self.bind_time_features = int(result.reason)

    # -- requests ---------------------------------------------------------------------

    def request_pdu(self, opnum: int, stub: bytes, *, cont_id: int,
                    object_uuid: uuid.UUID | None = None, call_id: int | None = None,
                    pfc_flags: int = PfcFlag.FIRST_FRAG | PfcFlag.LAST_FRAG,
                    alloc_hint: int | None = None, trailer: dict[str, int] | None = None) -> bytes:
        """One request PDU, protected at the connection's level.  ``trailer`` names sec_trailer
        fields (auth_type, auth_level, auth_context_id) that say something else than the
        connection's security context, written before signing: the verifier covers them."""
        call_id = self.next_call_id() if call_id is None else call_id
        fields = dict(call_id=call_id, cont_id=cont_id, opnum=opnum, stub=stub, pfc_flags=int(pfc_flags),
                      alloc_hint=len(stub) if alloc_hint is None else alloc_hint, object_uuid=object_uuid)
        sec = self.security
        protected = self.protection is not None and sec.level > RPC_C_AUTHN_LEVEL.CONNECT
        if not protected:
            return build.request_bytes(**fields)
        said = trailer or {}
        unsigned = build.request_bytes(**fields, verifier=build.Verifier(
            auth_type=said.get("auth_type", sec.auth_type), auth_level=said.get("auth_level", sec.level),
            context_id=said.get("auth_context_id", sec.context_id),
            token=b"\0" * self.protection.signature_length(privacy=sec.level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY),
            pad_length=(-len(stub)) % sec.auth_pad_alignment))
        header = CommonHeader.parse(unsigned)
        return self.protection.protect(unsigned, header, SecTrailer.parse(unsigned, header),
                                       privacy=sec.level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY)

    def call(self, interface: uuid.UUID, opnum: int, stub: bytes, *,
             object_uuid: uuid.UUID | None = None) -> tuple[Outcome, bytes | None]:
        """Send one request; return the outcome and the response stub (None unless a
        response came back and verified)."""
        call_id = self.next_call_id()
        outcome = self.exchange(self.request_pdu(opnum, stub, cont_id=self.contexts[interface],
                                                 object_uuid=object_uuid, call_id=call_id), replies=64)
        for pdu in outcome.pdus:  # C706 12.6.4: the response or fault of this call, nothing else
            header = CommonHeader.parse(pdu)
            if header.ptype not in (PType.RESPONSE, PType.FAULT):
                raise TargetFault(f"ptype {header.ptype} in reply to a request")
            if header.call_id != call_id:
                raise TargetFault("reply to another call", f"call_id {header.call_id}, the request's {call_id}")
        if not outcome.pdus or outcome.ptype != PType.RESPONSE:
            return outcome, None
        try:
            return outcome, b"".join(self.response_stub(p) for p in outcome.pdus)
        except (ProtectionError, *PARSE_ERRORS) as exc:  # a verifier the provider could not check
            return dataclasses.replace(outcome, unverified=f"{type(exc).__name__}: {exc}"), None

    def response_stub(self, pdu: bytes) -> bytes:
        header = CommonHeader.parse(pdu)
        if header.ptype != PType.RESPONSE:
            raise MalformedReply("response", f"a fragment of the response is ptype {header.ptype}")
        try:
            trailer = SecTrailer.parse(pdu, header)
        except (ProtectionError, *PARSE_ERRORS) as exc:
            raise malformed("response sec_trailer", exc) from exc
        if trailer is None or self.protection is None or trailer.auth_level <= RPC_C_AUTHN_LEVEL.CONNECT:
            end = trailer.offset - trailer.auth_pad_length if trailer else header.frag_len
            return pdu[24:end]
        return self.protection.unprotect(pdu, header, trailer,
                                         privacy=trailer.auth_level == RPC_C_AUTHN_LEVEL.PKT_PRIVACY)


def _wire(token) -> bytes:
    """The bytes of a token an SSP made (scapy's build, without the copy it makes first:
    scapymemo.built_as_is)."""
    return bytes(built_as_is(token))


def _auth_token(pdu: bytes) -> bytes:
    header = CommonHeader.parse(pdu)
    try:
        trailer = SecTrailer.parse(pdu, header)
    except (ProtectionError, *PARSE_ERRORS) as exc:
        raise malformed("sec_trailer", exc) from exc
    if trailer is None:
        return b""
    return pdu[trailer.offset + SEC_TRAILER_LEN:header.frag_len]
