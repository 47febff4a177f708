"""In a real browser: a table's toolbar offers no "Download as CSV" (issue #20, item 5); the
page's own "Export CSV" is the only way out (tests/dashboard/test_exports.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle

pytestmark = pytest.mark.browser


def test_tables_have_no_toolbar_download(demo_store: Path) -> None:
    with dashboard_server({"ANOMALYST_DB": str(demo_store)}) as url, chromium_page() as page:
        page.goto(f"{url}/queue")
        settle(page)
        no_exception(page)
        table = page.locator('[data-testid="stDataFrame"]').first
        table.hover()
        toolbar = page.locator('[data-testid="stElementToolbar"]').first
        toolbar.get_by_role("button", name="Search").wait_for(timeout=15_000)  # it is shown
        assert toolbar.get_by_role("button", name="Download as CSV").count() == 0
        assert page.get_by_role("button", name="Export CSV").count() == 1
        screenshot(page, "queue_toolbar.png", full_page=False)
