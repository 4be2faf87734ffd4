"""Which of the object exporter's string bindings the client connects to.

The activation's reply names the exporter in a DUALSTRINGARRAY ([MS-DCOM] 2.2.19): a list
of STRINGBINDINGs, each a tower ID and ``host[endpoint]`` (2.2.19.3).  A Windows client
tries the ncacn_ip_tcp bindings in the order the server gave them, resolving names and
passing over the ones it cannot reach, and uses the first that connects ([MS-DCOM]
3.2.4.1.1.2; a multi-homed server lists each of its addresses, or only its names).  So does
this client, with a bounded wait for each name and each connection.

What the suite may contact: loopback (127.0.0.0/8, ::1) always; any other address only
when the profile's own host is not loopback, i.e. the user named a lab CA, whose bindings
then name that CA's other addresses.  A binding that resolves elsewhere on a loopback run
is passed over and never connected to.

Why each binding was passed over is a :class:`conformance.client.errors.BindingProblem`;
when none is left, :class:`conformance.client.errors.NoUsableBinding` quotes them all.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from conformance.client.errors import BindingProblem, NoUsableBinding
from conformance.wire.dcom import StringBinding, TowerId, parse_network_address

__all__ = ["Candidate", "AddressPolicy", "Resolver", "Unresolved", "candidates", "connect_in_order",
           "RESOLVE_TIMEOUT", "CONNECT_TIMEOUT", "MAX_ATTEMPTS", "quoted"]

#: The longest wait for one name, and for one connection, of a string binding.
RESOLVE_TIMEOUT = 3.0
CONNECT_TIMEOUT = 5.0
#: At most this many addresses are tried, and names resolved, per exporter: a hostile
#: DUALSTRINGARRAY cannot keep the client busy for longer than that.
MAX_ATTEMPTS = 8

T = TypeVar("T")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def quoted(binding: StringBinding) -> str:
    """A string binding as the target sent it, for a reason: ``ncacn_ip_tcp:CA01[49667]``."""
    tower = "ncacn_ip_tcp" if binding.tower_id == TowerId.NCACN_IP_TCP else f"tower 0x{binding.tower_id:04x}"
    return f"{tower}:{binding.network_address}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One address a string binding resolves to: where the client may try to connect."""

    binding: str  # the binding, quoted
    address: str
    port: int


