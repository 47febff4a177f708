"""Shared pieces of the browser tests: start a dashboard server, drive Chromium, settle."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage"]


LAST_SERVER_PID: list[int] = [0]  # the process of the newest dashboard_server (memory checks)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dashboard_server(env: dict[str, str]) -> Iterator[str]:
    """A running ``streamlit run dashboard/app.py`` with ``env`` added (sign-in off unless
    ``env`` turns it on); yields its URL."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (scripts/test.sh does).")
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k != "ANOMALYST_AUTH"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    LAST_SERVER_PID[0] = proc.pid
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read() if proc.stdout else ''}")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def chromium_page(height: int = 1000, *, downloads: bool = False) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": height},
                                      accept_downloads=downloads)
        try:
            page = context.new_page()
            RunTracker().attach(page)
            yield page
        finally:
            browser.close()


class RunTracker:
    """What the page's own websocket says: the reruns it asked for and the runs that ended.

    Streamlit's DOM alone cannot tell "no rerun yet" from "the rerun is done": a click's
    request may reach the server after a check of the page, and a run that ends in
    ``st.rerun()`` leaves the old elements on the page until the next run ends. The frames
    can: every request is a ``rerun_script`` BackMsg, every finished run a ``script_finished``
    ForwardMsg (one that ended early for a rerun does not count).
    """

    def __init__(self) -> None:
        self.trace = os.environ.get("ANOMALYST_BROWSER_TRACE") == "1"  # frames to stderr
        self.sockets = 0  # sockets opened, one per loaded document
        self.seq = 0
        self.last_request = 0
        self.last_finish = 0
        self.settled_socket = 0  # the socket the last settle saw
        self.requests = 0  # rerun requests sent, all sockets
        self.settled_requests = 0  # ... when the last settle ended

    def attach(self, page) -> None:
        page.on("websocket", self._opened)
        page.anomalyst_runs = self

    def _opened(self, socket) -> None:
        if "_stcore/stream" not in socket.url:
            return
        self.sockets += 1
        self.seq += 1
        self.last_request = self.seq  # a new document asks for its first run
        socket.on("framesent", self._sent)
        socket.on("framereceived", self._received)

    def _sent(self, payload: str | bytes) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        kind = BackMsg.FromString(payload).WhichOneof("type") if isinstance(
            payload, bytes) else None
        self._log("sent", kind)
        if kind == "rerun_script":
            self.requests += 1
            self.seq += 1
            self.last_request = self.seq

    def _received(self, payload: str | bytes) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if not isinstance(payload, bytes):
            return
        msg = ForwardMsg.FromString(payload)
        if msg.WhichOneof("type") != "delta":
            self._log("received", msg.WhichOneof("type"), msg.script_finished)
        if (msg.WhichOneof("type") == "script_finished"
                and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN):
            self.seq += 1
            self.last_finish = self.seq

    def _log(self, *what: object) -> None:
        if self.trace:
            print(f"{time.monotonic():.2f}", *what, file=sys.stderr, flush=True)

    def idle(self, fresh_document: bool) -> bool:
        """True once every rerun asked for has ended (and a new document's socket is up)."""
        if fresh_document and self.sockets <= self.settled_socket:
            return False
        return self.last_finish > self.last_request


SETTLED_DOM = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app !== null && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && document.querySelector('[data-stale="true"]') === null;
}"""


def settle(page, timeout_ms: int = 90_000, *, rerun: bool = False) -> None:
    """Wait (bounded) until every rerun the page asked for has ended and been drawn.

    ``rerun``: the action just taken must make the page rerun (a click on a button, Enter in
    a changed text box, a new choice): wait for its request first. Streamlit sends a
    button's request from a timer, after ``click()`` has returned, so without this the
    page can look settled before the request leaves. A new document counts as a request
    (its first run) without ``rerun``. Pages come from ``chromium_page`` (or any page given
    to ``RunTracker().attach``)."""
    runs = getattr(page, "anomalyst_runs", None)
    if runs is None:
        pytest.fail("settle() needs a page with a RunTracker attached (see chromium_page)")
    deadline = time.monotonic() + timeout_ms / 1000

    def wait(ready: Callable[[], bool], what: str) -> None:
        while not ready():
            if time.monotonic() > deadline:
                pytest.fail(f"{what} within {timeout_ms} ms (requests {runs.requests}, "
                            f"last request #{runs.last_request}, last finish "
                            f"#{runs.last_finish})")
            page.wait_for_timeout(50)  # lets Playwright deliver the websocket's frames

    if rerun:
        wait(lambda: runs.requests > runs.settled_requests,
             "the action asked for no rerun")
    fresh = page.evaluate("() => window.__anomalystSettled === undefined")
    runs._log("settle", page.url, "fresh" if fresh else "", "rerun" if rerun else "")
    wait(lambda: runs.idle(fresh), "the page did not finish its runs")
    left = max(1.0, (deadline - time.monotonic()) * 1000)
    page.wait_for_function(SETTLED_DOM, timeout=left, polling=50)
    runs.settled_socket = runs.sockets
    runs.settled_requests = runs.requests
    page.evaluate("() => { window.__anomalystSettled = true; }")


def no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
  .filter(c => c.offsetParent !== null)
  .every(c => c.querySelector('.main-svg') !== null)"""


def screenshot(page, name: str, *, full_page: bool = True, timeout_ms: int = 30_000) -> None:
    """Save ``artifacts/screenshots/<name>`` once every visible chart is drawn (plotly's own
    SVG, not Streamlit's grey placeholder), waiting at most ``timeout_ms``: the picture is for
    people, so a chart still loading after that is photographed as it is, not failed."""
    try:
        page.wait_for_function(CHARTS_DRAWN, timeout=timeout_ms, polling=100)
    except Exception as exc:  # noqa: BLE001 - Playwright's TimeoutError; the shot still helps
        print(f"screenshot {name}: charts not drawn within {timeout_ms} ms ({exc})")
    page.screenshot(path=str(SHOTS / name), full_page=full_page)
