"""In a real browser, sign-in on: a stranger sees only the login; a viewer cannot save."""

from __future__ import annotations

from pathlib import Path

import pytest
from _browser import SHOTS, chromium_page, dashboard_server, settle

from core.access import UserFile

pytestmark = pytest.mark.browser


def test_login_wall_then_viewer_rights(demo_store: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    UserFile(users).add("vera", "viewer", "viewer-password")
    env = {"ANOMALYST_DB": str(demo_store), "ANOMALYST_AUTH": "local",
           "ANOMALYST_USERS_FILE": str(users)}
    with dashboard_server(env) as url, chromium_page() as page:
        for path in ("", "/queue", "/user", "/thresholds"):
            page.goto(url + path)
            settle(page)
            body = page.inner_text('[data-testid="stMain"]')
            assert "Sign in to continue" in body, path
            assert page.locator('[data-testid="stDataFrame"]').count() == 0, path
            assert page.locator('[data-testid="stSidebarNav"]').count() == 0, path
        page.screenshot(path=str(SHOTS / "login.png"))
        page.get_by_label("User name").fill("vera")
        page.get_by_role("textbox", name="Password").fill("viewer-password")
        page.get_by_role("button", name="Sign in").click()
        settle(page)
        assert "Signed in as" in page.inner_text('[data-testid="stSidebar"]')
        page.goto(url + "/thresholds")
        settle(page)
        # A fresh page load is a new session: the login comes back (no cookie for local users).
        if "Sign in to continue" in page.inner_text('[data-testid="stMain"]'):
            page.get_by_label("User name").fill("vera")
            page.get_by_role("textbox", name="Password").fill("viewer-password")
            page.get_by_role("button", name="Sign in").click()
            settle(page)
            page.get_by_role("link", name="Thresholds").click()
            settle(page)
        save = page.get_by_role("button", name="Save")
        assert save.first.is_disabled()
        page.screenshot(path=str(SHOTS / "thresholds_viewer.png"), full_page=True)
