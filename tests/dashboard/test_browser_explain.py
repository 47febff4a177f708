"""A real Chromium opens the Explain page (feature and sequence models) of a running dashboard.

Runs on a copy of the demo store: the page stores the explanations it computes. Screenshots
land in ``artifacts/screenshots/explain.png`` and ``explain_sequence.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def store_copy(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("explain-browser") / "demo.duckdb"
    shutil.copy(demo_store, target)
    return target


@pytest.fixture(scope="module")
def server(store_copy: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (scripts/test.sh does).")
    port = free_port()
    env = {**os.environ, "ANOMALYST_DB": str(store_copy)}
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
        context = browser.new_context(viewport={"width": 1400, "height": 2600})  # whole page
        yield context.new_page()
        browser.close()


def settle(page, timeout_ms: int = 90_000) -> None:
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=timeout_ms, state="attached")
    page.wait_for_timeout(800)


def no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


@pytest.fixture(scope="module")
def target(store_copy: Path) -> dict[str, str]:
    with Store.open(store_copy, read_only=True) as store:
        frame = store.frame("model_list")
        models = dict(zip(frame["detector"], frame["model_id"], strict=True))
        scores = store.frame("model_scores", {"model_id": models["autoencoder"]})
    return {**models, "session": str(scores.sort_values("score")["session_id"].iloc[-1])}


@pytest.mark.parametrize(("detector", "shot", "expected"), [
    ("autoencoder", "explain.png", "SHAP: how each feature moves the score"),
    ("sequence_autoencoder", "explain_sequence.png", "coloured by occlusion"),
])
def test_explain_page_renders(page, server: str, target: dict[str, str], detector: str,
                              shot: str, expected: str) -> None:
    page.goto(f"{server}/explain?session={target['session']}&model={target[detector]}")
    settle(page)
    no_exception(page)
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_text("Why", exact=True).wait_for(timeout=30_000)
    assert page.get_by_text("typical session", exact=False).count() >= 1
    page.get_by_text(expected, exact=False).first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / shot), full_page=True)
