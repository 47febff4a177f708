"""A real Chromium opens a case, decides it and downloads its report (see test_browser.py).

The server runs on a private copy of the demo store, because this test writes to it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle

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
    with dashboard_server({"ANOMALYST_DB": str(store_copy)}) as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str):
    with chromium_page(1000, downloads=True) as opened:
        yield opened


def type_into(page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    settle(page, rerun=True)


def test_open_decide_and_export_a_case(page, server: str, store_copy: Path,
                                       tmp_path: Path) -> None:
    with Store.open(store_copy, read_only=True) as store:
        user_id = str(store.sessions.meta()["user_id"].iloc[0])
    page.goto(f"{server}/cases")
    settle(page)
    no_exception(page)
    type_into(page, "Analyst name", "vera")
    page.get_by_text("Open a case", exact=True).click()
    type_into(page, "User id", user_id)
    page.get_by_role("button", name="Open case").click()
    settle(page, rerun=True)
    no_exception(page)
    assert page.get_by_text("C-00001").count() > 0
    type_into(page, "Scenario", "card_testing")
    page.get_by_role("button", name="Decide", exact=True).click()
    settle(page, rerun=True)
    no_exception(page)
    # "fraud_confirmed" is also a choice of the Decision radio: the case closed
    # when Reopen replaces Decide
    assert page.get_by_role("button", name="Reopen").count() == 1
    assert page.get_by_role("button", name="Decide", exact=True).count() == 0
    page.get_by_role("button", name="Prepare report").click()
    settle(page, rerun=True)
    with page.expect_download(timeout=30_000) as download_info:
        page.get_by_role("button", name="Download HTML").click()
    saved = tmp_path / "report.html"
    download_info.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert "<!DOCTYPE html>" in text and "Case C-00001" in text and "fraud_confirmed" in text
    # Streamlit scrolls inside its own container: a tall viewport shows the whole page.
    page.set_viewport_size({"width": 1400, "height": 2700})
    settle(page)
    screenshot(page, "cases.png")
    with Store.open(store_copy, read_only=True) as store:
        case = cases.get_case(store, "C-00001")
        actions = cases.audit_trail(store, "C-00001")["action"].tolist()
    assert (case.status, case.decision, case.decided_by) == ("closed", "fraud_confirmed", "vera")
    assert actions == ["open", "decide", "export"]
