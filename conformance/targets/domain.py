"""The lab's Active Directory domain: one throwaway Samba AD DC (:mod:`conformance.targets.samba`)
per machine run, with the reference CA as a computer account, as a Windows CA is one.

``LAB.TEST`` (NetBIOS ``LAB``): the DC ``dc1.lab.test``; the users ``wcce-suite`` and
``wcce-other`` with random passwords; the computer ``CA01$`` with the SPNs a domain join gives
(``HOST/ca01``, ``HOST/ca01.lab.test``; AD's sPNMappings make ``RPCSS/…`` aliases of ``HOST/``),
a machine password, and its keys exported (``samba-tool domain exportkeytab --principal=CA01$``)
for the reference CA.  Its KDC issues tickets with a PAC, names services by AD's rules and is a
KDC certipy and impacket talk to (neither works against MIT 1.20).

One DC per machine (its ports are fixed): :func:`shared_domain` gives every process of a run the
same one.  The first process that needs it has a keeper process start it (under a machine-wide
lock); every process that uses it, that one included, attaches through a descriptor file,
holding a shared lock on it while it lives; the keeper stops the DC once none is attached.
``WCCE_LAB_DOMAIN_DIR`` (default ``/tmp/wcce-lab-domain``) and ``WCCE_LAB_DOMAIN_HOST`` (default
127.0.0.1) place a second one beside it (the keeper's own test).  ``WCCE_KDC`` chooses: ``auto`` (the default: this domain where Samba is installed and we are
root, else the MIT realm), ``samba`` (this domain or an error), ``mit`` (the MIT realm).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

from conformance.targets.samba import LOOPBACK, SambaDC, SambaError, samba_available

__all__ = ["LabDomain", "DomainInfo", "shared_domain", "domain_wanted", "KDC_CHOICE",
           "DomainUnavailable"]

KDC_CHOICE = "WCCE_KDC"
REALM = "LAB.TEST"
NETBIOS = "LAB"
CA_COMPUTER = "CA01"
USERS = ("wcce-suite", "wcce-other")
_HOME = pathlib.Path(os.environ.get("WCCE_LAB_DOMAIN_DIR", "/tmp/wcce-lab-domain"))


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
    owner_pid: int  # the keeper's

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
        # the join is made before the DC starts, so a kept template holds it too
        # (conformance.targets.provisions); its name says what it wrote
        join = (f"join {self.service_host} as {self._computer}$: HOST/ SPNs, a machine password, "
                f"msDS-SupportedEncryptionTypes 28, its keytab", self._join_ca)
        self.dc = SambaDC(realm=REALM, domain=NETBIOS, hostname="dc1", user_names=USERS,
                          host=os.environ.get("WCCE_LAB_DOMAIN_HOST", LOOPBACK), setup=join)
        self.dc.start()
        dc = self.dc
        self.info = DomainInfo(realm=dc.realm, netbios=dc.domain, dc_host=dc.host, dc_dns_name=dc.dns_name,
                               service_host=self.service_host, ca_account=f"{self._computer}$",
                               keytab=str(dc.keytab_path(f"{self._computer}$")), users=dict(dc.users),
                               admin_password=dc.admin_password, directory=str(dc.directory), owner_pid=os.getpid())
        return self.info

    @property
    def _computer(self) -> str:
        return self.service_host.split(".")[0].upper()

    def _join_ca(self, dc: SambaDC) -> None:
        short, computer = self.service_host.split(".")[0], self._computer
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
# The DC belongs to a keeper process of its own (``python -m conformance.targets.domain KEEP``),
# not to the process that first needed it: an owner that is one of the users would have to
# outlive all of them, and a user that is a child of another (a kill-matrix worker under a
# test, one CLI run beside another) would wait at exit for processes that wait for it.

_lock = threading.Lock()
_info: DomainInfo | None = None
_user_fd: int | None = None  # attached: a shared lock on the descriptor, held while we live
_POLL = 0.2  # seconds between the keeper's looks for attached processes


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


def _attach(path: pathlib.Path) -> None:
    global _user_fd
    _user_fd = os.open(path, os.O_RDONLY)
    fcntl.flock(_user_fd, fcntl.LOCK_SH)  # released by the kernel when this process ends, however


def shared_domain() -> DomainInfo:
    """This machine run's domain: attach to the running one, or have a keeper start it."""
    global _info
    with _lock:
        if _info is not None:
            return _info
        _HOME.mkdir(mode=0o700, exist_ok=True)
        with open(_HOME / "lock", "a+") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # machine-wide: one starter at a time, no attach while it stops
            path = _descriptor()
            if path.exists():
                info = DomainInfo.from_json(path.read_text())
                if _alive(info.owner_pid) and pathlib.Path(info.directory).exists():
                    _attach(path)
                    _info = info
                    return info
                path.unlink()  # its keeper is gone
            with open(_HOME / "keeper.log", "ab") as log:
                keeper = subprocess.Popen([sys.executable, "-m", "conformance.targets.domain", "KEEP"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                          start_new_session=True, env={**os.environ, "WCCE_LAB_DOMAIN_DIR": str(_HOME)})
            said = keeper.stdout.readline().decode("utf-8", "replace").strip()
            if said != "ready":
                keeper.wait(30)
                raise SambaError(said.removeprefix("error: ") or f"the domain's keeper exited with status "
                                 f"{keeper.returncode} (log: {_HOME / 'keeper.log'})")
            info = DomainInfo.from_json(path.read_text())
            _attach(path)
            keeper.stdin.write(b"attached\n")  # the keeper now watches for its users
            keeper.stdin.close()
            keeper.stdout.close()
            _info = info
            return info


def _keep() -> int:
    """The keeper: start the domain, say ``ready``, and stop it once no process is attached
    (each user holds a shared lock on the descriptor while it lives)."""
    path = _descriptor()
    try:
        owned = LabDomain()
        info = owned.start()
    except (SambaError, OSError) as exc:
        print(f"error: {exc}", flush=True)
        return 1
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(info.to_json())
        print("ready", flush=True)
        sys.stdin.readline()  # the starter has attached (or died: end of file)
        watch = os.open(path, os.O_RDONLY)
        while True:
            time.sleep(_POLL)
            with open(_HOME / "lock", "a+") as guard:
                fcntl.flock(guard, fcntl.LOCK_EX)  # no process attaches while we look
                try:
                    fcntl.flock(watch, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                path.unlink(missing_ok=True)
                owned.stop()  # under the lock: the next starter finds the ports free
                break
        return 0
    finally:
        owned.stop()


if __name__ == "__main__":
    if sys.argv[1:] != ["KEEP"]:
        sys.exit("usage: python -m conformance.targets.domain KEEP (started by shared_domain())")
    sys.exit(_keep())


__all__ += ["LOOPBACK"]
