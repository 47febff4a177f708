"""The Live page in a real Chromium: an alert the running service raises appears by itself
(the page refreshes its feed) within 10 s of the event's acknowledgement."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle

from core.policy import publish_policy
from core.serve.events_in import parse_events
from core.serve.service import ScoringService, ServiceConfig
from core.store import Store

pytestmark = pytest.mark.browser


def test_a_new_alert_reaches_the_live_page_within_10_s(demo_store_copy: Path) -> None:
    from playwright.sync_api import expect

    with Store.open(demo_store_copy) as store:
        listing = store.models.listing()
        model_id = str(listing[listing["detector"] == "zscore"]["model_id"].iloc[0])
        publish_policy(store, analyst="test", model_id=model_id, thresholds={"all": -1e9})
    service = ScoringService.open(demo_store_copy, ServiceConfig(fsync=False))
    try:
        with (dashboard_server({"ANOMALYST_DB": str(demo_store_copy)}) as url,
              chromium_page(1000) as page):
            page.goto(f"{url}/live")
            settle(page)
            expect(page.get_by_text("Newest alerts (0)")).to_be_visible(timeout=30_000)
            body = json.dumps([{"user_id": "browser_live", "event_type": "payment_failed",
                                "ts": f"2026-09-10T10:00:{s:02d}", "amount": 1.0}
                               for s in range(5)]).encode()
            answer = service.submit(parse_events(body))
            acked = time.monotonic()
            assert answer.applied and answer.events[-1]["flagged"] is True
            # the feed refreshes itself every 2 s: no reload, no click
            expect(page.get_by_text("Newest alerts (1)")).to_be_visible(timeout=10_000)
            assert time.monotonic() - acked <= 10.5
            no_exception(page)
            screenshot(page, "live_alert.png")
    finally:
        service.close()
