"""Recorded transcripts: real bytes between the suite's client and the reference CA, as test data.

Each :class:`Scenario` drives the suite's own client (:class:`WcceSession`, configured
by ``settings_for``) against the reference CA on loopback through a :class:`Tap`, and
saves what the tap saw — its :class:`Chunk` and :class:`Connection` records, bytes in
hex — as ``tests/data/transcripts/<name>.json``, with what a passive reader needs: the
lab account and its NT hash, the CA name, the template and the CSR of the Request.
The judge's unit tests (``tests/unit/judge/``) load them back with :func:`load` and
read them with ``build_transcript``; no sockets.

Re-record by hand when the client or the CA changes what it puts on the wire::

    .venv/bin/python -m tests.support.recorded record             # every scenario
    .venv/bin/python -m tests.support.recorded record level-5     # some of them
    .venv/bin/python -m tests.support.recorded record --out /tmp/t  # elsewhere, to compare
    .venv/bin/python -m tests.support.recorded list

NTLM keys differ on every run (challenges, session keys), so a re-recording changes
every byte but not what the tests assert.  Kerberos scenarios need the MIT KDC tools
(``krb5-kdc``, ``krb5-admin-server``); their tickets are saved but not the realm's
keytab, so their sealed stubs stay unread (``kerberos-spn`` reads the ticket's
service name in clear).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import pathlib
import sys
import tempfile
import traceback
from collections.abc import Iterator, Mapping, Sequence

from conformance.capture.tap import Tap
from conformance.judge.checks import CheckContext
from conformance.model.verdicts import Direction, Side
from conformance.mutation.client import CLIENT_BASELINE
from conformance.wire.gss import nt_hash
from conformance.wire.passive import NtlmFlag
from conformance.wire.transcript import Chunk, Connection, Endpoint, Transcript, build_transcript

__all__ = ["DATA_DIR", "LAB_USER", "LAB_PASSWORD", "Scenario", "SCENARIOS", "Recording", "load", "read",
           "record", "main"]

DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / "data" / "transcripts"

#: A made-up credential of a throwaway lab CA (fine to commit): the recordings are
#: read passively with its NT hash, which each file carries.
LAB_USER = "wcce-suite"
LAB_PASSWORD = "Recorded-Lab-Passw0rd!"

_TEMPLATE = "User"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One recorded exchange: the client mode (overrides of the client scenario's
    baseline, ``conformance.mutation.client.CLIENT_BASELINE``) and the steps taken.

    ``steps``: ``activate`` (ServerAlive2 and ResolveOxid2 as the client settings say,
    then RemoteCreateInstance), ``bind`` (bind ICertRequestD on the exporter),
    ``request`` (bind and call Request, even when the bind was refused: the retry is
    an alter_context), ``ping2`` (after either, Ping2 on ICertRequestD2: an alter_context
    adds its presentation context to the established security context), ``replies`` (raw
    unauthenticated binds and calls on the resolver that draw a bind_nak, an
    alter_context_resp rejecting a context, a fault and a response).
    """

    name: str
    description: str
    client: Mapping[str, object] = dataclasses.field(default_factory=dict)
    steps: tuple[str, ...] = ("activate", "request")
    template: str = _TEMPLATE
    policy: Mapping[str, str] = dataclasses.field(default_factory=dict)  # CA Policy fields, by value
    kerberos: bool = False

    @property
    def settings(self) -> dict[str, object]:
        return {} if self.steps == ("replies",) else {**CLIENT_BASELINE, **self.client}


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario(name="conformant",
             description="SPNEGO/NTLM at PKT_PRIVACY, IMPERSONATE, ServerAlive2, ResolveOxid2 at "
                         "PKT_INTEGRITY, a Request for the issuing template (issued)"),
    Scenario(name="raw-ntlm", description="raw NTLM (auth_type 10) instead of SPNEGO",
             client={"provider": "ntlm", "server_alive2": False}, steps=("activate",)),
    Scenario(name="level-5",
             description="binds and calls at PKT_INTEGRITY; the CA refuses the Request below privacy "
                         "with the method's HRESULT (policy request_denial = hresult-e-accessdenied)",
             client={"level": 5, "server_alive2": False, "resolve_oxid_level": None},
             policy={"request_denial": "hresult-e-accessdenied"}),
    Scenario(name="level-2", description="binds and calls at CONNECT (activation at PKT_INTEGRITY); the "
                                         "CA faults the Request (access denied)",
             client={"level": 2, "server_alive2": False, "resolve_oxid_level": None}),
    Scenario(name="unknown-template", description="a Request for a template the CA does not publish "
                                                  "(disposition CERTSRV_E_UNSUPPORTED_CERT_TYPE)",
             client={"server_alive2": False, "resolve_oxid_level": None}, template="NoSuchTemplate"),
    Scenario(name="second-interface",
             description="conformant: bind ICertRequestD, then Ping2 on ICertRequestD2 (an alter_context "
                         "without a sec_trailer adds the presentation context to the security context)",
             client={"server_alive2": False, "resolve_oxid_level": None}, steps=("activate", "bind", "ping2")),
    Scenario(name="identify", description="impersonation level IDENTIFY (NEGOTIATE_IDENTIFY)",
             client={"impersonation": 2, "server_alive2": False}, steps=("activate",)),
    Scenario(name="anonymous", description="anonymous NTLM", client={"anonymous": True}, steps=("activate",)),
    Scenario(name="version-1.0", description="binds ICertRequestD at version 1.0 (bind and alter refused)",
             client={"version": "1.0", "server_alive2": False, "resolve_oxid_level": None}),
    Scenario(name="spnego-auth3", description="SPNEGO's third leg in rpc_auth3", client={"spnego_auth3": True},
             steps=("activate",)),
    Scenario(name="no-object-uuid", description="ORPCs without PFC_OBJECT_UUID",
             client={"object_uuid": False, "server_alive2": False, "resolve_oxid_level": None}),
    Scenario(name="orpcthis-flags", description="ORPCTHIS.flags 1 on ORPCs",
             client={"orpc_flags": 1, "server_alive2": False, "resolve_oxid_level": None}),
    Scenario(name="auth-pad-8", description="stubs padded to 8 bytes before the sec_trailer",
             client={"auth_pad_alignment": 8, "server_alive2": False, "resolve_oxid_level": None}),
    Scenario(name="activation-connect", description="activates at CONNECT (the CA refuses)",
             client={"activation_level": 2, "resolve_oxid_level": None}, steps=("activate",)),
    Scenario(name="resolve-connect", description="ResolveOxid2 at CONNECT",
             client={"resolve_oxid_level": 2, "server_alive2": False}, steps=("activate",)),
    Scenario(name="no-seal-flag", description="NTLM NEGOTIATE without SEAL at PKT_PRIVACY",
             client={"ntlm_clear_flags": int(NtlmFlag.SEAL), "server_alive2": False, "resolve_oxid_level": None},
             steps=("activate",)),
    Scenario(name="wrong-class", description="activates another CLSID",
             client={"clsid": "6f0b7c1e-2c8b-4d0e-9a53-7c1c0b6d2a11", "server_alive2": False,
                     "resolve_oxid_level": None}, steps=("activate",)),
    Scenario(name="foreign-iid", description="asks for IRemUnknown2 instead of ICertRequestD(2)",
             client={"iids": ["0000010b-0000-0000-c000-000000000046"], "server_alive2": False,
                     "resolve_oxid_level": None}, steps=("activate",)),
    Scenario(name="no-header-signing", description="no PFC_SUPPORT_HEADER_SIGN offered (allowed)",
             client={"header_signing": False, "server_alive2": False, "resolve_oxid_level": None},
             steps=("activate",)),
    Scenario(name="replies", description="unauthenticated resolver exchanges: a bind into an unknown "
                                         "association group (bind_nak), a bind, an alter_context at "
                                         "version 1.0 (rejected), an unknown opnum (fault), ServerAlive2",
             steps=("replies",)),
    Scenario(name="kerberos", description="SPNEGO/Kerberos, conformant (RPCSS/ to activate, the "
                                          "SECURITYBINDING principal for ORPCs)",
             client={"provider": "spnego-kerberos", "server_alive2": False, "resolve_oxid_level": None},
             steps=("activate", "bind"), kerberos=True),
    Scenario(name="kerberos-activation-spn", description="SPNEGO/Kerberos asking for host/ instead of RPCSS/ "
                                                         "to activate",
             client={"provider": "spnego-kerberos", "activation_spn": "host/ca01.lab.test",
                     "server_alive2": False, "resolve_oxid_level": None},
             steps=("activate",), kerberos=True),
]}


