"""AppTest of the work queue: it renders the policy's flags, the status filter, multi-select
actions, and a bulk decision that needs a note and a confirmation."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import cases
from core.app import policy
from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def open_queue(db: Path, monkeypatch: pytest.MonkeyPatch, name: str = "ana") -> AppTest:
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    if name:
        at.sidebar.text_input(key="analyst").input(name).run()
    at.switch_page("views/queue.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest):
    return next(d.value for d in at.dataframe if "risk" in d.value.columns)


def select(at: AppTest, rows: list[int]) -> None:
    at.session_state["q_table"] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_page_lists_the_policys_flags_riskiest_first(demo_store: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    at = open_queue(demo_store, monkeypatch)
    shown = table(at)
    with Store.open(demo_store, read_only=True) as store:
        found = policy.in_force(store)
        assert found is not None
        flagged = set(policy.risk_table(store, found).query("flagged")["session_id"])
    assert set(shown["session_id"]) == flagged
    assert list(shown.columns[:5]) == ["risk", "status", "age", "sla", "agree"]
    assert shown["risk"].is_monotonic_decreasing
    assert {"truth: label", "truth: scenario"} <= set(shown.columns)  # the demo has truth
    assert "scenario" not in shown.columns and "flagged_by" not in shown.columns
    assert any("training percentile" in c.value or "calibrated probability" in c.value
               for c in at.caption)


def test_the_status_filter_shows_decided_sessions_on_demand(demo_store_copy: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    at = open_queue(demo_store_copy, monkeypatch)
    first = table(at)["session_id"].iloc[0]
    with Store.open(demo_store_copy) as store:
        case = cases.open_case(store, analyst="ana", session_id=first)
        cases.decide_cases(store, [case.case_id], "false_positive", analyst="ana", note="ok")
    at.run()
    assert first not in table(at)["session_id"].tolist()  # decided: hidden by default
    at.multiselect(key="q_status").set_value(["decided"]).run()
    shown = table(at)
    assert shown["session_id"].tolist() == [first] and shown["status"].tolist() == ["decided"]


def test_bulk_decide_needs_a_note_and_a_confirmation(demo_store_copy: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_queue(demo_store_copy, monkeypatch)
    before = table(at)
    picked = before["session_id"].iloc[:2].tolist()
    select(at, [0, 1])
    assert at.button(key="q_bulk_decide").disabled  # no note, no tick
    at.text_input(key="q_bulk_note").input("known test accounts").run()
    assert at.button(key="q_bulk_decide").disabled  # no tick yet
    at.checkbox(key="q_bulk_confirm").check().run()
    at.selectbox(key="q_bulk_decision").set_value("false_positive").run()
    button = at.button(key="q_bulk_decide")
    assert not button.disabled and button.label == "Decide 2 sessions"
    button.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Decided 2 sessions" in s.value for s in at.success)
    assert not set(picked) & set(table(at)["session_id"])
    with Store.open(demo_store_copy, read_only=True) as store:
        labels = store.labels.session_labels(["analyst"]).set_index("session_id")
        trail = cases.recent_audit(store, 20)
    assert not labels.loc[picked, "is_anomaly"].any()
    assert (trail["action"] == "decide").sum() >= 1


def test_actions_wait_for_a_name_and_a_selection(demo_store: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_queue(demo_store, monkeypatch, name="")
    assert at.button(key="q_open_cases").disabled and at.button(key="q_open_user").disabled
    select(at, [0])
    assert not at.button(key="q_open_user").disabled
    assert at.button(key="q_open_cases").disabled  # no name: cases record who acts
    assert any("cannot" in c.value for c in at.caption)  # no saved views without a name


def test_open_cases_from_a_selection_then_the_saved_views(demo_store_copy: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    at = open_queue(demo_store_copy, monkeypatch)
    session_id = table(at)["session_id"].iloc[0]
    select(at, [0])
    at.button(key="q_open_cases").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="cs_case").value == "C-00001"  # one user: the Cases page shows it
    with Store.open(demo_store_copy, read_only=True) as store:
        assert cases.get_case(store, "C-00001").session_ids == (session_id,)
    at.switch_page("views/queue.py").run()
    at.multiselect(key="q_status").set_value(["in case"]).run()
    assert table(at)["session_id"].tolist() == [session_id]
    at.text_input(key="q_view_name").input("mine in cases").run()
    at.button(key="q_view_save").click().run()
    at.multiselect(key="q_status").set_value(["new"]).run()
    at.selectbox(key="q_view_pick").set_value("mine in cases").run()
    at.button(key="q_view_apply").click().run()
    assert at.multiselect(key="q_status").value == ["in case"]
    at.button(key="q_view_delete").click().run()
    assert at.selectbox(key="q_view_pick").options == []


def test_a_shared_link_opens_its_view_and_a_change_is_written_back(
        demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.query_params["q_status"] = ["new", "decided"]
    at.query_params["q_sort"] = "oldest"
    at.switch_page("views/queue.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="q_status").value == ["new", "decided"]
    assert at.selectbox(key="q_sort").value == "oldest"
    at.selectbox(key="q_sort").set_value("amount").run()
    assert at.query_params["q_sort"] in ("amount", ["amount"])
    assert set(at.query_params["q_status"]) == {"decided", "new"}
