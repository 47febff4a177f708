"""The analyst's loop in a real Chromium: a name set once, a case opened from the User page
and decided, the decision seen on Thresholds in a SECOND browser context without a restart,
and the name kept over a reload and the app's own deep link.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import (
    CHROMIUM,
    FLAGS,
    SHOTS,
    RunTracker,
    dashboard_server,
    no_exception,
    screenshot,
    settle,
)
from playwright.sync_api import expect

from core.store import Store

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(demo_store: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Path]]:
    """(URL, store): a server on a private copy of the demo store (this test writes)."""
    db = tmp_path_factory.mktemp("browser_loop") / "demo.duckdb"
    shutil.copy(demo_store, db)
    with dashboard_server({"ANOMALYST_DB": str(db)}) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        opened = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield opened
        opened.close()


def new_page(browser, height: int = 1400):
    page = browser.new_context(viewport={"width": 1400, "height": height}).new_page()
    RunTracker().attach(page)
    return page


def labelled_caption(page) -> str:
    return page.get_by_text(re.compile(r"labelled sessions in this segment")).first.inner_text()


def analysts_only(page) -> None:
    page.locator('[data-testid="stSidebar"]').get_by_text("analysts", exact=True).click()
    settle(page, rerun=True)


def test_the_loop_holds_together(browser, served: tuple[str, Path]) -> None:
    server, store_copy = served
    with Store.open(store_copy, read_only=True) as store:
        user_id = str(store.sessions.meta()["user_id"].iloc[0])
    watcher = new_page(browser)  # the second browser context: Thresholds, analysts' labels
    watcher.goto(f"{server}/thresholds")
    settle(watcher)
    no_exception(watcher)
    analysts_only(watcher)
    assert ": 0 labelled sessions" in labelled_caption(watcher)

    analyst = new_page(browser)
    analyst.goto(f"{server}/user?user={user_id}")
    settle(analyst)
    name = analyst.get_by_label("Analyst name", exact=True)
    name.fill("ana")
    name.press("Enter")
    settle(analyst, rerun=True)
    screenshot(analyst, "user.png")
    analyst.get_by_role("button", name="Open case for this user").click()
    settle(analyst, rerun=True)
    no_exception(analyst)
    assert "/cases" in analyst.url and "analyst=ana" in analyst.url, analyst.url
    assert analyst.get_by_text("Type your name in the sidebar").count() == 0
    scenario = analyst.get_by_label("Scenario", exact=True)
    scenario.fill("card_testing")
    scenario.press("Enter")
    settle(analyst, rerun=True)
    analyst.get_by_role("button", name="Decide", exact=True).click()
    settle(analyst, rerun=True)
    no_exception(analyst)
    assert analyst.get_by_role("button", name="Reopen").count() == 1

    # identity survives a reload of the app's own deep link (/cases?case=…&analyst=ana)
    analyst.reload()
    settle(analyst)
    expect(analyst.get_by_label("Analyst name", exact=True)).to_have_value("ana",
                                                                          timeout=30_000)
    assert analyst.get_by_role("button", name="Next case").is_enabled()
    analyst.set_viewport_size({"width": 1400, "height": 2600})
    settle(analyst)
    screenshot(analyst, "cases_loop.png")

    # the watcher's next rerun (any widget) shows the decision: no restart, no reload
    watcher.locator('[data-testid="stSidebar"]').get_by_text("both", exact=True).click()
    settle(watcher, rerun=True)
    analysts_only(watcher)
    no_exception(watcher)
    assert ": 0 labelled sessions" not in labelled_caption(watcher)
    watcher.set_viewport_size({"width": 1400, "height": 2400})
    settle(watcher)
    screenshot(watcher, "thresholds_loop.png")

    overview = new_page(browser, 1600)
    overview.goto(f"{server}/?analyst=ana")
    settle(overview)
    no_exception(overview)
    expect(overview.get_by_label("Analyst name", exact=True)).to_have_value("ana",
                                                                           timeout=30_000)
    screenshot(overview, "overview.png")
