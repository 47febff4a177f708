"""A real Chromium opens a case, decides it and downloads its report (see test_browser.py).

The server runs on a private copy of the demo store, because this test writes to it.
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
from test_browser import CHROMIUM, FLAGS, ROOT, SHOTS, free_port, no_exception, settle

from core import cases
from core.store import Store

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def store_copy(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("browser_cases") / "demo.duckdb"
    shutil.copy(demo_store, db)
    return db


@pytest.fixture(scope="module")
def server(store_copy: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (scripts/test.sh does).")
    port = free_port()
    env = {**os.environ, "ANOMALYST_DB": str(store_copy)}
    env.pop("ANOMALYST_AUTH", None)
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
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      accept_downloads=True)
        yield context.new_page()
        browser.close()


def type_into(page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    settle(page)


def test_open_decide_and_export_a_case(page, server: str, store_copy: Path,
                                       tmp_path: Path) -> None:
    with Store.open(store_copy, read_only=True) as store:
        user_id = str(store.frame("sessions_meta")["user_id"].iloc[0])
    page.goto(f"{server}/cases")
    settle(page)
    no_exception(page)
    type_into(page, "Analyst name", "vera")
    page.get_by_text("Open a case", exact=True).click()
    type_into(page, "User id", user_id)
    page.get_by_role("button", name="Open case").click()
    settle(page)
    no_exception(page)
    assert page.get_by_text("C-00001").count() > 0
    type_into(page, "Scenario", "card_testing")
    page.get_by_role("button", name="Decide", exact=True).click()
    settle(page)
    no_exception(page)
    assert page.get_by_text("fraud_confirmed").count() > 0
    page.get_by_role("button", name="Prepare report").click()
    settle(page)
    with page.expect_download(timeout=30_000) as download_info:
        page.get_by_role("button", name="Download HTML").click()
    saved = tmp_path / "report.html"
    download_info.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert "<!DOCTYPE html>" in text and "Case C-00001" in text and "fraud_confirmed" in text
    # Streamlit scrolls inside its own container: a tall viewport shows the whole page.
    page.set_viewport_size({"width": 1400, "height": 2700})
    settle(page)
    page.screenshot(path=str(SHOTS / "cases.png"), full_page=True)
    with Store.open(store_copy, read_only=True) as store:
        case = cases.get_case(store, "C-00001")
        actions = cases.audit_trail(store, "C-00001")["action"].tolist()
    assert (case.status, case.decision, case.decided_by) == ("closed", "fraud_confirmed", "vera")
    assert actions == ["open", "decide", "export"]