# -- loading -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """One recorded scenario, as saved."""

    name: str
    description: str
    client: Mapping[str, object]
    policy: Mapping[str, str]
    user: str
    nt_hash: bytes
    ca_name: str
    template: str
    csr: bytes
    exporter_spn: str | None
    connections: tuple[Connection, ...]
    chunks: tuple[Chunk, ...]

    @property
    def identities(self) -> dict[str, bytes]:
        return {self.user: self.nt_hash}

    def transcript(self, *, keys: bool = True, conns: Sequence[int] | None = None,
                   directions: Sequence[Direction] | None = None) -> Transcript:
        """The recording read passively: with the lab account's NT hash unless ``keys`` is
        False; only the connections ``conns`` and the ``directions`` given, if given."""
        chunks = [c for c in self.chunks if (conns is None or c.conn in conns)
                  and (directions is None or c.direction in directions)]
        connections = [c for c in self.connections if conns is None or c.conn in conns]
        return build_transcript(chunks, connections, identities=self.identities if keys else None)

    def context(self, **overrides) -> CheckContext:
        """What the client scenario tells its checks (``run_client_scenario``)."""
        values = dict(side=Side.BOTH, impersonation=3, expected_level=6, exporter_spn=self.exporter_spn,
                      plaintexts=(self.ca_name.encode("utf-16-le"), self.csr))
        values.update(overrides)
        return CheckContext(**values)

    def with_pdu(self, index: int, raw: bytes) -> "Recording":
        """The recording with PDU ``index`` (of :meth:`transcript`) replaced by ``raw`` of the
        same length; the chunk boundaries stay where they were."""
        pdus = self.transcript(keys=False).pdus
        target = pdus[index]
        if len(raw) != len(target.raw):
            raise ValueError(f"PDU #{index} is {len(target.raw)} bytes, the replacement {len(raw)}")
        stream = (target.conn, target.direction)
        start = sum(len(p.raw) for p in pdus[:index] if (p.conn, p.direction) == stream)
        at, chunks = 0, []
        for chunk in self.chunks:
            if (chunk.conn, chunk.direction) != stream:
                chunks.append(chunk)
                continue
            data = bytearray(chunk.data)
            for i in range(max(start, at), min(start + len(raw), at + len(data))):
                data[i - at] = raw[i - start]
            chunks.append(dataclasses.replace(chunk, data=bytes(data)))
            at += len(data)
        return dataclasses.replace(self, chunks=tuple(chunks))


