"""The lab's Active Directory domain: one throwaway Samba AD DC (:mod:`conformance.targets.samba`)
per machine run, with the reference CA as a computer account, as a Windows CA is one.

``LAB.TEST`` (NetBIOS ``LAB``): the DC ``dc1.lab.test``; the users ``wcce-suite`` and
``wcce-other`` with random passwords; the computer ``CA01$`` with the SPNs a domain join gives
(``HOST/ca01``, ``HOST/ca01.lab.test``; AD's sPNMappings make ``RPCSS/…`` aliases of ``HOST/``),
a machine password, and its keys exported (``samba-tool domain exportkeytab --principal=CA01$``)
for the reference CA.  Its KDC issues tickets with a PAC, names services by AD's rules and is a
KDC certipy and impacket talk to (neither works against MIT 1.20).

One DC per machine (its ports are fixed): :func:`shared_domain` gives every process of a run the
same one.  The first process that needs it starts it (under a machine-wide lock) and owns it;
others attach through a descriptor file; the owner stops it when it exits, after every attached
process has exited (each holds a shared lock on the descriptor for its lifetime).
``WCCE_KDC`` chooses: ``auto`` (the default: this domain where Samba is installed and we are
root, else the MIT realm), ``samba`` (this domain or an error), ``mit`` (the MIT realm).
"""

from __future__ import annotations

import atexit
import dataclasses
import fcntl
import json
import os
import pathlib
import threading
import time

from conformance.targets.samba import LOOPBACK, SambaDC, SambaError, samba_available

__all__ = ["LabDomain", "DomainInfo", "shared_domain", "release_shared_domain", "domain_wanted", "KDC_CHOICE",
           "DomainUnavailable"]

KDC_CHOICE = "WCCE_KDC"
REALM = "LAB.TEST"
NETBIOS = "LAB"
CA_COMPUTER = "CA01"
USERS = ("wcce-suite", "wcce-other")
_HOME = pathlib.Path(os.environ.get("WCCE_LAB_DOMAIN_DIR", "/tmp/wcce-lab-domain"))
_WAIT_FOR_USERS = 900.0  # seconds the owner waits at exit for attached processes (bounded)


