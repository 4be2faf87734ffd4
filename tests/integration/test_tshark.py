"""tshark, a second opinion, dissects the CA's ServerAlive2 and activation replies cleanly.

The capture is real: tshark sniffs the loopback interface, filtered to the CA's
own address, while scapy's DCOM client (ServerAlive2 included) activates.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from scapy.layers.msrpce.msdcom import ServerAlive2

from tests.conftest import USERS
from tests.support import tools
from tests.support.hosts import fresh_loopback
from tests.support.scapy_client import activate, ntlm

pytestmark = pytest.mark.tshark

_WARNINGS = ("Malformed", "Long frame", "Short frame", "Expert Info (Error", "Exception occurred")


@pytest.fixture
def capture(tmp_path):
    tshark = tools.tshark()
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root")
    started = []

    def start(host: str):
        path = tmp_path / "capture.pcapng"
        proc = subprocess.Popen([tshark, "-i", "lo", "-f", f"host {host}", "-w", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not path.exists():
            time.sleep(0.1)
        time.sleep(0.5)  # let the capture filter settle
        return path, proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def _dissect(tshark: str, path, password: str, *extra: str) -> str:
    return subprocess.run([tshark, "-r", str(path), "-o", f"ntlmssp.nt_password:{password}",
                           "-V", *extra], capture_output=True, text=True, timeout=60).stdout


def _host_of_length_parity(parity: int) -> str:
    """An address whose text length has the given parity: the length decides whether
    ServerAlive2's NDR needs an alignment pad, so both must be tried."""
    while len(host := fresh_loopback()) % 2 != parity:
        pass
    return host


@pytest.mark.parametrize("parity", [0, 1], ids=["even-address", "odd-address"])
@pytest.mark.parametrize("level", [5, 6])
def test_activation_and_server_alive2_dissect_cleanly(ca_factory, capture, level, parity):
    ca = ca_factory(host=_host_of_length_parity(parity))
    if ca.activation_port != 135:
        pytest.skip("ServerAlive2 in scapy's client always uses port 135")
    host = ca.config.listen.host
    path, proc = capture(host)
    ServerAlive2(host)
    session = activate(host, ca.activation_port, level=level, ssp=ntlm("alice", USERS["alice"]))
    session.close()
    time.sleep(1.0)
    proc.terminate()
    proc.wait(timeout=10)
    tshark = tools.tshark()
    summary = subprocess.run([tshark, "-r", str(path), "-o",
                              f"ntlmssp.nt_password:{USERS['alice']}"],
                             capture_output=True, text=True, timeout=60).stdout
    assert "ServerAlive2 response" in summary, summary
    assert "RemoteCreateInstance response" in summary, summary  # decrypted at level 6 too
    detail = _dissect(tshark, path, USERS["alice"])
    assert "ScmReplyInfo" in detail and "PropertiesOutput" in detail
    for warning in _WARNINGS:
        assert warning not in detail, f"tshark reports {warning!r}"

