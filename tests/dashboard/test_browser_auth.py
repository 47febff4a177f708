"""In a real browser, sign-in on: a stranger sees only the login; a viewer cannot publish."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _browser import chromium_page, dashboard_server, screenshot, settle
from playwright.sync_api import expect

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
        screenshot(page, "login.png", full_page=False)
        page.get_by_label("User name").fill("vera")
        page.get_by_role("textbox", name="Password").fill("viewer-password")
        page.get_by_role("button", name="Sign in").click()
        settle(page, rerun=True)
        assert "Signed in as" in page.inner_text('[data-testid="stSidebar"]')
        page.goto(url + "/thresholds")
        settle(page)
        # A fresh page load is a new session: the login comes back (no cookie for local users).
        if "Sign in to continue" in page.inner_text('[data-testid="stMain"]'):
            page.get_by_label("User name").fill("vera")
            page.get_by_role("textbox", name="Password").fill("viewer-password")
            page.get_by_role("button", name="Sign in").click()
            settle(page, rerun=True)
            page.get_by_role("link", name="Thresholds").click()
            settle(page, rerun=True)
        publish = page.get_by_role("button", name=re.compile("^Publish version"))
        assert publish.first.is_disabled()
        assert page.get_by_text("Needs the admin role").count() > 0
        screenshot(page, "thresholds_viewer.png")


def test_the_deep_link_survives_sign_in(demo_store: Path, tmp_path: Path) -> None:
    """Issue #20, item 4: /user?user=X&session=Y before sign-in opens that user after it."""
    from core.store import Store

    with Store.open(demo_store, read_only=True) as store:
        user, session = store.con.execute(
            "SELECT user_id, session_id FROM sessions ORDER BY session_id LIMIT 1").fetchall()[0]
    users = tmp_path / "users.json"
    UserFile(users).add("vera", "viewer", "viewer-password")
    env = {"ANOMALYST_DB": str(demo_store), "ANOMALYST_AUTH": "local",
           "ANOMALYST_USERS_FILE": str(users)}
    with dashboard_server(env) as url, chromium_page() as page:
        page.goto(f"{url}/user?user={user}&session={session}")
        settle(page)
        assert "Sign in to continue" in page.inner_text('[data-testid="stMain"]')
        page.get_by_label("User name").fill("vera")
        page.get_by_role("textbox", name="Password").fill("viewer-password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**/user?*user={user}*", timeout=60_000)
        settle(page, rerun=True)
        main = page.locator('[data-testid="stMain"]')
        expect(main).to_contain_text("Opened for session", timeout=30_000)
        expect(main).to_contain_text(session, timeout=30_000)
        expect(page.get_by_label("Find a user")).to_have_value(user, timeout=30_000)
        screenshot(page, "deep_link_after_sign_in.png", full_page=False)