class DomainUnavailable(RuntimeError):
    """``WCCE_KDC=samba`` and the domain cannot be had (one line)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DomainInfo:
    """What a process needs to use the domain; written as JSON (mode 0600) beside the DC."""

    realm: str
    netbios: str
    dc_host: str
    dc_dns_name: str
    service_host: str  # the CA's DNS name: its SPNs are HOST/<this>
    ca_account: str  # CA01$
    keytab: str  # the CA account's keys
    users: dict[str, str] = dataclasses.field(repr=False)  # name -> password
    admin_password: str = dataclasses.field(repr=False)
    directory: str
    owner_pid: int

    @property
    def kdc(self) -> tuple[str, int]:
        return self.dc_host, 88

    @property
    def krb5_conf(self) -> pathlib.Path:
        return pathlib.Path(self.directory) / "krb5.conf"

    @property
    def spns(self) -> tuple[str, ...]:
        short = self.service_host.split(".")[0]
        return (f"HOST/{short}", f"HOST/{self.service_host}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "DomainInfo":
        return cls(**json.loads(text))

    def dc(self) -> SambaDC:
        """The DC as a :class:`SambaDC` this process does not own (samba-tool, names)."""
        return SambaDC.attach(pathlib.Path(self.directory), realm=self.realm, domain=self.netbios,
                              hostname=self.dc_dns_name.split(".")[0], admin_password=self.admin_password,
                              users=dict(self.users))


@dataclasses.dataclass
class LabDomain:
    """``with LabDomain() as info:`` a provisioned domain with the CA's computer account."""

    service_host: str = "ca01.lab.test"
    dc: SambaDC | None = dataclasses.field(default=None, init=False, repr=False)
    info: DomainInfo | None = dataclasses.field(default=None, init=False)

    def start(self) -> DomainInfo:
        self.dc = SambaDC(realm=REALM, domain=NETBIOS, hostname="dc1", user_names=USERS)
        self.dc.start()
        try:
            self.info = self._join_ca()
        except BaseException:
            self.stop()
            raise
        return self.info

    def _join_ca(self) -> DomainInfo:
        dc = self.dc
        short = self.service_host.split(".")[0]
        computer = short.upper()
        # What a domain join writes: the HOST/ SPNs (RPCSS/ resolves to them by AD's sPNMappings),
        # a machine password, and the encryption types a Windows member announces (RC4, AES128,
        # AES256: 0x1C), without which the KDC issues RC4 tickets for the account
        dc.samba_tool("computer", "create", computer, f"--service-principal-name=HOST/{short}",
                      f"--service-principal-name=HOST/{self.service_host}", what=f"computer create {computer}")
        dc.samba_tool("user", "setpassword", f"{computer}$", f"--newpassword={dc.new_password()}",
                      what=f"user setpassword {computer}$")
        dc.modify(f"CN={computer},CN=Computers,{dc.base_dn}", "msDS-SupportedEncryptionTypes", "28")
        keytab = dc.export_keytab(f"{computer}$")
        if not keytab.exists():
            raise SambaError(f"samba-tool domain exportkeytab {computer}$ wrote no keytab")
        return DomainInfo(realm=dc.realm, netbios=dc.domain, dc_host=dc.host, dc_dns_name=dc.dns_name,
                          service_host=self.service_host, ca_account=f"{computer}$", keytab=str(keytab),
                          users=dict(dc.users), admin_password=dc.admin_password, directory=str(dc.directory),
                          owner_pid=os.getpid())

    def stop(self) -> None:
        if self.dc is not None:
            self.dc.stop()
            self.dc = None

    def __enter__(self) -> DomainInfo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def domain_wanted() -> bool:
    """Whether this run's Kerberos rows use the Samba domain (``WCCE_KDC``, see the module)."""
    choice = os.environ.get(KDC_CHOICE, "auto").strip().lower()
    if choice == "mit":
        return False
    possible = samba_available() and os.geteuid() == 0
    if choice == "samba" and not possible:
        raise DomainUnavailable(f"{KDC_CHOICE}=samba, but a Samba AD DC cannot run here (Samba installed: "
                                f"{samba_available()}; root: {os.geteuid() == 0})")
    if choice not in ("auto", "samba"):
        raise DomainUnavailable(f"{KDC_CHOICE}={choice!r}: expected auto, samba or mit")
    return possible


# -- one domain per machine run ----------------------------------------------------------------

_lock = threading.Lock()
_owned: LabDomain | None = None
_info: DomainInfo | None = None
_user_fd: int | None = None  # attached: a shared lock on the descriptor, held while we live


def _descriptor() -> pathlib.Path:
    return _HOME / "domain.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def shared_domain() -> DomainInfo:
    """This machine run's domain: attach to the one another process owns, or start it."""
    global _owned, _info, _user_fd
    with _lock:
        if _info is not None:
            return _info
        _HOME.mkdir(mode=0o700, exist_ok=True)
        with open(_HOME / "lock", "a+") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # one starter at a time, machine-wide
            path = _descriptor()
            if path.exists():
                info = DomainInfo.from_json(path.read_text())
                if info.owner_pid != os.getpid() and _alive(info.owner_pid) and pathlib.Path(info.directory).exists():
                    _user_fd = os.open(path, os.O_RDONLY)
                    fcntl.flock(_user_fd, fcntl.LOCK_SH)
                    _info = info
                    return info
                path.unlink()  # its owner is gone
            owned = LabDomain()
            info = owned.start()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(info.to_json())
            _owned, _info = owned, info
            atexit.register(release_shared_domain)
            return info


def release_shared_domain() -> None:
    """Stop the domain if this process owns it (after every attached process has exited), so
    a test that needs the DC's ports for a DC of its own can have them; the next
    :func:`shared_domain` starts a new one."""
    global _owned, _info, _user_fd
    with _lock:
        if _user_fd is not None:
            os.close(_user_fd)
            _user_fd = None
        owned, _owned, _info = _owned, None, None
        if owned is None:
            return
        path = _descriptor()
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            deadline = time.monotonic() + _WAIT_FOR_USERS
            while time.monotonic() < deadline:  # attached processes hold LOCK_SH while they live
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.2)
            path.unlink(missing_ok=True)
            os.close(fd)
        owned.stop()


def owns_shared_domain() -> bool:
    return _owned is not None


__all__ += ["owns_shared_domain", "LOOPBACK"]
