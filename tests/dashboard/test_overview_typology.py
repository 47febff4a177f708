"""AppTest of the typology line, the similar past cases and the Overview's typology section."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.core.explain._similar_store import build

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("overview-typology") / "s.duckdb")


def _widgets(session_id: str) -> None:
    from dashboard import widgets_similar

    widgets_similar.draw_typology(session_id)
    widgets_similar.draw_similar_cases(session_id)


def widgets_page(db: Path, monkeypatch: pytest.MonkeyPatch, session_id: str) -> AppTest:
    import streamlit as st

    from dashboard import state

    # no registered pages here: record where a link would go instead of switching
    monkeypatch.setattr(state, "to_explain",
                        lambda sid: st.session_state.__setitem__("went", ("explain", sid)))
    monkeypatch.setattr(state, "to_case",
                        lambda cid: st.session_state.__setitem__("went", ("case", cid)))
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_function(_widgets, args=(session_id,), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_widgets_show_the_guess_and_the_similar_decided_sessions(
        tiny_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = widgets_page(tiny_db, monkeypatch, "ct-5")
    assert at.text[0].value.startswith("Typology: Looks like card testing (confidence ")
    table = at.dataframe[0].value
    assert set(table["session_id"].iloc[:2]) == {"ct-0", "ct-1"}
    assert {"decision", "case", "similarity", "typology"} <= set(table.columns)
    assert at.button(key="similar_explain").disabled  # nothing picked yet
    at.session_state["similar_table"] = {
        "selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.button(key="similar_explain").disabled
    assert not at.button(key="similar_case").disabled  # the picked session has a case
    assert not at.error
    at.button(key="similar_explain").click().run()
    assert at.session_state["went"] == ("explain", table["session_id"].iloc[0])
    at.button(key="similar_case").click().run()
    assert at.session_state["went"] == ("case", "C-00001")


def test_widgets_say_no_close_match_and_refuse_unknown_sessions(
        tiny_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = widgets_page(tiny_db, monkeypatch, "n-4")
    assert at.text[0].value.startswith("Typology: No close match")
    at = widgets_page(tiny_db, monkeypatch, "<b>nope</b>")
    assert any("session must be a stored session id" in e.value for e in at.error)
    assert not at.text  # nothing drawn as markup, no guess


def test_widgets_without_decisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = build(tmp_path / "undecided.duckdb", decide=False)
    at = widgets_page(db, monkeypatch, "ct-5")
    assert any("No decided sessions yet" in c.value for c in at.caption)
    assert not at.dataframe and not at.error


def test_the_overview_breaks_the_queue_and_the_decisions_down_by_typology(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.cases.lifecycle import decide_case, open_case
    from core.store import Store

    with Store.open(demo_store_copy) as store:
        labels = store.labels.session_labels(("ground_truth",))
        anomalous = labels[labels["is_anomaly"].astype(bool)]
        sid = str(anomalous["session_id"].iloc[0])
        case = open_case(store, analyst="ana", session_id=sid)
        decide_case(store, case.case_id, "fraud_confirmed", analyst="ana",
                    scenario=str(anomalous["scenario"].iloc[0]))
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/overview.py").run()
    assert not at.exception, [e.value for e in at.exception]
    events = next(c.value for c in at.caption if c.value.startswith("Events "))
    assert not events.endswith('""')  # an empty unit note is not drawn as an empty value
    decided = next(d.value for d in at.dataframe if "decision" in d.value.columns)
    assert decided["decision"].tolist() == ["fraud_confirmed"] and decided["cases"].sum() == 1
    at.toggle(key="overview_typology_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    queue = next(d.value for d in at.dataframe if "mean confidence" in d.value.columns)
    assert 0 < queue["sessions"].sum() <= 500 and not at.error
