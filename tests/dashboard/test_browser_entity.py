"""A real Chromium: the User page links to the user's shared device, and the Entity page
renders from that link (its URL carries the kind and value, so a reload lands on it too)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle
from _entity_store import SHARED, SHARED_USERS, build

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a dashboard on the tiny entity store."""
    folder = tmp_path_factory.mktemp("browser_entity")
    db = build(folder / "tiny.duckdb")
    shutil.copy(db, folder / "served.duckdb")
    with dashboard_server({"ANOMALYST_DB": str(folder / "served.duckdb")}) as url:
        yield url


def test_entity_page_opens_from_the_user_page(served: str) -> None:
    from playwright.sync_api import expect

    with chromium_page(1100) as page:
        page.goto(f"{served}/user?user={SHARED_USERS[0]}")
        settle(page)
        no_exception(page)
        link = page.get_by_role("link", name=SHARED, exact=True)
        link.wait_for(timeout=60_000)
        link.click()
        page.wait_for_function("t => location.href.includes(t)", arg="/entity",
                               timeout=30_000)
        settle(page, rerun=True)
        expect(page.get_by_text("Users touching it")).to_be_visible(timeout=60_000)
        assert "kind=device_id" in page.url and f"value={SHARED}" in page.url
        users = page.locator('[data-testid="stMetric"]').filter(has_text="Users")
        expect(users.first).to_contain_text("6", timeout=30_000)
        no_exception(page)
        screenshot(page, "entity_from_user.png")
        page.reload()  # the URL alone lands on the same entity
        settle(page)
        expect(page.get_by_text("Users touching it")).to_be_visible(timeout=60_000)
        no_exception(page)
