"""`anomalyst dashboard` never leaves its server behind: signals reach the whole group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# A stand-in for streamlit: a server process that starts a helper of its own, records both
# pids and runs until stopped (SIGTERM's default action ends it).
FAKE_SERVER = """
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(1)"])
open(sys.argv[1], "w").write(f"{__import__('os').getpid()} {helper.pid}")
while True:
    time.sleep(1)
"""

SUPERVISOR = """
import os, sys
from pathlib import Path
from cli.dashboard import run_supervised
cmd = [sys.executable, "-c", sys.argv[1], sys.argv[2]]
raise SystemExit(run_supervised(cmd, env=dict(os.environ), cwd=Path.cwd()))
"""


def alive(pid: int) -> bool:
    """Running and not a zombie (a container's init may not reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def start_supervisor(tmp_path: Path) -> tuple[subprocess.Popen, int, int]:
    pids = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", SUPERVISOR, FAKE_SERVER, str(pids)],
                              cwd=Path(__file__).resolve().parents[2])
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, 60,
             "the fake server to start")
    server, helper = map(int, pids.read_text().split())
    return parent, server, helper


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_cli_stops_the_whole_server_group(tmp_path: Path, signum: int) -> None:
    parent, server, helper = start_supervisor(tmp_path)
    try:
        parent.send_signal(signum)
        assert parent.wait(timeout=30) != 0
        wait_for(lambda: not alive(server) and not alive(helper), 15, "the server group to end")
    finally:
        for pid in (server, helper):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal and /proc")
def test_even_sigkill_to_the_cli_stops_the_server(tmp_path: Path) -> None:
    parent, server, helper = start_supervisor(tmp_path)
    try:
        parent.kill()
        parent.wait(timeout=30)
        wait_for(lambda: not alive(server), 15, "the server to end after its parent died")
    finally:
        for pid in (server, helper):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")
def test_sigterm_to_anomalyst_dashboard_frees_the_port(tmp_path: Path) -> None:
    port = _free_port()
    cli = Path(sys.executable).with_name("anomalyst")
    parent = subprocess.Popen([str(cli), "dashboard", "--db", str(tmp_path / "s.duckdb"),
                               "--port", str(port)], stderr=subprocess.DEVNULL)
    children: list[int] = []
    try:
        wait_for(lambda: _listening(port), 120, "streamlit to listen")
        children = _children(parent.pid)
        assert children
        parent.terminate()
        parent.wait(timeout=30)
        wait_for(lambda: not any(alive(c) for c in children) and not _listening(port), 30,
                 "streamlit to stop and free the port")
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