def _connection(data: Mapping) -> Connection:
    return Connection(conn=data["conn"], client=Endpoint(*data["client"]), server=Endpoint(*data["server"]),
                      opened=data["opened"], closed=data["closed"],
                      closed_by=Direction(data["closed_by"]) if data["closed_by"] else None,
                      reset=data["reset"])


@functools.cache
def load(name: str) -> Recording:
    """``tests/data/transcripts/<name>.json`` (read once per process; the value is frozen)."""
    data = json.loads((DATA_DIR / f"{name}.json").read_text("utf-8"))
    return Recording(
        name=data["scenario"], description=data["description"], client=data["client"],
        policy=data["policy"], user=data["user"], nt_hash=bytes.fromhex(data["nt_hash"]),
        ca_name=data["ca_name"], template=data["template"], csr=bytes.fromhex(data["csr"]),
        exporter_spn=data["exporter_spn"],
        connections=tuple(_connection(c) for c in data["connections"]),
        chunks=tuple(Chunk(conn=c["conn"], direction=Direction(c["direction"]), time=c["time"],
                           data=bytes.fromhex(c["data"])) for c in data["chunks"]))


@functools.cache
def read(name: str, *, keys: bool = True, conns: tuple[int, ...] | None = None,
         directions: tuple[Direction, ...] | None = None) -> Transcript:
    """``load(name).transcript(...)``, built once per process (a Transcript is frozen)."""
    return load(name).transcript(keys=keys, conns=conns, directions=directions)


