"""core.app.entities: the entity view the page draws, and a case opened on an entity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.app import entities
from core.errors import ConfigError
from core.store import Store
from tests.dashboard._entity_store import SHARED, SHARED_USERS, build


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("entities") / "tiny.duckdb")


@pytest.fixture()
def tiny_copy(tiny: Path, tmp_path: Path) -> Path:
    target = tmp_path / "tiny.duckdb"
    shutil.copy(tiny, target)
    return target


def test_view_of_a_shared_device(tiny: Path) -> None:
    with Store.open(tiny, read_only=True) as store:
        view = entities.entity_view(store, "device_id", SHARED)
        policy = store.policies.latest()
        models = store.models.listing()
    assert view.found and (view.kind, view.value) == ("device_id", SHARED)
    assert (view.summary.n_users, view.summary.n_sessions, view.summary.n_events) == (6, 12, 36)
    assert sorted(view.users["user_id"]) == SHARED_USERS and not view.users_cut
    assert view.users["n_sessions"].tolist() == [2] * 6
    assert view.volume["sessions"].sum() == 12 and view.volume["day"].is_monotonic_increasing
    assert view.risk_model is not None
    assert policy is None and view.risk_model in set(models["model_id"])  # version 0's model
    assert view.risk["n_scored"].sum() == 12
    risk = view.risk["max_risk"].to_numpy(np.float64)
    assert np.isfinite(risk).all() and ((risk >= 0) & (risk <= 100)).all()
    assert (view.risk["max_score"] >= view.risk["mean_score"]).all()
    assert view.cases.empty and not view.cases_cut


def test_unknown_value_and_bad_kind(tiny: Path) -> None:
    with Store.open(tiny, read_only=True) as store:
        missing = entities.entity_view(store, "device_id", "no-such-device")
        assert not missing.found and missing.users.empty and missing.volume.empty
        assert missing.risk_model is None
        for kind in ("user_id", "device_id OR 1=1", "merchant"):
            with pytest.raises(ConfigError, match="entity kind must be"):
                entities.entity_view(store, kind, SHARED)
        assert "device_id" in entities.entity_kinds(store)


def test_users_are_bounded(tiny: Path) -> None:
    with Store.open(tiny, read_only=True) as store:
        view = entities.entity_view(store, "country", "DE", max_users=5)
    assert view.summary.n_users == 40 and len(view.users) == 5 and view.users_cut


def test_entities_of_a_user_and_a_session(tiny: Path) -> None:
    with Store.open(tiny, read_only=True) as store:
        mine = entities.user_entities(store, SHARED_USERS[0])
        one = entities.session_entities(store, f"{SHARED_USERS[0]}-s3")
    assert (mine["kind"] == "device_id").sum() == 2
    assert ("device_id", SHARED) in set(zip(one["kind"], one["value"], strict=True))


def test_case_on_an_entity_is_audited_and_decided_cases_follow(tiny_copy: Path) -> None:
    from core.cases import decide_case, open_case

    with Store.open(tiny_copy) as store:
        case = entities.open_entity_case(store, analyst="ana", kind="device_id", value=SHARED)
        assert (case.entity_kind, case.entity_value) == ("device_id", SHARED)
        assert case.user_id in SHARED_USERS and case.status == "open"
        assert len(case.session_ids) == 12
        assert {s.split("-")[0] for s in case.session_ids} == set(SHARED_USERS)
        trail = store.audit.of_case(case.case_id)
        assert trail["action"].tolist() == ["open"]
        assert trail["entity"].iloc[0] == f"device_id={SHARED}"
        assert trail["detail"].iloc[0]["from"] == "entity"
        again = entities.open_entity_case(store, analyst="bo", kind="device_id", value=SHARED)
        assert again.case_id == case.case_id  # an active case on the entity is reused
        # the top user's own case is a separate, user case
        own = open_case(store, analyst="ana", user_id=case.user_id)
        assert own.case_id != case.case_id and own.entity_kind is None
        decide_case(store, case.case_id, "fraud_confirmed", analyst="ana", scenario="ring")
        view = entities.entity_view(store, "device_id", SHARED)
        assert view.cases["case_id"].tolist() == [case.case_id]
        assert view.cases["entity_value"].iloc[0] == SHARED
        decided = view.users.set_index("user_id")["latest_decision"]
        assert decided[case.user_id] == "fraud_confirmed"
        listed = store.cases.by_status(["closed"])
        assert listed["entity_kind"].tolist() == ["device_id"]
        with pytest.raises(ConfigError, match="must occur"):
            entities.open_entity_case(store, analyst="ana", kind="device_id", value="nope")
        with pytest.raises(ConfigError, match="entity kind must be"):
            entities.open_entity_case(store, analyst="ana", kind="user_id", value="u01")
        with pytest.raises(ConfigError, match="analyst name"):
            entities.open_entity_case(store, analyst="", kind="device_id", value=SHARED)


def test_masked_report_of_an_entity_case_hides_the_device(tiny_copy: Path) -> None:
    from core.reports.content import gather_case_report

    with Store.open(tiny_copy) as store:
        case = entities.open_entity_case(store, analyst="ana", kind="device_id", value=SHARED)
        plain = gather_case_report(store, case.case_id, actor="ana", explain=False)
        masked = gather_case_report(store, case.case_id, actor="ana", mask=True, explain=False)
    assert plain.content["case"]["entity_value"] == SHARED
    assert masked.content["case"]["entity_value"].startswith("device-")
    assert SHARED not in str(masked.content["case"])


def test_the_report_of_an_entity_case_says_what_it_was_opened_on(tiny_copy: Path) -> None:
    from core.reports.content import gather_case_report
    from core.reports.html_report import render_html

    with Store.open(tiny_copy) as store:
        case = entities.open_entity_case(store, analyst="ana", kind="device_id", value=SHARED)
        report = gather_case_report(store, case.case_id, actor="ana", explain=False)
        masked = gather_case_report(store, case.case_id, actor="ana", mask=True, explain=False)
    html = render_html(report)
    assert f"device_id {SHARED}" in html and "Opened on" in html
    assert SHARED not in render_html(masked)  # the title and the summary use the masked value
