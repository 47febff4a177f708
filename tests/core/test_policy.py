"""core.policy: the alert policy object (the store side is tested in tests/core/store)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.policy import AlertPolicy, check_draft


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "score:m": [0.1, 0.6, 0.7, 0.8, np.nan, 0.95],
        "tenure": ["new", "new", "returning", "returning", "new", "returning"],
        "country": ["DE", "FR", "DE", "FR", "DE", "DE"],
        "start_ts": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-01", "2026-01-02",
                                    "2026-01-02", "2026-01-02"]),
    })


def test_segments_apply_most_specific_first_and_the_default_fills_in() -> None:
    policy = AlertPolicy(1, "m", {"tenure:new": 0.5, "country:DE": 0.9}, default=0.75)
    # 0.1 new/DE: DE 0.9 -> no; 0.6 new/FR: new 0.5 -> yes; 0.7 ret/DE: 0.9 -> no;
    # 0.8 ret/FR: default 0.75 -> yes; NaN never; 0.95 ret/DE: 0.9 -> yes
    assert policy.flags(_table()).tolist() == [False, True, False, True, False, True]
    assert policy.threshold_for("tenure:returning") == 0.75


def test_the_daily_budget_keeps_the_highest_per_day() -> None:
    policy = AlertPolicy(1, "m", {"all": 0.0}, daily_budget=1)
    assert policy.flags(_table()).tolist() == [False, False, True, False, False, True]


def test_a_policy_on_a_model_without_scores_flags_nothing() -> None:
    assert not AlertPolicy(0, "other").flags(_table()).any()


def test_the_default_policy_is_version_zero_and_serialises() -> None:
    policy = AlertPolicy(0, "m")
    assert policy.is_default and math.isinf(policy.default)
    assert policy.to_dict()["default_threshold"] is None


@pytest.mark.parametrize("thresholds, budget, note, message", [
    ({"region:EU": 1.0}, None, "", "segment must be"),
    ({"all": float("nan")}, None, "", "finite number"),
    ({"all": 1.0}, 0, "", "daily budget"),
    ({"all": 1.0}, 2.5, "", "daily budget"),
    ({"all": 1.0}, None, "x" * 3000, "keep it under"),
])
def test_bad_drafts_are_refused_with_a_reason(thresholds: dict, budget: object, note: str,
                                              message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_draft("m", thresholds, budget, note)  # type: ignore[arg-type]


def test_a_good_draft_comes_back_clean() -> None:
    assert check_draft("m", {"all": "0.5"}, 20, "  tuned  ") == ({"all": 0.5}, 20, "tuned")


# --- the policy in force, on the small demo store ---------------------------------------------
@pytest.fixture()
def store(demo_store_copy):  # noqa: ANN001, ANN201
    from core.store import Store

    with Store.open(demo_store_copy) as opened:
        yield opened


def test_before_any_publish_the_default_policy_uses_the_newest_scored_model(store) -> None:  # noqa: ANN001
    from core.pipeline.operating_point import operating_point
    from core.policy import policy_in_force

    policy = policy_in_force(store)
    newest = store.models.scored().iloc[-1]
    assert policy is not None and policy.version == 0
    assert policy.model_id == newest["model_id"]
    assert policy.default == operating_point(store, policy.model_id).threshold
    store.thresholds.save(policy.model_id, "country:DE", 1.5, set_by="ana",
                          set_at=dt.datetime(2026, 12, 5))
    assert policy_in_force(store).thresholds == {"country:DE": 1.5}


def test_publishing_appends_a_version_and_audits_it(store) -> None:  # noqa: ANN001
    from core.policy import policy_in_force, publish_policy

    model = str(store.models.scored().iloc[0]["model_id"])
    first = publish_policy(store, analyst="ana", model_id=model, thresholds={"all": 2.0},
                           daily_budget=5, note="first cut")
    second = publish_policy(store, analyst="bo", model_id=model, thresholds={"all": 3.0})
    assert (first.version, second.version) == (1, 2)
    now = policy_in_force(store)
    assert now.version == 2 and now.threshold_for("all") == 3.0 and now.daily_budget is None
    audit = store.audit.recent(10)
    published = audit[audit["action"] == "publish_policy"]
    assert sorted(published["entity"]) == ["policy:1", "policy:2"]
    assert [p.published_by for p in store.policies.history()] == ["bo", "ana"]


def test_a_policy_needs_a_scored_registered_model(store) -> None:  # noqa: ANN001
    from core.policy import publish_policy

    with pytest.raises(ConfigError, match="registered models"):
        publish_policy(store, analyst="ana", model_id="nope", thresholds={})
    assert store.policies.latest() is None


def test_risk_is_a_training_percentile_without_labels_and_flags_follow_the_policy(
        store) -> None:  # noqa: ANN001
    from core.app import policy as app_policy
    from core.lookups import score_table

    policy = app_policy.in_force(store)
    calibration = app_policy.risk_calibration(store, policy.model_id)
    assert calibration is not None and calibration.kind == "percentile"  # unsupervised demo
    table = app_policy.risk_table(store, policy)
    assert table["risk"].between(0, 100).all()
    full = score_table(store, [policy.model_id])
    assert int(table["flagged"].sum()) == int(policy.flags(full).sum()) > 0
    # risk orders sessions as the score does
    ordered = table.sort_values("score")["risk"].to_numpy()
    assert (np.diff(ordered) >= -1e-9).all()


def test_the_risk_sentence_gives_the_calibration_error_of_a_probability() -> None:
    from core.app.policy import risk_kind_text
    from core.risk import fit_risk

    rng = np.random.default_rng(5)
    valid = rng.normal(size=4000)
    labels = rng.uniform(size=4000) < 1 / (1 + np.exp(-(3 * valid - 4)))
    calibration = fit_risk(valid, labels, np.sort(rng.normal(size=4000)))
    text = risk_kind_text(calibration)
    assert text.startswith("risk = the calibrated probability")
    assert f"expected calibration error {calibration.ece:.3f}" in text and "4,000" in text
    assert "calibration error" not in risk_kind_text(fit_risk(valid, None, np.sort(valid)))
