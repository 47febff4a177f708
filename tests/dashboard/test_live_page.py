"""The Live page through AppTest: the pulse, the empty state, the feed with its links."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.app import policy as app_policy
from core.app.data import open_store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def _open(db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/live.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_an_empty_feed_says_how_to_start(demo_store: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(demo_store, monkeypatch)
    assert at.title[0].value == "Live"
    assert any("No live alerts yet" in i.value for i in at.info)
    assert len(at.metric) == 3


def test_an_alert_is_listed_with_its_links_and_its_reasons_as_plain_text(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(demo_store_copy) as store:
        model_id = app_policy.in_force(store).model_id
        session_id, user_id = store.con.execute(
            "SELECT session_id, user_id FROM sessions ORDER BY session_id LIMIT 1").fetchall()[0]
        store.live.insert(pd.DataFrame({
            "session_id": [session_id], "user_id": [user_id],
            "model_id": [model_id], "score": [1.0], "risk": [97.0],
            "raised_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            "event_ts": [dt.datetime(2026, 1, 1)],
            "reasons": [json.dumps(["<b>x</b> many failed payments"])]}))
    at = _open(demo_store_copy, monkeypatch)
    table = at.dataframe(key="live_table")
    shown = table.value
    assert list(shown["session_id"]) == [session_id]
    assert shown["explain"].iloc[0].startswith("./explain?session=")
    assert shown["reasons"].iloc[0] == "<b>x</b> many failed payments"  # a cell, never HTML
    assert not [b for b in at.button if b.key == "live_open_case"]  # nothing selected yet