# -- recording ---------------------------------------------------------------------------


@contextlib.contextmanager
def _reference_ca(scenario: Scenario, realm) -> Iterator[tuple[object, object]]:
    """A reference CA on a fresh loopback address with the lab account (as
    ``tests/conftest.py`` starts one), described as a Target."""
    from conformance.model.profile import KerberosTarget, Target
    from conformance.refca.ca import ReferenceCA
    from conformance.refca.config import RequestDenial, load_config
    from tests.support.hosts import fresh_loopback

    with tempfile.TemporaryDirectory(prefix="wcce-recorded-") as state:
        config = load_config(None, host=fresh_loopback(), port=0, state_dir=pathlib.Path(state),
                             users={LAB_USER: nt_hash(LAB_PASSWORD)},
                             kerberos_keytab=realm.keytab if realm is not None else None)
        # an EC CA key keeps the issued certificate, and so the files, small
        config = dataclasses.replace(config, key_algorithm="ec-p256")
        if scenario.policy:
            values = {k: RequestDenial(v) if k == "request_denial" else v for k, v in scenario.policy.items()}
            config = dataclasses.replace(config, policy=dataclasses.replace(config.policy, **values))
        ca = ReferenceCA(config).start()
        try:
            kerberos = None
            if realm is not None:
                kerberos = KerberosTarget(realm=realm.realm, kdc_host=realm.kdc[0], kdc_port=realm.kdc[1],
                                          service_host=config.dns_name)
            yield Target(host=config.listen.host, activation_port=ca.activation_port, ca_name=config.ca_name,
                         user=LAB_USER, domain=config.dns_domain, password=LAB_PASSWORD,
                         templates={"issue": scenario.template}, kerberos=kerberos,
                         description="recorder's reference CA"), ca
        finally:
            ca.stop()


def _replies(target, tap: Tap) -> None:
    """Resolver exchanges that draw each kind of reply (unauthenticated)."""
    from conformance.client.rpc import RpcConnection
    from conformance.wire.dcom import IID_IOBJECT_EXPORTER

    with RpcConnection(target.host, target.activation_port, tap=tap) as conn:
        conn.assoc_group_id = 0x0BAD0BAD  # an association group the server never made
        conn.bind(IID_IOBJECT_EXPORTER, 0)
    with RpcConnection(target.host, target.activation_port, tap=tap) as conn:
        conn.bind(IID_IOBJECT_EXPORTER, 0)
        conn.bind(IID_IOBJECT_EXPORTER, 1)  # alter_context at version 1.0
        conn.call(IID_IOBJECT_EXPORTER, 99, b"")  # no such opnum
        conn.call(IID_IOBJECT_EXPORTER, 5, b"")  # ServerAlive2


