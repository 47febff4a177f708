"""AppTest of the Entity page: a shared device, an unknown value, a bad kind, a case opened on
the entity, and the links to it from the User page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _entity_store import SHARED, SHARED_USERS, build
from streamlit.testing.v1 import AppTest

from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("entity_page") / "tiny.duckdb")


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
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_renders_a_shared_device(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("entity", tiny, monkeypatch, query={"kind": "device_id", "value": SHARED})
    assert not at.error and not at.warning, [w.value for w in at.warning]
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Sessions"], metrics["Users"], metrics["Events"]) == ("12", "6", "36")
    assert sorted(frame(at, "latest_decision")["user_id"]) == SHARED_USERS
    assert len(at.get("plotly_chart")) == 2
    assert any("No closed case" in c.value for c in at.caption)
    assert at.selectbox(key="entity_kind").value == "device_id"
    assert at.text_input(key="entity_value").value == SHARED


@pytest.mark.parametrize("query, message", [
    ({"kind": "device_id", "value": "no-such-device"}, "No event has"),
    ({"kind": "user_id", "value": "u01"}, "is not an entity kind"),
    ({"kind": "[x](http://evil.example)", "value": "v"}, "is not an entity kind"),
])
def test_unknown_value_or_bad_kind_says_so(tiny: Path, monkeypatch: pytest.MonkeyPatch,
                                           query: dict[str, str], message: str) -> None:
    at = open_page("entity", tiny, monkeypatch, query=query)
    assert any(message in w.value for w in at.warning), [w.value for w in at.warning]
    assert all("](http" not in w.value or "`" in w.value for w in at.warning)  # literal
    assert not at.dataframe


def test_no_value_asks_for_one(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("entity", tiny, monkeypatch)
    assert any("type a value" in i.value for i in at.info)


def test_open_a_case_on_the_entity(tiny: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(tiny, db)
    at = open_page("entity", db, monkeypatch, query={"kind": "device_id", "value": SHARED})
    at.button(key="entity_open_case").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Store.open(db, read_only=True) as store:
        listed = store.cases.by_status(["open"])
        trail = store.audit.of_case(listed["case_id"].iloc[0])
    assert (listed["entity_kind"].tolist(), listed["entity_value"].tolist()) == (
        ["device_id"], [SHARED])
    assert trail["action"].tolist() == ["open"] and trail["actor"].tolist() == ["ana"]
    at.switch_page("views/cases.py").run()
    assert any("Opened on the entity" in c.value for c in at.caption)


def test_without_a_name_the_case_button_is_off(tiny: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("entity", tiny, monkeypatch, name="",
                   query={"kind": "device_id", "value": SHARED})
    assert at.button(key="entity_open_case").disabled


def test_user_page_links_to_its_entities(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("user", tiny, monkeypatch, query={"user": SHARED_USERS[0]})
    links = at.get("page_link")
    assert links, "the User page draws links to the user's entities"
    assert any(SHARED in str(link.proto) for link in links)


def test_queue_opens_the_entity_of_a_selected_session(tiny: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("queue", tiny, monkeypatch)
    assert at.dataframe, "the tiny store's policy flags sessions (the queue has rows)"
    at.session_state["q_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    picked = at.selectbox(key="q_entity_pick").value
    assert picked is not None and picked[0] == "device_id"
    at.button(key="q_open_entity").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="entity_kind").value == "device_id"
    assert at.text_input(key="entity_value").value == picked[1]


def test_explain_links_the_device_of_a_device_feature(tiny: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import services_entity

    assert services_entity.kinds_of_features(
        ["hour_sin", "device_other_users_log", "n_ips_log", "ip_other_users_log"]) == [
        "device_id", "ip"]
    assert services_entity.kinds_of_features(["shipping_days", "hour_sin"]) == []
    at = open_page("explain", tiny, monkeypatch,
                   query={"session": f"{SHARED_USERS[0]}-s3"})
    assert not at.error, [e.value for e in at.error]
    top = frame(at, "feature") if any("feature" in d.value.columns for d in at.dataframe) else None
    links = at.get("page_link")
    if any("Top features concern" in c.value for c in at.caption):
        assert any(SHARED in str(link.proto) for link in links)
    else:
        assert top is None or not services_entity.kinds_of_features(top["feature"].head(5))
