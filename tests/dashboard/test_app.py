"""AppTest smoke and behaviour tests of every page: empty store, unscored store, demo store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.evaluate import ThresholdTable
from core.ingest import ingest_events
from core.pipeline import labelled_scores
from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = ["overview", "thresholds", "queue", "user", "models", "live"]


def open_page(page: str, db: Path, monkeypatch: pytest.MonkeyPatch,
              query: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.parametrize("page", PAGES)
def test_pages_explain_a_missing_store(page: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(page, tmp_path / "none.duckdb", monkeypatch)
    assert any("anomalyst demo" in i.value for i in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_pages_explain_an_unscored_store(page: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "unscored.duckdb"
    with Store.open(db) as store:
        ingest_events(store, pd.DataFrame({"user_id": ["u"], "ts": ["2026-01-01"],
                                           "event_type": ["view"]}))
    at = open_page(page, db, monkeypatch)
    assert any("anomalyst train" in i.value for i in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_the_demo_store(page: str, demo_store: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(page, demo_store, monkeypatch)
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_threshold_slider_matches_core_evaluate(demo_store: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("thresholds", demo_store, monkeypatch)
    model_id = at.selectbox(key="thr_model").value
    slider = at.slider(key="thr_value")
    lo, hi = slider.min, slider.max
    for fraction in (0.2, 0.6):
        value = lo + (hi - lo) * fraction
        at.slider(key="thr_value").set_value(value).run()
        assert not at.exception
        chosen = at.slider(key="thr_value").value
        with Store.open(demo_store, read_only=True) as store:
            frame = labelled_scores(store, model_id)
        known = frame[frame["is_anomaly"].notna()]
        op = ThresholdTable.from_scores(known["score"].to_numpy(np.float64),
                                        known["is_anomaly"].astype(bool)).at(chosen)
        assert metric(at, "Precision") == f"{op.precision:.3f}"
        assert metric(at, "Recall") == f"{op.recall:.3f}"
        assert metric(at, "Alerts") == f"{int((frame['score'] >= chosen).sum()):,}"


def test_a_published_policy_is_used_by_other_pages(demo_store_copy: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("thresholds", demo_store_copy, monkeypatch)
    assert any("Alert policy in force: version 0" in m.value for m in at.markdown)
    slider = at.slider(key="thr_value")
    at.slider(key="thr_value").set_value(slider.min).run()
    at.sidebar.text_input(key="analyst").input("adam").run()  # sign-in off: a name to act
    at.text_input(key="thr_note").input("flag everything").run()
    at.button(key="thr_publish").click().run()
    assert not at.exception and any("Published version 1" in s.value for s in at.success)
    # The page is drawn again after publishing: the box at the top shows the new version.
    assert any("Alert policy in force: version 1" in m.value for m in at.markdown)
    at.toggle(key="thr_history_on").set_value(True).run()
    history = next(d.value for d in at.dataframe if "published by" in d.value.columns)
    assert history["version"].tolist() == [1] and history["published by"].tolist() == ["adam"]
    with Store.open(demo_store_copy, read_only=True) as store:
        latest = store.policies.latest()
    assert latest.version == 1 and latest.note == "flag everything"
    overview = open_page("overview", demo_store_copy, monkeypatch)
    assert metric(overview, "Flag rate") == "100.00%"


def test_tuned_values_are_kept_per_detector_and_segment(demo_store_copy: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("thresholds", demo_store_copy, monkeypatch)
    low = at.slider(key="thr_value").min
    at.slider(key="thr_value").set_value(low).run()
    at.selectbox(key="thr_segment").set_value("tenure:new").run()
    assert at.slider(key="thr_value").value != low
    at.selectbox(key="thr_segment").set_value("all").run()
    assert at.slider(key="thr_value").value == pytest.approx(low)
    assert not at.exception


def test_one_label_class_still_gives_precision_and_recall(demo_store_copy: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With analysts' labels only and a single fraud decision (one class), the confusion
    matrix counted nothing: recall '–' beside a 100% recall per scenario."""
    from core import cases

    with Store.open(demo_store_copy) as store:
        session_id = store.sessions.meta()["session_id"].iloc[0]
        case = cases.open_case(store, analyst="ana", session_id=session_id)
        cases.decide_case(store, case.case_id, "fraud_confirmed", analyst="ana",
                          scenario="card_testing")
    at = open_page("thresholds", demo_store_copy, monkeypatch)
    at.sidebar.radio(key="label_choice").set_value("analysts").run()
    slider = at.slider(key="thr_value")
    at.slider(key="thr_value").set_value(slider.min).run()
    assert not at.exception
    assert (metric(at, "Precision"), metric(at, "Recall")) == ("1.000", "1.000")
    at.slider(key="thr_value").set_value(slider.max).run()
    assert (metric(at, "Precision"), metric(at, "Recall")) == ("–", "0.000")


def test_capacity_suggestion_moves_the_slider(demo_store: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("thresholds", demo_store, monkeypatch)
    at.number_input(key="thr_capacity").set_value(5).run()
    at.button(key="thr_use_cap").click().run()
    assert not at.exception
    per_day = float(metric(at, "Alerts a day").replace(",", ""))
    assert per_day <= 5


def test_queue_filters_and_user_deep_link(demo_store: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("queue", demo_store, monkeypatch)
    at.number_input(key="q_agree").set_value(1).run()
    at.multiselect(key="q_sla").set_value(["ok", "due", "overdue"]).run()
    at.selectbox(key="q_sort").set_value("agreement").run()
    assert not at.exception
    shown = next(d.value for d in at.dataframe if "agree" in d.value.columns)
    assert all(int(a.split("/")[0]) >= 1 for a in shown["agree"])
    with Store.open(demo_store, read_only=True) as store:
        user_id = store.sessions.meta()["user_id"].iloc[0]
    user = open_page("user", demo_store, monkeypatch, query={"user": user_id})
    assert any(m.label == "Sessions" for m in user.metric)
    assert not user.warning


def test_the_policy_flags_drive_the_overview(demo_store: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """One definition of flagged: the Overview counts what the policy in force flags."""
    from core.app import policy as policies

    with Store.open(demo_store, read_only=True) as store:
        found = policies.in_force(store)
        flagged = int(policies.risk_table(store, found)["flagged"].sum())
    at = open_page("overview", demo_store, monkeypatch)
    assert not at.exception
    assert metric(at, "Flagged sessions") == f"{flagged:,}"
    assert any(f"Alert policy v{found.version}" in c.value for c in at.caption)
