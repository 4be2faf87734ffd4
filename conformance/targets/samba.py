"""A throwaway Samba AD DC on a loopback address (Debian ``samba``, ``samba-dsdb-modules``,
``samba-vfs-modules``, ``samba-ad-provision``): an independent DCE/RPC server, tested by
Samba against Windows, to calibrate the suite's RPC-layer expectations against.

Everything lives in a temporary directory: our own ``smb.conf`` (written before
``samba-tool domain provision``, which then uses it as is, so ``/etc/samba/smb.conf`` is
never read), the databases, the pid, ncalrpc and socket directories, a ``krb5.conf`` for
MIT clients (``KRB5_CONFIG``) and the log.  The provisioned database is made once per shape
and copied afterwards (:mod:`conformance.targets.provisions`).  ``samba -i -M single`` runs as our own
non-forking child in its own process group; it dies with its parent twice over (Linux
prctl PR_SET_PDEATHSIG, and ``-i`` exits when its stdin, a pipe only we hold, closes) and
is stopped by its PID.

What it serves, on its address only (127.0.0.1 unless told; ``interfaces = 127.0.0.1/8``: ``lo`` would add ::1):
the endpoint mapper on TCP 135 (epm and mgmt), the KDC on TCP/UDP 88 and kpasswd on 464,
LDAP on TCP 389 and 3268 and CLDAP on UDP 389, and the RPC interfaces' dynamic ports from
49152.  Port 135 is bound on its address only, so reference CAs on other 127.x.y.z:135 can
run beside it, and so can a second DC on another address (``SECOND_DC_HOST``; the ports are
fixed); it needs root (ports below 1024, NT ACLs in ``security.*`` extended attributes).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import secrets
import shutil
import signal
import socket
import string
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable

from conformance.targets import provisions

__all__ = ["SambaDC", "SambaError", "samba_available", "rpc_answers", "LOOPBACK", "SECOND_DC_HOST"]

LOOPBACK = "127.0.0.1"  # the lab domain's DC (conformance.targets.domain)
#: where a DC of its own runs beside the lab domain's (calibrate's, the Samba tests'): its ports
#: are fixed, so two DCs need two addresses
SECOND_DC_HOST = "127.0.0.3"
_TOOLS = ("samba", "samba-tool")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin")
#: Samba 4.17's listeners with our server services (the dynamic RPC ports are probed by Samba itself)
_TCP_PORTS = (135, 88, 464, 389, 3268)
_UDP_PORTS = (88, 464, 389)
#: An unauthenticated bind to the endpoint mapper (epm v3.0, NDR 2.0) proves the RPC server answers
_EPM = uuid.UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa")
_NDR = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")
_BIND_ACK = 12


class SambaError(RuntimeError):
    """The domain could not be provisioned or the DC did not start (one line)."""


def _tool(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for d in _SBIN if (p := pathlib.Path(d) / name).exists()), None)


def _samba_python() -> str:
    """The interpreter samba-tool runs with (its ``#!`` line): it has Samba's bindings."""
    with open(_tool("samba-tool"), "rb") as script:
        first = script.readline().decode(errors="replace").strip()
    return first[2:].split()[0] if first.startswith("#!") and "env" not in first else "/usr/bin/python3"


def samba_available() -> bool:
    """Whether ``samba`` and ``samba-tool`` are installed (not whether we may run them: root)."""
    return all(_tool(t) for t in _TOOLS)


def _child_setup() -> None:
    """In the child before exec: SIGTERM when the process that started it dies, so a killed
    run (SIGKILL, SIGTERM) leaves no DC behind (Linux prctl)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _password() -> str:
    """Random, and complex enough for AD's default policy (three character classes).  It starts
    with a letter: samba-tool takes an argument that starts with "-" for an option."""
    return secrets.choice(string.ascii_letters) + secrets.token_urlsafe(18) + secrets.choice(string.ascii_uppercase) + \
        secrets.choice(string.ascii_lowercase) + secrets.choice(string.digits) + "-"


def _one_line(text: str, lines: int = 3) -> str:
    """The tail of a log as one line: its ERROR line when there is one, else its last lines."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in kept if line.startswith("ERROR")]
    return (errors[-1] if errors else " | ".join(kept[-lines:])) or "(no output)"


def _bind_pdu(interface: uuid.UUID, if_version: int) -> bytes:
    """A bind PDU ([C706] 12.6.4.3) with one presentation context and no authentication."""
    body = struct.pack("<HHIB3x", 5840, 5840, 0, 1)
    body += struct.pack("<HB1x", 0, 1) + interface.bytes_le + struct.pack("<I", if_version)
    body += _NDR.bytes_le + struct.pack("<I", 2)
    return struct.pack("<BBBB4sHHI", 5, 0, 11, 0x03, b"\x10\0\0\0", 16 + len(body), 0, 1) + body


def rpc_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when ``host:port`` answers an unauthenticated epm bind with a bind_ack."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_bind_pdu(_EPM, 3))
            header = b""
            while len(header) < 16:
                chunk = sock.recv(16 - len(header))
                if not chunk:
                    return False
                header += chunk
            return header[2] == _BIND_ACK
    except OSError:
        return False


def _busy(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT does not count
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@dataclasses.dataclass
class SambaDC:
    """``with SambaDC(user_names=("alice",)) as dc: dc.users["alice"], dc.admin_password``.

    ``users`` (name -> password) are created with their passwords, ``user_names`` with
    random ones; afterwards ``users`` holds them all.  A DC made from a kept template
    (:mod:`conformance.targets.provisions`) has the template's ``admin_password`` and the
    passwords its ``user_names`` were made with.
    """

    realm: str = "SAMBA.TEST"
    domain: str = "SAMBA"
    hostname: str = "dc1"
    user_names: tuple[str, ...] = ()
    start_timeout: float = 60.0
    log_level: int = 1
    admin_password: str = dataclasses.field(default_factory=_password, repr=False)
    users: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # name -> password
    #: the loopback address it serves on: another 127.x.y.z lets a second DC run beside the first
    host: str = LOOPBACK
    epm_port: int = dataclasses.field(default=135, init=False)
    #: where provisioned domains are kept for the next DC of the same shape (None: provision
    #: every time); see conformance.targets.provisions
    templates: pathlib.Path | None = dataclasses.field(default_factory=provisions.template_root, repr=False)
    #: ``(name, step)``: ``step(dc)`` changes the database after the users are made and before
    #: the DC starts (samba-tool and :meth:`modify` work on it offline); ``name`` says what it
    #: does (a template made with one step is another than one made with another)
    setup: tuple[str, Callable[["SambaDC"], None]] | None = dataclasses.field(default=None, repr=False)
    #: whether this DC's database is a copy of a kept template rather than a provision of its own
    from_template: bool = dataclasses.field(default=False, init=False)
    _fresh: bool = dataclasses.field(default=False, init=False, repr=False)  # retrying: no template
    _template_key: str | None = dataclasses.field(default=None, init=False, repr=False)
    provision_seconds: float | None = dataclasses.field(default=None, init=False)
    start_seconds: float | None = dataclasses.field(default=None, init=False)
    _scratch: tempfile.TemporaryDirectory | None = dataclasses.field(default=None, init=False, repr=False)
    _process: subprocess.Popen | None = dataclasses.field(default=None, init=False, repr=False)
    _attached: pathlib.Path | None = dataclasses.field(default=None, init=False, repr=False)

    @classmethod
    def attach(cls, directory: pathlib.Path, **names) -> "SambaDC":
        """A DC another process runs (its directory and names): samba-tool and names work,
        :meth:`stop` leaves it running."""
        dc = cls(**names)
        dc._attached = pathlib.Path(directory)
        return dc

    @staticmethod
    def new_password() -> str:
        return _password()

    # -- names --------------------------------------------------------------------------

    @property
    def directory(self) -> pathlib.Path:
        if self._attached is not None:
            return self._attached
        if self._scratch is None:
            raise SambaError("the DC is not started")
        return pathlib.Path(self._scratch.name)

    @property
    def dns_name(self) -> str:
        return f"{self.hostname}.{self.realm.lower()}"

    @property
    def kdc(self) -> tuple[str, int]:
        return self.host, 88

    @property
    def smb_conf(self) -> pathlib.Path:
        return self.directory / "etc" / "smb.conf"

    @property
    def krb5_conf(self) -> pathlib.Path:
        return self.directory / "krb5.conf"

    @property
    def log_path(self) -> pathlib.Path:
        return self.directory / "samba.log"

    @property
    def env(self) -> dict[str, str]:
        """For MIT clients (kinit, kvno) against the DC's KDC."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5CCNAME": f"FILE:{self.directory / 'ccache'}"}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "SambaDC":
        missing = [t for t in _TOOLS if not _tool(t)]
        if missing:
            raise SambaError(f"Samba missing ({', '.join(missing)}): apt-get install --no-install-recommends "
                             f"samba samba-dsdb-modules samba-vfs-modules samba-ad-provision")
        if os.geteuid() != 0:
            raise SambaError("a Samba AD DC needs root (ports 88, 135, 389; NT ACLs in security.* xattrs)")
        self._check_ports_free()
        self._scratch = tempfile.TemporaryDirectory(prefix="wcce-samba-")
        self.from_template = False
        try:
            self._write_config()
            began = time.monotonic()
            try:
                self._provisioned()
                for name, password in list(self.users.items()):
                    if name not in self.user_names:
                        self.add_user(name, password)
                self.provision_seconds = time.monotonic() - began
                began = time.monotonic()
                self._start_samba()
            except SambaError:
                if not self.from_template:
                    raise
                # a kept provision that does not restore or start: drop it and provision this DC
                # afresh, once, without looking for a template again (the drop may fail: read-only)
                provisions.discard(self.templates, self._template_key)
                self.stop()
                self.from_template, self._fresh = False, True
                return self.start()
            self.start_seconds = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        finally:
            self._fresh = False
        return self

    def _provisioned(self) -> None:
        """Provision the domain and create ``user_names`` (from a template of the same shape
        when one was kept, see :mod:`conformance.targets.provisions`; ``from_template`` says
        whether the DC came from it).  A template that does not restore is a SambaError with
        ``from_template`` set: :meth:`start` drops it."""
        key = self._template_key = None
        if self.templates is not None:
            masked = str(self.directory)
            key = provisions.template_key(
                samba_version=subprocess.run([_tool("samba"), "-V"], capture_output=True, text=True).stdout,
                provision_args=[a.replace(masked, "{dir}") for a in self._provision_args("{password}")],
                config=self.smb_conf.read_text().replace(masked, "{dir}"), user_names=self.user_names,
                setup=self.setup[0] if self.setup is not None else "")
            self._template_key = key
        if key is not None and not self._fresh:
            try:
                meta = provisions.restore(self.templates, key, self.directory)
                if meta is not None:
                    self.from_template = True
                    self.admin_password = meta["admin_password"]
                    self.users.update({name: meta["users"][name] for name in self.user_names})
                    return
            except (OSError, KeyError, TypeError, shutil.Error) as exc:
                self.from_template = True
                raise SambaError(f"the kept provision {key} did not restore: {exc}") from exc
        self._provision()
        for name in self.user_names:
            self.add_user(name)
        if self.setup is not None:
            self.setup[1](self)
        if key is not None:
            provisions.keep(self.templates, key, self.directory, admin_password=self.admin_password,
                            users={name: self.users[name] for name in self.user_names})

    def add_user(self, name: str, password: str | None = None) -> str:
        """Create a domain user (with a random password unless given); returns the password.
        Works before and while the DC runs (samba-tool writes sam.ldb directly)."""
        password = password or _password()
        self.samba_tool("user", "add", name, password, what=f"user add {name}")
        self.users[name] = password
        return password

    def keytab_path(self, principal: str) -> pathlib.Path:
        """Where :meth:`export_keytab` writes ``principal``'s keys (a copy of a kept provision
        has them there too)."""
        return self.directory / f"{principal.replace('/', '_')}.keytab"

    def export_keytab(self, principal: str | None = None) -> pathlib.Path:
        """The keys of ``principal`` (default: the DC's own ``host/<dns name>``, the service
        the suite's Kerberos clients ask for) as a keytab in the DC's directory, so the
        protected PDUs of its Kerberos contexts can be read (``samba-tool domain exportkeytab``)."""
        principal = principal or f"host/{self.dns_name}"
        path = self.keytab_path(principal)
        self.samba_tool("domain", "exportkeytab", str(path), f"--principal={principal}",
                         what=f"domain exportkeytab {principal}")
        return path

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={label}" for label in self.realm.lower().split("."))

    def modify(self, dn: str, attribute: str, value: str) -> None:
        """Replace one attribute of one object in the DC's database (Samba's own Python
        bindings, with the system interpreter that has them: samba-tool has no verb for it)."""
        script = ("import sys\nfrom samba.samdb import SamDB\nfrom samba.param import LoadParm\n"
                  "from samba.auth import system_session\nlp = LoadParm(); lp.load(sys.argv[1])\n"
                  "db = SamDB(url=lp.private_path('sam.ldb'), session_info=system_session(), lp=lp)\n"
                  "db.modify_ldif(sys.stdin.read())\n")
        ldif = f"dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n"
        python = _tool("samba-tool") and _samba_python()
        result = subprocess.run([python, "-c", script, str(self.smb_conf)], input=ldif, capture_output=True,
                                text=True, timeout=60, env=self._tool_env())
        if result.returncode != 0:
            raise SambaError(f"setting {attribute} on {dn} failed: {_one_line(result.stdout + result.stderr)}")

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._attached is not None:
            return  # not ours to stop
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                self._signal(process, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    self._signal(process, signal.SIGKILL)
                    process.wait()
            if process.stdin is not None:
                process.stdin.close()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> "SambaDC":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- steps -------------------------------------------------------------------------

    @staticmethod
    def _signal(process: subprocess.Popen, signum: int) -> None:
        """``signum`` to the DC's process group, so nothing it started outlives it (called while
        it runs: its PID is its group's id, and no other group can have that id)."""
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass

    def _check_ports_free(self) -> None:
        busy = [f"TCP {p}" for p in _TCP_PORTS if _busy(self.host, p, socket.SOCK_STREAM)]
        busy += [f"UDP {p}" for p in _UDP_PORTS if _busy(self.host, p, socket.SOCK_DGRAM)]
        if busy:
            raise SambaError(f"{self.host} ports in use ({', '.join(busy)}): another DC, KDC or LDAP server "
                             f"(on 0.0.0.0 or {self.host}) holds them")

    def _tool_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "SMB_CONF_PATH")}
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        return env

    def samba_tool(self, *args: str, what: str, timeout: float = 120) -> str:
        argv = [_tool("samba-tool"), *args, "-s", str(self.smb_conf)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                    env=self._tool_env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise SambaError(f"samba-tool {what} took more than {timeout:.0f} s") from exc
        output = result.stdout + result.stderr
        with (self.directory / "samba-tool.log").open("a") as log:
            log.write(f"$ samba-tool {what}\n{output}\n")
        if result.returncode != 0:
            raise SambaError(f"samba-tool {what} failed (status {result.returncode}): {_one_line(output)}")
        return output

    def _provision_args(self, password: str) -> list[str]:
        return ["domain", "provision", f"--realm={self.realm}", f"--domain={self.domain}",
                f"--host-name={self.hostname}", "--server-role=dc", "--dns-backend=NONE",
                f"--adminpass={password}", f"--targetdir={self.directory}"]

    def _provision(self) -> None:
        self.samba_tool(*self._provision_args(self.admin_password), what="domain provision")

    def _start_samba(self) -> None:
        argv = [_tool("samba"), "-i", "-M", "single", "-s", str(self.smb_conf), f"--debuglevel={self.log_level}"]
        with self.log_path.open("ab") as log:
            # stdin: a pipe only we hold; samba -i exits when it closes (our death, or stop())
            self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                             env=self._tool_env(), cwd=self.directory, process_group=0,
                                             preexec_fn=_child_setup)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SambaError(f"samba exited with status {self._process.returncode}: "
                                 f"{_one_line(self._log_text())}")
            if rpc_answers(self.host, self.epm_port, timeout=1) and self._accepts(self.kdc[1]) \
                    and self._accepts(389):
                return
            time.sleep(0.05)
        raise SambaError(f"samba did not answer an RPC bind on {self.host}:{self.epm_port} within "
                         f"{self.start_timeout:.0f} s: {_one_line(self._log_text())}")

    def _accepts(self, port: int) -> bool:
        try:
            socket.create_connection((self.host, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _write_config(self) -> None:
        d, realm = self.directory, self.realm.upper()
        for sub in ("etc", "private", "state", "cache", "bind-dns", "run", "ncalrpc", "winbindd", "ntp_signd"):
            (d / sub).mkdir(mode=0o700)
        # Written before the provision, which then keeps it as is ("only install a new
        # smb.conf if there isn't one there already"): no option comes from /etc/samba.
        self.smb_conf.write_text(f"""[global]
\tnetbios name = {self.hostname.upper()}
\tworkgroup = {self.domain.upper()}
\trealm = {realm}
\tserver role = active directory domain controller
\t# the endpoint mapper and the RPC servers, the KDC, LDAP and CLDAP: no s3fs (SMB, needs
\t# smbd), nbt (NetBIOS broadcasts), dns, winbindd, ntp_signd, kcc, drepl, dnsupdate
\tserver services = rpc, kdc, ldap, cldap
\t# this address only: "lo" would also bind ::1; an address/8 that is neither lo's network
\t# nor its broadcast is taken as given ("user knows best"): 127.0.0.3 though lo lacks it
\tinterfaces = {self.host}/8
\tbind interfaces only = yes
\tprivate dir = {d}/private
\tlock dir = {d}
\tstate directory = {d}/state
\tcache directory = {d}/cache
\tbinddns dir = {d}/bind-dns
\tpid directory = {d}/run
\tncalrpc dir = {d}/ncalrpc
\twinbindd socket directory = {d}/winbindd
\tntp signd socket directory = {d}/ntp_signd
\tlog file = {d}/log.%m
\tmax log size = 0
\tload printers = no
\tprinting = bsd
\tprintcap name = /dev/null
\tdisable spoolss = yes
\t# no ldaps (636, 3269) and no TLS key to generate at start
\ttls enabled = no

[sysvol]
\tpath = {d}/state/sysvol
\tread only = no

[netlogon]
\tpath = {d}/state/sysvol/{realm.lower()}/scripts
\tread only = no
""")
        self.krb5_conf.write_text(f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1

[realms]
    {realm} = {{
        kdc = {self.host}:88
        kpasswd_server = {self.host}:464
    }}

[domain_realm]
    .{realm.lower()} = {realm}
    {realm.lower()} = {realm}
""")
