"""A throwaway MIT Kerberos realm on 127.0.0.1 (Debian ``krb5-kdc``, ``krb5-admin-server``).

Everything lives in a temporary directory found through ``KRB5_CONFIG`` and
``KRB5_KDC_PROFILE`` (``/etc`` is never read or written); the KDC listens on one free
port of 127.0.0.1 (TCP and UDP), runs as our own non-forking child and is stopped by
its PID.  Principals require pre-authentication, as Active Directory does.  The CA's
service principals (``RPCSS/``, ``rpcss/``, ``host/``, ``HOST/`` + its DNS name: MIT
names are case-sensitive, Windows' are not) go to a keytab the reference CA reads.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

__all__ = ["KdcError", "MitRealm", "kdc_available", "SERVICE_CLASSES"]

SERVICE_CLASSES = ("RPCSS", "rpcss", "host", "HOST")
_TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class KdcError(RuntimeError):
    """The realm could not be created or the KDC did not start (one line)."""


def _tool(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for d in _SBIN if (p := pathlib.Path(d) / name).exists()), None)


def kdc_available() -> bool:
    return all(_tool(t) for t in _TOOLS)


def _die_with_parent() -> None:
    """In the child before exec: krb5kdc gets SIGTERM when the process that started it
    dies, so a killed run (SIGKILL, SIGTERM) leaves no KDC behind (Linux prctl)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP."""
    for _ in range(100):
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
    raise KdcError("no port free for both TCP and UDP on 127.0.0.1")


@dataclasses.dataclass
class MitRealm:
    """``MitRealm(realm="LAB.TEST", service_host="ca01.lab.test", users={"alice": pw}).start()``."""

    realm: str = "LAB.TEST"
    service_host: str = "ca01.lab.test"
    users: dict[str, str] = dataclasses.field(default_factory=dict)
    clock_skew: int = 0  # seconds the KDC's clock runs ahead (krb5kdc -T), to provoke skew errors
    directory: pathlib.Path | None = None
    port: int = 0
    _process: subprocess.Popen | None = None

    @property
    def keytab(self) -> pathlib.Path:
        assert self.directory is not None
        return self.directory / "service.keytab"

    @property
    def kdc(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    @property
    def env(self) -> dict[str, str]:
        assert self.directory is not None
        return {"KRB5_CONFIG": str(self.directory / "krb5.conf"),
                "KRB5_KDC_PROFILE": str(self.directory / "kdc.conf"),
                "KRB5CCNAME": f"FILE:{self.directory / 'ccache'}"}

    def service_principals(self) -> list[str]:
        return [f"{cls}/{self.service_host}" for cls in SERVICE_CLASSES]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "MitRealm":
        missing = [t for t in _TOOLS if not _tool(t)]
        if missing:
            raise KdcError(f"MIT Kerberos tools missing ({', '.join(missing)}): apt-get install krb5-kdc "
                           f"krb5-admin-server")
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="wcce-realm-"))
        self.port = _free_port()
        try:
            self._write_config()
            self._run("kdb5_util", "create", "-s", "-r", self.realm, "-P", secrets.token_urlsafe(24))
            for user, password in self.users.items():
                self.add_user(user, password)
            for principal in self.service_principals():
                self._kadmin(f"addprinc +requires_preauth -randkey {principal}")
                self._kadmin(f"ktadd -k {self.keytab} -norandkey {principal}")
            self._start_kdc()
        except BaseException:
            self.stop()
            raise
        return self

    def add_user(self, user: str, password: str) -> None:
        self._kadmin(f"addprinc +requires_preauth -pw {password} {user}")

    def _start_kdc(self) -> None:
        argv = [_tool("krb5kdc"), "-n", "-r", self.realm, "-P", str(self.directory / "krb5kdc.pid")]
        if self.clock_skew:
            argv += ["-T", str(self.clock_skew)]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env={**os.environ, **self.env}, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise KdcError(f"krb5kdc exited with status {self._process.returncode} (see {self.directory}/kdc.log)")
            try:
                socket.create_connection(self.kdc, timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise KdcError(f"krb5kdc did not listen on 127.0.0.1:{self.port} within 10 s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> "MitRealm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers ------------------------------------------------------------------------

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([_tool(tool), *args], capture_output=True, text=True, timeout=60,
                                env={**os.environ, **self.env})
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
            raise KdcError(f"{tool} {args[0]} failed: {detail[0]}")

    def _kadmin(self, query: str) -> None:
        result = subprocess.run([_tool("kadmin.local"), "-r", self.realm, "-q", query], capture_output=True,
                                text=True, timeout=60, env={**os.environ, **self.env})
        # kadmin.local exits 0 even when the query fails; it reports on stderr
        if result.returncode != 0 or "error" in result.stderr.lower() or "unknown" in result.stderr.lower():
            raise KdcError(f"kadmin.local {query.split(' -pw ')[0].split()[0]} failed: "
                           f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else '?'}")

    def _write_config(self) -> None:
        d, port, realm = self.directory, self.port, self.realm
        domain = self.service_host.split(".", 1)[1] if "." in self.service_host else realm.lower()
        enctypes = "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96 rc4-hmac"
        (d / "krb5.conf").write_text(f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    allow_rc4 = true
    udp_preference_limit = 1
    permitted_enctypes = {enctypes}
    default_tkt_enctypes = {enctypes}
    default_tgs_enctypes = {enctypes}
    ticket_lifetime = 10h
    forwardable = true
    default_ccache_name = FILE:{d}/ccache

[realms]
    {realm} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    .{domain} = {realm}
    {domain} = {realm}
""")
        (d / "kdc.conf").write_text(f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {realm} = {{
        database_name = {d}/principal
        key_stash_file = {d}/stash
        acl_file = {d}/kadm5.acl
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 10h 0m 0s
        max_renewable_life = 7d 0h 0m 0s
        master_key_type = aes256-cts-hmac-sha1-96
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal rc4-hmac:normal
        default_principal_flags = +preauth
    }}

[logging]
    kdc = FILE:{d}/kdc.log
    default = FILE:{d}/krb5lib.log
""")
        (d / "kadm5.acl").write_text(f"*/admin@{realm} *\n")
