"""A hostile DCOM server: the fuzz generators turned around, aimed at the suite.

``conformance.testkit.fuzz`` mutates what a *client* sends, to find what the reference CA
does with it.  Here the same generators mutate what a *server* answers, to find what the
suite does with it: the rule under test is that nothing a target sends makes a case ERROR
(ERROR is the suite's own defect), see tests/integration/test_hostile_server.py.

The server is the reference CA's own parts (its NTLM acceptor, association, SCM, object
exporter and WCCE service), so that authentication, sealing and activation work, with
one seeded *plan* per accepted connection that may replace one of its answers:

* a PDU answer: a header field set, added to or XORed (:class:`~conformance.testkit.fuzz.pdu.Mutation`),
  the body's bytes mutated like an NDR stub, the PDU truncated, extended or followed by
  bytes, a fault or bind_nak instead (whole or cut short), random bytes
  (:func:`~conformance.testkit.fuzz.pdu.raw_input`), response fragments dropped, doubled,
  reordered or flagged wrongly, an oversized fragment, a reset, an EOF, or silence;
* a stub answer: the NDR of a call's reply mutated by the NDR fuzzer's operations
  (flip, byte, truncate, extend, insert, delete, dword), emptied, random, or a fault;
* a bindings answer: the activation's DUALSTRINGARRAY names only a computer that does not
  resolve, nothing, no endpoint, another tower, a port that is not one, an address outside
  loopback (TEST-NET, never contacted), the unspecified address, a closed port, too many
  bindings, control characters; or benignly ``localhost`` or a bad binding before a good one.

Bounded: connections are counted (``max_connections``) and each is closed after
``idle_timeout`` seconds without a PDU; everything listens on one loopback address.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import struct
import threading
from collections.abc import Callable

from scapy.layers.dcerpc import DceRpc5, DceRpc5Bind, DceRpc5BindNak, DceRpc5Fault

from conformance.refca.ca import ReferenceCA
from conformance.refca.dcom.scm import ScmServices
from conformance.refca.rpc.association import Association, DropConnection
from conformance.refca.rpc.calls import Call, ConnectionInfo, Fault, Reply
from conformance.refca.rpc.dispatch import InterfaceDispatcher
from conformance.testkit.fuzz.choose import RandomChooser, pick
from conformance.testkit.fuzz.ndr import _NDR_OPS, _mutate_stub  # the NDR fuzzer's operations
from conformance.testkit.fuzz.pdu import Mutation, raw_input
from conformance.wire.dcom import (
    IID_IOBJECT_EXPORTER, IID_IREMOTE_SCM_ACTIVATOR, DualStringArray, SecurityBinding, StringBinding, TowerId,
)
from conformance.wire.framing import CommonHeader, FramingError, PduFramer
from conformance.wire.rpc import PfcFlag

__all__ = ["HostileServer", "Plan"]

_HEADER = (("rpc_vers", 1), ("rpc_vers_minor", 1), ("ptype", 1), ("pfc_flags", 1), ("drep", 1),
           ("frag_len", 2), ("auth_length", 2), ("call_id", 4))
_INTERESTING = {1: (0, 1, 0x7F, 0x80, 0xFF), 2: (0, 1, 15, 17, 0x7FFF, 0xFFFF),
                4: (0, 1, 0x7FFFFFFF, 0xFFFFFFFF)}
_STATUSES = (0, 5, 0x1C010002, 0x1C010003, 0x1C00001A, 0x80010108, 0x80070005, 0xFFFFFFFF)
_PDU_KINDS = ("field", "body", "truncate", "append", "trailing", "fault", "bind_nak", "garbage",
              "fragments", "oversized", "reset", "eof", "silence")
_PDU_WEIGHTS = (6, 6, 2, 2, 2, 3, 2, 3, 3, 2, 2, 2, 1)
_STUB_KINDS = ("ndr", "empty", "garbage", "fault")
_BINDING_KINDS = ("name-only", "empty", "no-endpoint", "not-tcp", "bad-port", "elsewhere", "unspecified",
                  "closed-port", "many", "control", "long-name", "localhost", "bad-then-good")
#: An address of TEST-NET-1 (RFC 5737): never routed; the suite must not even try it.
ELSEWHERE = "192.0.2.1"
#: Bindings answers that leave a usable binding: a case may PASS through them.
BENIGN_BINDINGS = frozenset({"localhost", "bad-then-good"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What one connection does differently: at most one of ``pdu`` (on its ``at``-th answer),
    ``stub`` (on its ``at``-th call) or ``bindings`` (its activations)."""

    seed: int
    pdu: str | None = None
    stub: str | None = None
    bindings: str | None = None
    at: int = 0


