"""AppTest of the Cases page and the case actions on the queue and user pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import cases
from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(page: str, db: Path, monkeypatch: pytest.MonkeyPatch, *, name: str = "ana",
              query: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_file(APP, default_timeout=90)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if name:
        at.sidebar.text_input(key="analyst").input(name).run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def frame(at: AppTest, column: str):
    """The first dataframe on the page with ``column`` (AppTest does not expose their keys)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def select_first_row(at: AppTest) -> None:
    """Tick the work queue's first row (AppTest takes a selection through session state)."""
    at.session_state["q_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()


def test_page_renders_and_asks_for_a_name(demo_store_copy: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("cases", demo_store_copy, monkeypatch, name="")
    assert any("Type your name in the sidebar" in i.value for i in at.info)
    assert at.button(key="cs_open").disabled and at.button(key="cs_next").disabled
    assert [m.label for m in at.metric][:3] == ["Open", "Investigating", "Closed"]
    assert any(m.label == "Analyst labels" and m.value == "0" for m in at.metric)


def open_first_users_case(db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The Cases page with a case opened through its widgets for the store's first user."""
    with Store.open(db, read_only=True) as store:
        user_id = store.sessions.meta()["user_id"].iloc[0]
    at = open_page("cases", db, monkeypatch)
    at.text_input(key="cs_open_user").input(user_id).run()
    at.button(key="cs_open").click().run()
    return at


def test_open_and_decide_a_case_through_the_widgets(demo_store_copy: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_first_users_case(demo_store_copy, monkeypatch)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="cs_case").value == "C-00001"
    assert frame(at, "flagged")["session_id"].tolist()
    at.button(key="cs_claim").click().run()
    at.radio(key="cs_decision").set_value("fraud_confirmed").run()
    at.text_input(key="cs_scenario").input("account_takeover").run()
    at.text_area(key="cs_decide_note").input("new device, new country, password change").run()
    at.button(key="cs_decide").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("closed" in m.value and "fraud_confirmed" in m.value for m in at.markdown)
    audit = frame(at, "action")
    assert audit["action"].tolist() == ["open", "claim", "note", "decide"]
    assert set(audit["actor"]) == {"ana"}
    assert next(m.value for m in at.metric if m.label == "Analyst labels") != "0"
    with Store.open(demo_store_copy, read_only=True) as store:
        case = cases.get_case(store, "C-00001")
        labels = store.cases.analyst_labels("C-00001")
    assert (case.status, case.decision, case.scenario) == ("closed", "fraud_confirmed",
                                                           "account_takeover")
    assert sorted(labels["session_id"]) == sorted(case.session_ids)
    at.checkbox(key="cs_mask").check().run()
    at.radio(key="cs_fmt").set_value("pdf").run()
    at.button(key="cs_prepare").click().run()
    assert not at.exception and not at.error
    assert at.get("download_button")
    assert frame(at, "action")["action"].tolist()[-1] == "export"
    with Store.open(demo_store_copy, read_only=True) as store:
        last = cases.audit_trail(store, "C-00001").iloc[-1]
    assert (last["action"], last["detail"]["format"], last["detail"]["masked"]) == (
        "export", "pdf", True)


def test_bulk_decision_and_next_case(demo_store_copy: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(demo_store_copy) as store:
        users = store.sessions.meta()["user_id"].drop_duplicates().head(3).tolist()
        ids = [cases.open_case(store, analyst="ana", user_id=u).case_id for u in users]
    at = open_page("cases", demo_store_copy, monkeypatch, name="bob")
    at.button(key="cs_next").click().run()
    assert at.selectbox(key="cs_case").value == ids[0]
    at.multiselect(key="cs_bulk_ids").set_value(ids[1:]).run()
    at.selectbox(key="cs_bulk_decision").set_value("false_positive").run()
    at.button(key="cs_bulk").click().run()
    assert not at.exception and any("Decided 2 cases" in t.value for t in at.toast)
    with Store.open(demo_store_copy, read_only=True) as store:
        frame = cases.list_cases(store).set_index("case_id")
    assert frame.loc[ids[0], "assignee"] == "bob"
    assert frame.loc[ids[1:], "decision"].tolist() == ["false_positive"] * 2


def test_snoozed_user_leaves_the_flagged_queue(demo_store_copy: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("queue", demo_store_copy, monkeypatch)
    before = frame(at, "risk")  # the work queue: snoozed sessions are hidden by default
    user_id = str(before["user_id"].iloc[0])
    at.switch_page("views/cases.py").run()
    at.selectbox(key="cs_snooze_kind").set_value("user").run()
    at.text_input(key="cs_snooze_value").input(user_id).run()
    at.text_input(key="cs_snooze_reason").input("internal QA account").run()
    at.button(key="cs_snooze").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert user_id in frame(at, "suppression_id")["value"].tolist()
    at.switch_page("views/queue.py").run()
    after = frame(at, "risk")
    assert user_id not in after["user_id"].tolist()
    assert len(after) == len(before) - int((before["user_id"] == user_id).sum())
    at.switch_page("views/cases.py").run()
    at.button(key="cs_lift").click().run()
    at.switch_page("views/queue.py").run()
    assert user_id in frame(at, "risk")["user_id"].tolist()


def test_queue_and_user_pages_open_cases(demo_store_copy: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("queue", demo_store_copy, monkeypatch)
    session_id = frame(at, "risk")["session_id"].iloc[0]
    select_first_row(at)
    at.button(key="q_open_cases").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="cs_case").value == "C-00001"
    with Store.open(demo_store_copy, read_only=True) as store:
        case = cases.get_case(store, "C-00001")
        other = store.sessions.meta()
    assert case.session_ids == (session_id,)
    other_user = other[other["user_id"] != case.user_id]["user_id"].iloc[0]
    user_page = open_page("user", demo_store_copy, monkeypatch, query={"user": other_user})
    user_page.button(key="user_open_case").click().run()
    assert not user_page.exception and not user_page.error
    assert user_page.selectbox(key="cs_case").value == "C-00002"


def test_page_explains_a_missing_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("cases", tmp_path / "none.duckdb", monkeypatch)
    assert any("anomalyst demo" in i.value for i in at.info)


def test_open_case_waits_for_a_name(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("queue", demo_store, monkeypatch, name="")
    select_first_row(at)
    button = at.button(key="q_open_cases")
    assert button.disabled and "your name" in button.help


def test_the_name_survives_a_page_switch(demo_store_copy: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A page switch made by the script (st.switch_page) drops widget values that are not
    kept for the session: the Cases page opened from the queue asked for a name again and
    disabled Claim until the analyst clicked anything."""
    at = open_page("queue", demo_store_copy, monkeypatch)
    at.sidebar.radio(key="label_choice").set_value("analysts").run()
    select_first_row(at)
    at.button(key="q_open_cases").click().run()
    assert at.selectbox(key="cs_case").value == "C-00001"
    assert not any("Set your name" in w.value for w in at.warning)
    assert not at.button(key="cs_claim").disabled
    assert at.sidebar.text_input(key="analyst").value == "ana"
    assert at.sidebar.radio(key="label_choice").value == "analysts"


def test_an_added_note_leaves_the_box_empty(demo_store_copy: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The note stayed in the box after "Add note": a second click added it twice."""
    at = open_first_users_case(demo_store_copy, monkeypatch)
    at.text_area(key="cs_note").input("called the card issuer").run()
    at.button(key="cs_add_note").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.text_area(key="cs_note").value == ""
    assert [t.value for t in at.text if "called the card issuer" in t.value]
    assert frame(at, "action")["action"].tolist() == ["open", "note"]


def test_a_decision_shows_on_the_thresholds_page(demo_store_copy: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes dropped the cached reads but not the Thresholds page's prepared view (a cached
    resource): a case decided in the dashboard did not reach precision and recall until the
    server restarted."""
    def analysts_caption() -> str:
        page = open_page("thresholds", demo_store_copy, monkeypatch)
        page.sidebar.radio(key="label_choice").set_value("analysts").run()
        return next(c.value for c in page.caption if "labelled sessions" in c.value)

    assert ": 0 labelled sessions" in analysts_caption()
    at = open_first_users_case(demo_store_copy, monkeypatch)
    at.radio(key="cs_decision").set_value("fraud_confirmed").run()
    at.button(key="cs_decide").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert ": 0 labelled sessions" not in analysts_caption()


def test_a_name_set_once_serves_every_case_action(demo_store_copy: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The name typed once in the sidebar: the User page's "Open case" lands on the Cases
    page with every action enabled (it said "Set your name" beside the name), and the
    decision reaches the Thresholds page in the same session, without a restart."""
    with Store.open(demo_store_copy, read_only=True) as store:
        user_id = store.sessions.meta()["user_id"].iloc[0]
    at = open_page("user", demo_store_copy, monkeypatch, query={"user": user_id})
    at.button(key="user_open_case").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="cs_case").value == "C-00001"
    # the app's link kept the name: /cases?case=C-00001&analyst=ana
    assert dict(at.query_params) == {"case": "C-00001", "analyst": "ana"}
    at.switch_page("views/cases.py").run()  # AppTest reruns the page it was told, not the app's
    assert not any("Type your name" in i.value for i in at.info)
    for key in ("cs_next", "cs_claim", "cs_add_note", "cs_prepare", "cs_snooze"):
        assert not at.button(key=key).disabled, key
    at.button(key="cs_claim").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert not at.button(key="cs_decide").disabled
    at.radio(key="cs_decision").set_value("fraud_confirmed").run()
    at.button(key="cs_decide").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(m.label == "Analyst labels" and m.value != "0" for m in at.metric)
    at.switch_page("views/thresholds.py").run()
    at.sidebar.radio(key="label_choice").set_value("analysts").run()
    caption = next(c.value for c in at.caption if "labelled sessions" in c.value)
    assert ": 0 labelled sessions" not in caption


def test_without_a_name_every_action_says_why(demo_store_copy: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("cases", demo_store_copy, monkeypatch, name="")
    for key in ("cs_open", "cs_next"):
        button = at.button(key=key)
        assert button.disabled and "Type your name" in (button.help or ""), key