def _drive(scenario: Scenario, target, tap: Tap, csr: bytes) -> str | None:
    """Run the scenario's steps; the exporter's SPN (Kerberos) or None."""
    from conformance.client import methods
    from conformance.client.session import WcceSession
    from conformance.judge.settings import settings_for
    from conformance.wire import wcce

    if scenario.steps == ("replies",):
        _replies(target, tap)
        return None
    session = WcceSession.from_settings(settings_for(target, scenario.settings), tap=tap)
    spn = None
    try:
        _, activation = session.activate()
        spn = session.exporter_spn()
        exporter = {"bind", "request"} & set(scenario.steps)
        if exporter and activation is not None and activation.status == 0:
            session.connect_exporter()
            if "request" in exporter:
                session.call(methods.request(target.ca_name, csr, template=scenario.template))
            if "ping2" in scenario.steps:
                session.call(methods.ping2(target.ca_name), interface=wcce.IID_ICERTREQUESTD2)
    except Exception:  # a client mode the CA refuses may end the exchange early: that is recorded
        print(f"  {scenario.name}: exchange ended early:\n"
              + "".join(traceback.format_exception_only(*sys.exc_info()[:2])).rstrip(), file=sys.stderr)
    finally:
        session.close()
    return spn


def _encode(scenario: Scenario, target, csr: bytes, spn: str | None, tap: Tap) -> str:
    connections = sorted(tap.connections, key=lambda c: c.conn)
    t0 = min(c.opened for c in connections)

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 6)

    head = {
        "scenario": scenario.name, "description": scenario.description,
        "recorded_with": ".venv/bin/python -m tests.support.recorded record " + scenario.name,
        "client": dict(scenario.settings), "policy": dict(scenario.policy),
        "user": LAB_USER, "nt_hash": nt_hash(LAB_PASSWORD).hex(), "ca_name": target.ca_name,
        "template": scenario.template, "csr": csr.hex(), "exporter_spn": spn,
    }
    rows = {
        "connections": [json.dumps({"conn": c.conn, "client": [c.client.host, c.client.port],
                                    "server": [c.server.host, c.server.port], "opened": rel(c.opened),
                                    "closed": rel(c.closed),
                                    "closed_by": c.closed_by.value if c.closed_by else None,
                                    "reset": c.reset}) for c in connections],
        "chunks": [json.dumps({"conn": c.conn, "direction": c.direction.value, "time": rel(c.time),
                               "data": c.data.hex()}) for c in tap.chunks],
    }
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    for n, (key, items) in enumerate(rows.items()):
        lines.append(f" {json.dumps(key)}: [")
        lines.extend(f"  {item}" + ("," if i < len(items) - 1 else "") for i, item in enumerate(items))
        lines.append(" ]" + ("," if n == 0 else ""))
    return "\n".join(lines + ["}", ""])


def record(names: Sequence[str], out: pathlib.Path = DATA_DIR) -> list[pathlib.Path]:
    """Record the scenarios ``names`` (all when empty) into ``out``."""
    import logging

    from conformance.client import methods

    logging.getLogger("scapy").setLevel(logging.ERROR)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    chosen = [SCENARIOS[n] for n in (names or SCENARIOS)]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with contextlib.ExitStack() as stack:
        realm = None
        if any(s.kerberos for s in chosen):
            from conformance.targets.embedded import lab_realm

            realm = stack.enter_context(lab_realm({LAB_USER: LAB_PASSWORD}))
        for scenario in chosen:
            with _reference_ca(scenario, realm if scenario.kerberos else None) as (target, _ca):
                tap = Tap()
                csr = methods.new_pkcs10("recorded-client", key="ec-p256") if "request" in scenario.steps else b""
                spn = _drive(scenario, target, tap, csr)
                path = out / f"{scenario.name}.json"
                path.write_text(_encode(scenario, target, csr, spn, tap), "utf-8")
                written.append(path)
                print(f"{path}: {len(tap.chunks)} chunks, {path.stat().st_size} bytes")
    return written


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["list"]:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:26s} {scenario.description}")
        return 0
    if argv[:1] == ["record"]:
        args = list(argv[1:])
        out = DATA_DIR
        if "--out" in args:  # record elsewhere (to compare with what is committed)
            at = args.index("--out")
            out = pathlib.Path(args[at + 1])
            del args[at:at + 2]
        record(args, out)
        return 0
    print("usage: python -m tests.support.recorded record [--out DIR] [SCENARIO ...] | list", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