def _loopback(address: Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


@dataclasses.dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The addresses the suite may contact.  ``lab``: the profile names a host that is not
    loopback (a lab CA), whose bindings may name any of its addresses."""

    lab: bool = False

    @classmethod
    def for_host(cls, host: str, resolver: "Resolver") -> "AddressPolicy":
        """The policy of a run against ``host`` (the profile's): loopback only, unless ``host``
        is (or resolves to) an address that is not loopback."""
        try:
            addresses = resolver.resolve(host)
        except Unresolved:
            return cls(lab=False)
        return cls(lab=not all(_loopback(ipaddress.ip_address(a)) for a in addresses))

    def refuses(self, address: Address) -> str | None:
        """Why the suite will not connect to ``address`` (None: it may)."""
        if self.lab or _loopback(address):
            return None
        return (f"resolves to {address}, outside loopback: the profile names a loopback host, so the suite "
                "does not contact it")


class Unresolved(Exception):
    """A name that did not resolve; ``conclusive`` unless the resolver only ran out of time
    or reported a temporary failure."""

    def __init__(self, why: str, *, conclusive: bool) -> None:
        super().__init__(why)
        self.conclusive = conclusive


def _getaddrinfo(name: str) -> tuple[str, ...]:
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


#: getaddrinfo's answers that say the name does not exist (not "try again later")
_NO_SUCH_NAME = {getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA", "EAI_FAIL", "EAI_ADDRFAMILY")
                 if hasattr(socket, n)}


class Resolver:
    """Names to addresses, each lookup waited for at most ``timeout`` and remembered (one
    resolver per engine: the same names come back in every case).  ``lookup`` replaces
    the system resolver (tests give a table of names to loopback addresses)."""

    def __init__(self, *, timeout: float = RESOLVE_TIMEOUT,
                 lookup: Callable[[str], Sequence[str]] | None = None) -> None:
        self.timeout = timeout
        self._lookup = lookup or _getaddrinfo
        self._known: dict[str, tuple[str, ...] | Unresolved] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str) -> tuple[str, ...]:
        """The addresses of ``name`` (an address stands for itself); raises :class:`Unresolved`."""
        literal = _literal(name)
        if literal is not None:
            return (str(literal),)
        with self._lock:
            known = self._known.get(name)
        if known is None:
            known = self._ask(name)
            with self._lock:
                self._known[name] = known
        if isinstance(known, Unresolved):
            raise known
        return known

    def _ask(self, name: str) -> tuple[str, ...] | Unresolved:
        answer: list[tuple[str, ...] | Unresolved] = []

        def work() -> None:
            try:
                found = tuple(self._lookup(name))
                answer.append(found if found else Unresolved("resolves to no address", conclusive=True))
            except socket.gaierror as exc:
                answer.append(Unresolved(f"does not resolve ({exc.strerror or exc})",
                                         conclusive=exc.errno in _NO_SUCH_NAME))
            except (OSError, UnicodeError, ValueError) as exc:  # a name the resolver cannot even ask for
                answer.append(Unresolved(f"does not resolve ({type(exc).__name__}: {exc})", conclusive=True))

        worker = threading.Thread(target=work, name=f"resolve {name[:40]}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if not answer:
            return Unresolved(f"did not resolve within {self.timeout:g}s", conclusive=False)
        found = answer[0]
        if isinstance(found, tuple):
            for address in found:
                if _literal(address) is None:
                    return Unresolved(f"resolver answered {address!r}, not an address", conclusive=False)
        return found


def _literal(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def candidates(bindings: Iterable[StringBinding], policy: AddressPolicy,
               resolver: Resolver) -> tuple[list[Candidate], list[BindingProblem]]:
    """Every address the bindings name that the client may try, in the server's order, and
    why each binding (or address) that is not among them was passed over."""
    found: list[Candidate] = []
    problems: list[BindingProblem] = []
    lookups = 0
    for binding in bindings:
        text = quoted(binding)
        if binding.tower_id != TowerId.NCACN_IP_TCP:
            problems.append(BindingProblem(binding=text, why="not ncacn_ip_tcp", conclusive=True))
            continue
        host, port = parse_network_address(binding.network_address)
        if port is None or not 0 < port < 0x10000:
            why = "no endpoint" if port is None else f"endpoint {port} is not a TCP port"
            problems.append(BindingProblem(binding=text, why=why, conclusive=True))
            continue
        if not host.strip():
            problems.append(BindingProblem(binding=text, why="no host", conclusive=True))
            continue
        if _literal(host) is None:
            lookups += 1
            if lookups > MAX_ATTEMPTS:
                problems.append(BindingProblem(binding=text, why=f"not looked up: the client resolves at most "
                                               f"{MAX_ATTEMPTS} names", conclusive=False))
                continue
        try:
            addresses = resolver.resolve(host)
        except Unresolved as exc:
            problems.append(BindingProblem(binding=text, why=f"{host!r} {exc}", conclusive=exc.conclusive))
            continue
        for text_address in addresses:
            address = ipaddress.ip_address(text_address)
            if address.is_unspecified or address.is_multicast or text_address == "255.255.255.255":
                problems.append(BindingProblem(binding=text, why=f"names {address}, which no client can "
                                               "connect to", conclusive=True))
                continue
            refused = policy.refuses(address)
            if refused is not None:
                problems.append(BindingProblem(binding=text, why=refused, conclusive=False))
                continue
            found.append(Candidate(binding=text, address=str(address), port=port))
    return found, problems


def connect_in_order(found: Sequence[Candidate], problems: Sequence[BindingProblem], bindings: Sequence[str],
                     connect: Callable[[Candidate], T]) -> tuple[T, Candidate]:
    """The first of ``found`` that ``connect`` reaches (an OSError passes it over), at most
    :data:`MAX_ATTEMPTS` of them; raises :class:`NoUsableBinding` with every problem when
    none does."""
    problems = list(problems)
    for attempt, candidate in enumerate(found):
        if attempt == MAX_ATTEMPTS:
            problems += [BindingProblem(binding=c.binding, why=f"{c.address}[{c.port}] not tried: the client "
                                        f"tries at most {MAX_ATTEMPTS} addresses", conclusive=False)
                         for c in found[attempt:]]
            break
        try:
            return connect(candidate), candidate
        except OSError as exc:
            why = f"{candidate.address}[{candidate.port}] did not connect ({exc.strerror or exc})"
            problems.append(BindingProblem(binding=candidate.binding, why=why, conclusive=False))
    raise NoUsableBinding(tuple(bindings), tuple(problems))
