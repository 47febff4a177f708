"""The final proof: a real Chromium opens every page of a running dashboard.

Run by the README's test command (``-m browser`` is included there); needs Debian's
``chromium`` (scripts/test.sh installs it when missing). Screenshots land in
``artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(demo_store: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (scripts/test.sh does).")
    port = free_port()
    env = {**os.environ, "ANOMALYST_DB": str(demo_store)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
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
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def page(server: str):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


def settle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the script has run to the end (Streamlit marks it on the app root)."""
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=timeout_ms, state="attached")
    page.wait_for_timeout(500)


def no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


@pytest.mark.parametrize("name", ["overview", "thresholds", "queue", "user"])
def test_every_page_renders(page, server: str, name: str) -> None:
    page.goto(f"{server}/{'' if name == 'overview' else name}")
    settle(page)
    no_exception(page)
    assert page.get_by_text("Page not found").count() == 0
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_slider_moves_and_metrics_update(page, server: str) -> None:
    page.goto(f"{server}/thresholds")
    settle(page)
    before = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    before_value = page.locator('[data-testid="stSliderThumbValue"]').first.inner_text()
    page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
    for _ in range(40):
        page.keyboard.press("ArrowLeft")
    settle(page)
    assert page.locator('[data-testid="stSliderThumbValue"]').first.inner_text() != before_value
    no_exception(page)
    after = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert after != before
    page.screenshot(path=str(SHOTS / "thresholds_moved.png"), full_page=True)


def test_queue_row_opens_the_user(page, server: str) -> None:
    page.goto(f"{server}/queue")
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    box = grid.bounding_box()
    assert box is not None
    # The first column of a selectable grid is the row marker; click the first data row's.
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    page.wait_for_url("**/user?*", timeout=30_000)
    settle(page)
    no_exception(page)
    assert "user=" in page.url
    page.screenshot(path=str(SHOTS / "user_from_queue.png"), full_page=True)
