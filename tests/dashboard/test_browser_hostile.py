"""In a real browser: hostile user ids, session ids and URL parameters render as literal text
(issue #20, item 2). No link or image they carry reaches the DOM, and the browser asks no
other host for anything."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pandas as pd
import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle
from playwright.sync_api import expect

from core.ingest import ingest_events
from core.store import Store

pytestmark = pytest.mark.browser

HOSTILE = ("![r](http://198.51.100.7/x.png) [Session expired: sign in again](http://198.51.100.7/p)"
           " <img src=http://198.51.100.7/y.png> :red[alert] $x^2$ :smile: www.example.org")
HOSTILE_SESSION = ("[open me](http://198.51.100.7/s) `tick` ![i](http://198.51.100.7/s.png)"
                   " :red[alert] $x^2$ :smile: <b>bold</b>")


def _foreign(requests: list[str], base: str) -> list[str]:
    return [r for r in requests if not r.startswith(base) and not r.startswith("data:")
            and not r.startswith("blob:")]


def _no_live_markup(page) -> None:
    main = page.locator('[data-testid="stMain"]')
    assert main.locator('a[href*="198.51.100.7"]').count() == 0
    assert main.locator('img[src*="198.51.100.7"]').count() == 0
    assert main.locator('a[href*="example.org"]').count() == 0
    assert page.locator(".katex").count() == 0  # no LaTeX rendered from the value


def test_crafted_user_link_renders_literally(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        ingest_events(store, pd.DataFrame({
            "user_id": [HOSTILE] * 2, "session_id": [HOSTILE_SESSION] * 2,
            "ts": ["2026-01-01T10:00:00", "2026-01-01T10:01:00"],
            "event_type": ["<b>view</b> [x](http://198.51.100.7/e)", "purchase"],
        }))
    with dashboard_server({"ANOMALYST_DB": str(demo_store_copy)}) as url, \
            chromium_page() as page:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        # 1. A crafted link to a user who does not exist.
        query = urllib.parse.urlencode({"user": "![r](http://198.51.100.7/x.png) "
                                                "[Session expired](http://198.51.100.7/p)"})
        page.goto(f"{url}/user?{query}")
        settle(page)
        no_exception(page)
        body = page.inner_text('[data-testid="stMain"]')
        assert "[Session expired](http://198.51.100.7/p)" in body  # shown as typed
        _no_live_markup(page)
        # 2. A stored user and session whose ids are hostile, opened from a crafted link.
        query = urllib.parse.urlencode({"user": HOSTILE, "session": HOSTILE_SESSION})
        page.goto(f"{url}/user?{query}")
        settle(page)
        no_exception(page)
        main = page.locator('[data-testid="stMain"]')
        expect(main).to_contain_text("Opened for session [open me](http://198.51.100.7/s)",
                                     timeout=30_000)
        expect(main).to_contain_text(":red[alert] $x^2$ :smile: <b>bold</b>", timeout=30_000)
        _no_live_markup(page)
        screenshot(page, "user_hostile.png")
        assert not _foreign(requests, url), _foreign(requests, url)
