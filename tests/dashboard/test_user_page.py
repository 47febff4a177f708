"""AppTest of the User 360 page on a tiny scored store: the focus session from the deep link
(highlighted, the timeline zoomed to it), risk 0-100 and no raw detector scores, decisions,
past cases of the user and linked accounts with a way to open one, the linked accounts by
risk and decision, amounts with a currency."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from _entity_store import SHARED_USERS, build
from streamlit.testing.v1 import AppTest

from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
ME, FRAUDSTER, CLEARED = SHARED_USERS[0], SHARED_USERS[1], SHARED_USERS[2]


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The entity tests' store (six users share a device) with decided cases: a linked user
    decided fraud, one of ME's sessions decided not fraud."""
    from core.cases import decide_case, open_case

    path = build(tmp_path_factory.mktemp("user_page") / "tiny.duckdb")
    with Store.open(path) as store:
        fraud = open_case(store, analyst="ana", user_id=FRAUDSTER)
        decide_case(store, fraud.case_id, "fraud_confirmed", analyst="ana", scenario="ring")
        cleared = open_case(store, analyst="ana", session_id=f"{ME}-s1")
        decide_case(store, cleared.case_id, "false_positive", analyst="ana")
    return path


def open_user(db: Path, monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_file(APP, default_timeout=90)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("views/user.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def chart(at: AppTest, title: str) -> dict:
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if title in str(spec["layout"].get("title", {}).get("text", "")):
            return spec
    raise AssertionError(f"no chart titled {title!r}")


def test_the_deep_link_focuses_the_session(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    focus = f"{ME}-s2"
    at = open_user(tiny, monkeypatch, user=ME, session=focus)
    assert not at.warning and not at.error
    box = next(m.value for m in at.markdown if "Focus session" in m.value)
    assert focus in box and "asked in the link" in box and "risk" in box
    sessions = table(at, "n_events")
    assert sessions.iloc[0]["session_id"] == focus and bool(sessions.iloc[0]["focus"])
    assert sessions["focus"].sum() == 1
    with Store.open(tiny, read_only=True) as store:
        start = store.sessions.meta_of([focus])["start_ts"].iloc[0]
    timeline = chart(at, "Timeline")
    x0, x1 = (pd.Timestamp(v) for v in timeline["layout"]["xaxis"]["range"])
    assert x0 < start < x1 and x1 - x0 < pd.Timedelta("3h")
    assert timeline["layout"]["xaxis"]["rangeselector"]["buttons"]
    assert timeline["layout"]["shapes"][0]["fillcolor"] == "#FFA600"
    risk = chart(at, "Risk over time")
    assert any(t.get("name") == "focus session" for t in risk["data"])


def test_risk_not_raw_scores_and_decisions(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_user(tiny, monkeypatch, user=ME)
    sessions = table(at, "n_events")
    assert list(sessions.columns[:5]) == ["focus", "session_id", "risk", "flagged", "decision"]
    with Store.open(tiny, read_only=True) as store:
        model_ids = set(store.models.listing()["model_id"])
    assert not model_ids & set(sessions.columns) and "score" not in sessions.columns
    assert sessions["risk"].between(0, 100).all()
    assert sessions.set_index("session_id").loc[f"{ME}-s1", "decision"] == "not fraud"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Decided sessions"] == "1" and metrics["Sessions"] == "4"
    for title in ("Timeline", "Risk over time"):
        hover = json.dumps(chart(at, title)["data"])
        assert "risk" in hover
    at.toggle(key="user_detector_pct").set_value(True).run()
    assert not at.exception
    assert "zscore %ile" in table(at, "n_events").columns


def test_past_cases_of_the_user_and_linked_accounts_open(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_user(tiny, monkeypatch, user=ME)
    cases = table(at, "relation").set_index("case_id")
    assert cases.loc["C-00001", "user"] == FRAUDSTER and cases.loc["C-00001", "relation"] == \
        "linked"
    assert cases.loc["C-00001", "decision"] == "fraud_confirmed"
    assert cases.loc["C-00002", "relation"] == "this user"
    assert {"status", "scenario", "updated"} <= set(cases.columns)
    linked = table(at, "n_shared").set_index("user_id")
    assert linked.loc[FRAUDSTER, "decision"] == "fraud"
    assert pd.isna(linked.loc[CLEARED, "decision"]) or linked.loc[CLEARED, "decision"] is None
    assert linked["max_risk"].between(0, 100).all()
    graph = chart(at, "Linked accounts")
    assert any("decided fraud" in str(t.get("name")) for t in graph["data"])
    at.selectbox(key="user_case_pick").set_value("C-00001").run()
    at.button(key="user_show_case").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["case"] == ["C-00001"] or at.query_params["case"] == "C-00001"


def test_a_session_of_another_user_is_said_and_the_riskiest_flagged_focused(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_user(tiny, monkeypatch, user=ME, session="u39-s0")
    assert any("is not one of this user's sessions" in w.value for w in at.warning)
    assert any("Opened for session" in c.value for c in at.caption)


def test_amounts_show_the_store_currency(tiny: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_user(tiny, monkeypatch, user=ME)
    assert any("(currency not set)" in c.value for c in at.caption)
    copy = tmp_path / "eur.duckdb"
    shutil.copy(tiny, copy)
    from core.app import user360

    with Store.open(copy) as store:
        user360.set_display_currency(store, "EUR")
    at = open_user(copy, monkeypatch, user=ME)
    assert any(c.value == "EUR" for c in at.caption), [c.value for c in at.caption]
    assert chart(at, "Amounts per session (EUR)")


def test_many_sessions_are_drawn_bounded(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import services_user

    monkeypatch.setattr(services_user, "MAX_POINTS", 2)
    at = open_user(tiny, monkeypatch, user=ME, session=f"{ME}-s0")
    risk = chart(at, "Risk over time")
    bucket = next(t for t in risk["data"] if str(t.get("name", "")).startswith("highest risk"))
    assert sum(1 for _ in bucket["x"]) >= 1
    points = [t for t in risk["data"] if t.get("name") in {"flagged", "not flagged"}]
    assert sum(len(t["x"]) for t in points) <= 2  # the focus (and a decided one) only
    assert any("More than 2 sessions: the focus, decided and flagged" in c.value
               for c in at.caption), [c.value for c in at.caption]


def test_the_asked_focus_is_listed_from_another_page(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import services

    monkeypatch.setattr(services, "SESSIONS_PER_PAGE", 2)
    at = open_user(tiny, monkeypatch, user=ME, session=f"{ME}-s0")  # the oldest: page 2
    sessions = table(at, "n_events")
    assert len(sessions) == 3 and sessions.iloc[0]["session_id"] == f"{ME}-s0"
    assert bool(sessions.iloc[0]["focus"])