def draw_plan(seed: int, hostility: float, *, exporter: bool) -> Plan:
    rng = random.Random(seed)
    if rng.random() >= hostility:
        return Plan(seed=seed)
    # string bindings travel in activations only
    family = rng.choices(("pdu", "stub", "bindings"), weights=(5, 2, 0 if exporter else 3))[0]
    at = rng.choice((0, 1, 1, 2))
    if family == "pdu":
        return Plan(seed=seed, pdu=rng.choices(_PDU_KINDS, weights=_PDU_WEIGHTS)[0], at=at)
    if family == "stub":
        return Plan(seed=seed, stub=rng.choice(_STUB_KINDS), at=rng.choice((0, 0, 0, 1)))
    return Plan(seed=seed, bindings=rng.choice(_BINDING_KINDS))


class HostileServer:
    """The activation port and the object exporter of ``ca``'s parts, on ``host``, each
    connection with its own :class:`Plan` (seeded by ``seed`` and the connection's number),
    hostile with the probability ``hostility`` gives for the activation port and the exporter."""

    def __init__(self, ca: ReferenceCA, *, host: str, seed: int, hostility: tuple[float, float] = (0.5, 0.9),
                 idle_timeout: float = 3.0, max_connections: int = 4000) -> None:
        self.ca, self.host, self.seed, self.hostility = ca, host, seed, hostility
        self.idle_timeout, self.max_connections = idle_timeout, max_connections
        self.delivered: list[str] = []  # the label of every hostile answer actually sent
        self.planned = [0, 0]  # hostile plans drawn, on the activation port and on the exporter
        self._lock = threading.Lock()
        self._count = 0
        self._stopping = threading.Event()
        self._sockets = [self._listen(), self._listen()]
        self.activation_port, self.exporter_port = (s.getsockname()[1] for s in self._sockets)
        self._threads: list[threading.Thread] = []

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(64)
        sock.settimeout(0.2)
        return sock

    def __enter__(self) -> "HostileServer":
        for sock, exporter in zip(self._sockets, (False, True)):
            thread = threading.Thread(target=self._accept, args=(sock, exporter), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._sockets:
            sock.close()

    def record(self, label: str) -> None:
        with self._lock:
            self.delivered.append(label)

    # -- connections ------------------------------------------------------------------------

    def _accept(self, sock: socket.socket, exporter: bool) -> None:
        while not self._stopping.is_set():
            try:
                conn, peer = sock.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self._count += 1
                number = self._count
            if number > self.max_connections:
                conn.close()
                continue
            plan = draw_plan(self.seed * 1_000_003 + number, self.hostility[exporter], exporter=exporter)
            self.planned[exporter] += plan != Plan(seed=plan.seed)
            threading.Thread(target=self._serve, args=(conn, peer, exporter, plan), daemon=True).start()

    def _association(self, info: ConnectionInfo, exporter: bool, plan: Plan, role: list[str]) -> Association:
        calls = [0]

        def stub_answer(result: Reply | Fault) -> Reply | Fault:
            index, calls[0] = calls[0], calls[0] + 1
            if plan.stub is None or index != plan.at or not isinstance(result, Reply):
                return result
            self.record(f"stub/{plan.stub}@{role[0]}")
            return _stub(plan.stub, result, random.Random(plan.seed))

        if exporter:
            inner = self.ca.exporter
        else:
            scm = ScmServices(objects=self.ca.objects, exporter_bindings=lambda call: self._bindings(call, plan, role),
                              activation_min_level=self.ca.scm.activation_min_level, authn_hint=6,
                              server_names=("CA01", "ca01.lab.test"))
            inner = InterfaceDispatcher(scm.interfaces())
        policy = self.ca.association_policy
        if plan.pdu == "fragments":  # small fragments, so a response has several to break
            policy = dataclasses.replace(policy, max_frag=1432)
        return Association(dispatcher=_Hostile(inner, stub_answer), acceptors=self.ca.acceptors(),
                           connection=info, groups=self.ca.groups, policy=policy)

    def _bindings(self, call: Call, plan: Plan, role: list[str]) -> DualStringArray:
        """The exporter's bindings, as the connection's plan has them (ServerAlive2 takes only
        their security bindings: only an activation or ResolveOxid delivers the answer)."""
        host, port = call.connection.local_host, self.exporter_port
        security = tuple(SecurityBinding(authn_svc=svc) for svc in sorted(self.ca.acceptors()))
        good = StringBinding(tower_id=TowerId.NCACN_IP_TCP, network_address=f"{host}[{port}]")
        kind = plan.bindings
        if kind is None:
            return DualStringArray(string_bindings=(good,), security_bindings=security)
        if call.interface == IID_IREMOTE_SCM_ACTIVATOR or call.opnum in (0, 4):  # ResolveOxid(2)
            self.record(f"bindings/{kind}@{role[0]}")
        tcp = TowerId.NCACN_IP_TCP
        texts = {
            "name-only": [f"CA01[{port}]"], "empty": [], "no-endpoint": [host], "bad-port": [f"{host}[70000]"],
            "elsewhere": [f"{ELSEWHERE}[{port}]"], "unspecified": [f"0.0.0.0[{port}]"],
            "closed-port": [f"{host}[1]"], "control": [f"\x01\x7f\u202e[{port}]"],
            "long-name": ["a" * 300 + f"[{port}]"], "localhost": [f"localhost[{port}]"],
            "bad-then-good": [f"CA01[{port}]", f"{ELSEWHERE}[{port}]", good.network_address],
            "many": [f"host{i}.invalid[{port}]" for i in range(40)] + [good.network_address],
        }
        if kind == "not-tcp":
            strings = (StringBinding(tower_id=0x1F, network_address=f"{host}[{port}]"),)
        else:
            strings = tuple(StringBinding(tower_id=tcp, network_address=t) for t in texts[kind])
        return DualStringArray(string_bindings=strings, security_bindings=security)

    def _serve(self, conn: socket.socket, peer, exporter: bool, plan: Plan) -> None:
        local = conn.getsockname()
        info = ConnectionInfo(local_host=local[0], local_port=local[1], peer_host=peer[0], peer_port=peer[1])
        role = ["exporter" if exporter else "scm"]  # "resolver" once its first bind says so
        association = self._association(info, exporter, plan, role)
        framer = PduFramer()
        conn.settimeout(self.idle_timeout)
        answers = 0
        rng = random.Random(plan.seed)
        try:
            while not self._stopping.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                for pdu in framer.feed(data):
                    if answers == 0 and not exporter and _binds_resolver(pdu):
                        role[0] = "resolver"  # ServerAlive2, whose answer the client does not judge
                    final = False
                    try:
                        out = list(association.receive(pdu))
                    except DropConnection as drop:
                        out, final = list(drop.final), True
                    if not out and not final:
                        continue
                    if plan.pdu is not None and answers == plan.at:
                        self.record(f"pdu/{plan.pdu}@{role[0]}")
                        out, action = _pdu_answer(plan.pdu, out, rng)
                        if action == "reset":
                            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                            return
                        if action == "eof":
                            return
                        if action == "silence":
                            final = False
                    answers += 1
                    if out:
                        conn.sendall(b"".join(out))
                    if final:
                        return
                if framer.broken is not None:
                    return
        except (OSError, FramingError):
            return
        finally:
            conn.close()


def _binds_resolver(pdu: bytes) -> bool:
    """Whether ``pdu`` is a bind whose first context is IObjectExporter (the OXID resolver)."""
    try:
        elems = DceRpc5(pdu)[DceRpc5Bind].context_elem
        return bool(elems) and elems[0].abstract_syntax.if_uuid == IID_IOBJECT_EXPORTER
    except (IndexError, AttributeError):
        return False


class _Hostile:
    """A dispatcher whose replies pass through the connection's stub answer."""

    def __init__(self, inner, answer: Callable[[Reply | Fault], Reply | Fault]) -> None:
        self._inner, self._answer = inner, answer

    def supports_interface(self, if_uuid, if_version) -> bool:
        return self._inner.supports_interface(if_uuid, if_version)

    def dispatch(self, call: Call) -> Reply | Fault:
        return self._answer(self._inner.dispatch(call))


def _stub(kind: str, reply: Reply, rng: random.Random) -> Reply | Fault:
    choose = RandomChooser(rng)
    if kind == "empty":
        return Reply(b"")
    if kind == "garbage":
        return Reply(rng.randbytes(rng.randint(1, 300)))
    if kind == "fault":
        return Fault(rng.choice(_STATUSES))
    stub = bytearray(reply.stub)
    for _ in range(rng.randint(1, 3)):
        _mutate_stub(choose, stub, pick(choose, _NDR_OPS))
    return Reply(bytes(stub))


def _set_frag_len(pdu: bytes) -> bytes:
    out = bytearray(pdu)
    if len(out) >= 10:
        struct.pack_into("<H", out, 8, min(len(out), 0xFFFF))
    return bytes(out)


def _pdu_answer(kind: str, out: list[bytes], rng: random.Random) -> tuple[list[bytes], str | None]:
    """The answer ``out`` (the PDUs the association would send) made hostile."""
    choose = RandomChooser(rng)
    last = out[-1] if out else bytes(DceRpc5(call_id=1) / DceRpc5Fault(status=5))
    call_id = CommonHeader.parse(last).call_id if len(last) >= 16 else 1
    if kind in ("reset", "eof", "silence"):
        return [], kind
    if kind == "field":
        name, width = pick(choose, _HEADER)
        how = rng.randrange(3)
        value = rng.choice(_INTERESTING[width]) if how == 0 else (1 << rng.randrange(8 * width))
        mutation = Mutation(op=("set", "xor", "add")[how], field=name, value=value if how < 2 else rng.choice((1, -1, 8)))
        return [*out[:-1], mutation.apply(last)], None
    if kind == "body":
        body = bytearray(last[16:])
        for _ in range(rng.randint(1, 3)):
            _mutate_stub(choose, body, pick(choose, _NDR_OPS))
        return [*out[:-1], _set_frag_len(last[:16] + bytes(body))], None
    if kind in ("truncate", "append", "trailing"):
        mutation = (Mutation(op="truncate", value=rng.randint(1, max(len(last) - 1, 1))) if kind == "truncate"
                    else Mutation(op=kind, data=rng.randbytes(rng.randint(1, 64))))
        return [*out[:-1], mutation.apply(last)], None
    if kind == "fault":
        fault = bytes(DceRpc5(call_id=call_id, pfc_flags=3) / DceRpc5Fault(status=rng.choice(_STATUSES)))
        return [_set_frag_len(fault[:rng.choice((len(fault), 20, 24))])], None
    if kind == "bind_nak":
        nak = bytes(DceRpc5(call_id=call_id, pfc_flags=3) / DceRpc5BindNak(provider_reject_reason=rng.randrange(10)))
        return [_set_frag_len(nak[:rng.choice((len(nak), 16, 17))])], None
    if kind == "garbage":
        return [raw_input(choose).data], None
    if kind == "oversized":  # one fragment far beyond max_recv_frag, padded with junk
        return [*out[:-1], _set_frag_len(last + rng.randbytes(0xFFFF - len(last)))], None
    if kind == "fragments":
        return _break_fragments(out, rng), None
    raise ValueError(kind)


def _break_fragments(out: list[bytes], rng: random.Random) -> list[bytes]:
    """The fragments of a response (or the one PDU) dropped, doubled, reordered, or flagged."""
    frags = list(out)
    op = rng.choice(("drop-first", "drop-last", "duplicate", "shuffle", "flags", "many"))
    if op == "drop-first" and len(frags) > 1:
        return frags[1:]
    if op == "drop-last" and len(frags) > 1:
        return frags[:-1]
    if op == "duplicate":
        at = rng.randrange(len(frags))
        return frags[:at + 1] + frags[at:]
    if op == "shuffle":
        rng.shuffle(frags)
        return frags
    if op == "many":  # a response that never ends: 100 fragments without PFC_LAST_FRAG
        first = bytearray(frags[0])
        first[3] &= ~PfcFlag.LAST_FRAG & 0xFF
        return [bytes(first)] * 100
    at = rng.randrange(len(frags))
    flipped = bytearray(frags[at])
    flipped[3] ^= rng.choice((PfcFlag.FIRST_FRAG, PfcFlag.LAST_FRAG, 0xFF))
    return frags[:at] + [bytes(flipped)] + frags[at + 1:]
