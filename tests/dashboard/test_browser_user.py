"""A real Chromium opens the User page from a deep link ``/user?user=…&session=…``: the focus
session is named and highlighted, and the timeline is drawn with its focus band and range
selector. Screenshot: ``artifacts/screenshots/user_focus.png``."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle
from _entity_store import SHARED_USERS, build

pytestmark = pytest.mark.browser
USER = SHARED_USERS[0]
FOCUS = f"{USER}-s2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = build(tmp_path_factory.mktemp("user-browser") / "tiny.duckdb")
    with dashboard_server({"ANOMALYST_DB": str(db)}) as url:
        yield url


def test_the_deep_link_highlights_the_focus_session(server: str) -> None:
    with chromium_page(2600) as page:
        query = urllib.parse.urlencode({"user": USER, "session": FOCUS})
        page.goto(f"{server}/user?{query}")
        settle(page)
        no_exception(page)
        box = page.locator('[data-testid="stMarkdownContainer"]', has_text="Focus session")
        box.first.wait_for(timeout=30_000)
        assert FOCUS in box.first.inner_text()
        timeline = page.locator('[data-testid="stPlotlyChart"]', has_text="Timeline").first
        timeline.wait_for(timeout=30_000)
        # plotly drew the focus band and the range selector's buttons
        timeline.locator(".shapelayer path").first.wait_for(state="attached", timeout=30_000)
        buttons = timeline.locator(".rangeselector .button")
        buttons.first.wait_for(state="attached", timeout=30_000)
        assert buttons.count() == 5
        assert timeline.get_by_text("focus session").count() >= 1
        screenshot(page, "user_focus.png")
