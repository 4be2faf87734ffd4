"""The reference CA as a separate process (``wcce-conformance ca serve``), so that a
test can SIGKILL it and read what it left behind."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

from tests.conftest import CA_NAME, USERS

_BANNER = re.compile(r"serving: activation (?P<host>\S+):(?P<port>\d+), exporter")


class CaProcessError(Exception):
    """The CA process did not come up (its log says why)."""


@dataclasses.dataclass(slots=True, kw_only=True)
class CaProcess:
    proc: subprocess.Popen
    host: str
    activation_port: int
    log_path: pathlib.Path

    @classmethod
    def start(cls, *, host: str, port: int, state_dir: pathlib.Path, log_path: pathlib.Path,
              timeout: float = 60.0) -> "CaProcess":
        """Start ``ca serve`` on ``host``:``port`` (0: a free one) and wait for its banner.

        Its log goes to a file, not a pipe: fifty clients' worth of call lines would
        fill a pipe nobody drains and stall the CA.
        """
        argv = [sys.executable, "-m", "conformance", "ca", "serve", "--host", host, "--port", str(port),
                "--ca-name", CA_NAME, "--state-dir", str(state_dir)]
        for name, password in USERS.items():
            argv += ["--user", f"{name}:{password}"]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _BANNER.search(log_path.read_text(errors="replace"))
            if match:
                return cls(proc=proc, host=host, activation_port=int(match["port"]), log_path=log_path)
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=10)
        raise CaProcessError(f"the CA did not start: {log_path.read_text(errors='replace')[-2000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed by the CA."""
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def threads(self) -> int:
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise CaProcessError("no Threads line in /proc status")
