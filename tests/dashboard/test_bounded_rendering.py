"""Bounded rendering (issue #20, item 10): a user with very many events or sessions is drawn
from a bounded read (events aggregated per time bucket, sessions a page at a time) that says
so on the page, and a case report holds a capped number of events with a note."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.ingest import ingest_events
from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
N_EVENTS, N_SESSIONS = 6_000, 300


@pytest.fixture()
def heavy(demo_store_copy: Path) -> Path:
    """The demo store plus 'bot': 6,000 events in 300 sessions, one every 10 s."""
    i = np.arange(N_EVENTS)
    frame = pd.DataFrame({
        "user_id": "bot", "session_id": [f"bot-s{k:04d}" for k in i // (N_EVENTS // N_SESSIONS)],
        "ts": pd.Timestamp("2026-09-03") + pd.to_timedelta(i * 10, unit="s"),
        "event_type": np.where(i % 3 == 0, "add_to_cart", "view"),
        "amount": np.where(i % 3 == 0, 1.0, np.nan), "device_id": "d1", "ip": "10.0.0.1"})
    with Store.open(demo_store_copy) as store:
        ingest_events(store, frame)
    return demo_store_copy


def _table(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _chart_chars(at: AppTest) -> int:
    return sum(len(c.proto.spec) for c in at.get("plotly_chart"))


def test_the_user_page_draws_a_heavy_user_from_a_bounded_read(
        heavy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    from dashboard import services

    monkeypatch.setattr(services, "MAX_USER_EVENTS", 500, raising=False)
    monkeypatch.setattr(services, "SESSIONS_PER_PAGE", 40, raising=False)
    monkeypatch.setenv("ANOMALYST_DB", str(heavy))
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["user"] = "bot"
    at.run()
    at.switch_page("views/user.py").run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Events"] == f"{N_EVENTS:,}" and metrics["Sessions"] == f"{N_SESSIONS:,}"
    events = _table(at, "event_type")
    assert len(events) <= 500 and events["n_events"].sum() == N_EVENTS  # all counted
    assert any("aggregated by" in c.value and f"{N_EVENTS:,} events" in c.value
               for c in at.caption), [c.value for c in at.caption]
    assert len(_table(at, "start_ts")) == 40
    assert any("Showing 40 of 300 sessions" in c.value for c in at.caption)
    assert _chart_chars(at) < 400_000, _chart_chars(at)
    at.number_input(key="user_sessions_page").set_value(8).run()  # the last, partial page
    assert not at.exception
    assert len(_table(at, "start_ts")) == N_SESSIONS - 7 * 40


def test_a_case_report_of_a_heavy_user_is_capped_and_says_so(
        heavy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.cases import open_case
    from core.reports import content, render_case_report

    monkeypatch.setattr(content, "MAX_REPORT_EVENTS", 1_000, raising=False)
    with Store.open(heavy) as store:
        case = open_case(store, analyst="ana", session_id="bot-s0150")
        html = render_case_report(store, case.case_id, "html", actor="ana",
                                  explain=False).decode()
        bundle = json.loads(render_case_report(store, case.case_id, "json", actor="ana",
                                               explain=False))
    assert "This report holds 1,000 of the user&#x27;s 6,000 events" in html or \
        "This report holds 1,000 of the user's 6,000 events" in html
    assert bundle["n_events"] == N_EVENTS and bundle["n_events_in_report"] == 1_000
    rows = pd.read_csv(pd.io.common.StringIO(bundle["events_csv"]))
    assert len(rows) == 1_000
    assert (rows["session_id"] == "bot-s0150").sum() == N_EVENTS // N_SESSIONS  # all of them
