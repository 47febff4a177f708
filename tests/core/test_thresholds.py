"""Operating thresholds: segment precedence, cost, capacity and daily budgets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.thresholds import (
    InForce,
    alerts_per_day,
    apply_daily_budget,
    cheapest_threshold,
    flag_sessions,
    threshold_for_capacity,
    thresholds_per_session,
)


def test_segment_precedence_country_over_tenure_over_all() -> None:
    tenure = pd.Series(["new", "returning", "new"])
    country = pd.Series(["DE", "DE", "FR"])
    got = thresholds_per_session(tenure, country, {"all": 5, "tenure:new": 3, "country:DE": 1}, 9)
    assert got.tolist() == [1, 1, 3]
    assert thresholds_per_session(tenure, country, {}, 9).tolist() == [9, 9, 9]


def test_the_threshold_in_force_is_one_rule_per_session_and_per_segment() -> None:
    in_force = InForce({"all": 5.0, "tenure:new": 3.0, "country:DE": 1.0}, default=9.0)
    assert in_force.at(tenure="new", country="DE") == 1.0  # country over tenure
    assert in_force.at(tenure="new", country="FR") == 3.0  # tenure over all
    assert in_force.at(tenure="returning", country="FR") == 5.0
    assert [in_force.for_segment(s) for s in ("all", "tenure:new", "country:DE",
                                              "country:FR")] == [5.0, 3.0, 1.0, 5.0]
    assert InForce({}, default=9.0).for_segment("tenure:new") == 9.0
    tenure, country = pd.Series(["new", "returning", "new"]), pd.Series(["DE", "DE", "FR"])
    assert in_force.per_session(tenure, country).tolist() == [
        in_force.at(tenure=t, country=c) for t, c in zip(tenure, country, strict=True)]


def test_saved_thresholds_read_back_by_segment() -> None:
    import datetime as dt

    from core.store import Store

    at = dt.datetime(2026, 1, 1)
    with Store.open(":memory:") as store:
        store.thresholds.save("m", "all", 0.5, set_by="vera", set_at=at)
        store.thresholds.save("m", "tenure:new", 0.7, set_by="vera", set_at=at)
        store.thresholds.delete("m", "all")
        assert store.thresholds.saved("m") == {"tenure:new": 0.7}
        assert store.thresholds.for_model("m")["set_by"].tolist() == ["vera"]


def test_cheapest_threshold_brute_force() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=300).round(1)
    labels = rng.random(300) < 0.1 + 0.3 * (scores > 1)
    choice = cheapest_threshold(scores, labels, cost_miss=50, cost_review=3)
    candidates = np.r_[np.unique(scores), np.inf]
    costs = [((labels & (scores < t)).sum() * 50 + (scores >= t).sum() * 3) for t in candidates]
    assert choice.cost == pytest.approx(min(costs))
    assert ((labels & (scores < choice.threshold)).sum() * 50
            + (scores >= choice.threshold).sum() * 3) == pytest.approx(choice.cost)


def test_cheapest_threshold_rejects_negative_costs() -> None:
    with pytest.raises(ConfigError, match="costs must be >= 0"):
        cheapest_threshold(np.array([1.0]), np.array([True]), cost_miss=-1, cost_review=1)


def test_capacity_keeps_daily_average_under_budget() -> None:
    rng = np.random.default_rng(1)
    days = pd.Series(pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 10, 1000),
                                                                    unit="D"))
    scores = rng.random(1000)
    threshold = threshold_for_capacity(scores, days, per_day=20)
    assert (scores >= threshold).sum() <= 200
    assert (scores >= threshold).sum() >= 195
    with pytest.raises(ConfigError):
        threshold_for_capacity(scores, days, per_day=0)


def test_daily_budget_keeps_top_k_each_day() -> None:
    days = pd.Series(pd.to_datetime(["2026-01-01"] * 4 + ["2026-01-02"] * 2))
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.95, 0.2])
    flagged = scores > 0.15
    kept = apply_daily_budget(scores, flagged, days, top_k=2)
    assert kept.tolist() == [True, True, False, False, True, True]
    assert apply_daily_budget(scores, flagged, days, None).tolist() == flagged.tolist()
    daily = alerts_per_day(days, kept)
    assert daily["alerts"].tolist() == [2, 2]


def test_flag_sessions_uses_saved_and_default() -> None:
    table = pd.DataFrame({"score:m": np.arange(100, dtype=float), "tenure": ["new"] * 100,
                          "country": ["DE"] * 100})
    assert flag_sessions(table, "m", {}, 98.5).sum() == 1  # the model's default threshold
    assert flag_sessions(table, "m", {"all": 90.0}, 98.5).sum() == 10
    assert flag_sessions(table, "m", {"all": 90.0, "country:DE": 50.0}, 98.5).sum() == 50


def test_segment_view_matches_brute_force() -> None:
    from core.thresholds import SegmentView

    rng = np.random.default_rng(3)
    scores = rng.normal(size=500)
    labelled = scores[:300]
    labels = rng.random(300) < 0.2
    scenarios = np.where(rng.random(300) < 0.5, "a", "b")
    days = pd.Series(pd.to_datetime("2026-01-01") + pd.to_timedelta(np.arange(500) % 5, "D"))
    view = SegmentView.build(scores, days, labelled, labels, scenarios)
    for t in (-1.0, 0.0, 0.7):
        assert view.n_alerts(t) == int((scores >= t).sum())
        recall = view.scenario_recall(t).set_index("scenario")["recall"]
        for name in ("a", "b"):
            pos = labels & (scenarios == name)
            assert recall[name] == pytest.approx((labelled[pos] >= t).mean())
        op = view.table.at(t)
        assert op.tp == int((labels & (labelled >= t)).sum())
    assert view.n_days == 5


def test_segment_mask() -> None:
    from core.thresholds import segment_mask

    table = pd.DataFrame({"tenure": ["new", "returning"], "country": ["DE", "FR"]})
    assert segment_mask(table, "all").tolist() == [True, True]
    assert segment_mask(table, "country:FR").tolist() == [False, True]
    with pytest.raises(ConfigError, match="segment must be"):
        segment_mask(table, "colour:red")


def _random_segment(seed: int, n: int = 2_000):
    """Scores with ties and unscored (NaN) sessions, ids, days, and a labelled subset."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=n), 2)  # ties
    scores[rng.random(n) < 0.05] = np.nan
    ids = pd.Series([f"s{i}" for i in range(n)])
    days = pd.Series(pd.to_datetime("2026-01-01") + pd.to_timedelta(np.arange(n) % 7, "D"))
    pick = rng.random(n) < 0.4
    labels = pd.DataFrame({"session_id": ids[pick].to_numpy(),
                           "is_anomaly": rng.random(int(pick.sum())) < 0.15,
                           "scenario": np.where(rng.random(int(pick.sum())) < 0.5, "a", "b")})
    return scores, ids, days, labels


def _same_point(a: object, b: object) -> None:
    import dataclasses

    np.testing.assert_equal(dataclasses.astuple(a), dataclasses.astuple(b))  # NaN == NaN


def _build_from_frames(scores, ids, days, labels) -> object:
    """The reference: SegmentView.build on the labelled sessions that were scored."""
    from core.thresholds import SegmentView

    frame = pd.DataFrame({"session_id": ids, "score": scores}).merge(labels, on="session_id")
    frame = frame[np.isfinite(frame["score"])]
    return SegmentView.build(scores, days, frame["score"].to_numpy(),
                             frame["is_anomaly"].to_numpy(bool),
                             frame["scenario"].to_numpy(object))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_view_from_the_kept_order_equals_one_built_from_scratch(seed: int) -> None:
    from core.thresholds import SegmentOrder, SegmentView

    scores, ids, days, labels = _random_segment(seed)
    order = SegmentOrder.build(scores, ids, days)
    fast = SegmentView.from_order(order, order.no_labels().overlaid(order, labels))
    slow = _build_from_frames(scores, ids, days, labels)
    assert fast.n_days == slow.n_days == 7
    np.testing.assert_array_equal(fast.sorted_scores, slow.sorted_scores)
    assert len(fast.labels) == len(slow.labels) and fast.labels.sum() == slow.labels.sum()
    for t in np.r_[np.nanquantile(scores, [0, 0.1, 0.5, 0.9, 0.99, 1]), 9.0]:
        _same_point(fast.table.at(t), slow.table.at(t))
        pd.testing.assert_frame_equal(fast.scenario_recall(t), slow.scenario_recall(t))


def test_an_analyst_label_overrides_the_ground_truth_without_a_sort() -> None:
    from core.thresholds import SegmentOrder, SegmentView

    scores, ids, days, truth = _random_segment(4)
    order = SegmentOrder.build(scores, ids, days)
    base = order.no_labels().overlaid(order, truth)
    flipped = truth.iloc[:5].assign(is_anomaly=lambda f: ~f["is_anomaly"], scenario="x")
    fresh = ids[~ids.isin(truth["session_id"])].iloc[:3]  # unlabelled until now
    decided = pd.concat([flipped, pd.DataFrame({"session_id": fresh, "is_anomaly": True,
                                                "scenario": "x"})], ignore_index=True)
    fast = SegmentView.from_order(order, base.overlaid(order, decided))
    merged = pd.concat([truth[~truth["session_id"].isin(decided["session_id"])], decided])
    slow = _build_from_frames(scores, ids, days, merged)
    for t in np.nanquantile(scores, [0.05, 0.5, 0.95]):
        _same_point(fast.table.at(t), slow.table.at(t))
    assert base.known.sum() < base.overlaid(order, decided).known.sum()  # a copy: base kept
    assert SegmentView.from_order(order, base).table.at(0.0) != fast.table.at(0.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_cheapest_threshold_on_the_table_is_the_sorted_one(seed: int) -> None:
    from core.evaluate import ThresholdTable
    from core.thresholds import cheapest_on_table

    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=400), 1)
    labels = rng.random(400) < 0.1
    table = ThresholdTable.from_scores(scores, labels)
    for miss, review in ((200.0, 5.0), (1.0, 5.0), (10.0, 0.0), (0.0, 1.0)):
        assert cheapest_on_table(table, cost_miss=miss, cost_review=review) == \
            cheapest_threshold(scores, labels, cost_miss=miss, cost_review=review)
    with pytest.raises(ConfigError, match="costs must be >= 0"):
        cheapest_on_table(table, cost_miss=-1.0, cost_review=1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_daily_budget_ranks_among_alerts_as_among_all_sessions(seed: int) -> None:
    """Ranking only the flagged sessions gives the verdicts of ranking every session (the
    unflagged at -inf), ties broken by table order in both."""
    rng = np.random.default_rng(seed)
    n = 3_000
    scores = np.round(rng.normal(size=n), 1)  # many ties
    flagged = scores >= 0.5
    start = pd.Series(pd.to_datetime("2026-03-01") + pd.to_timedelta(
        rng.uniform(0, 9, n), "D"))
    frame = pd.DataFrame({"day": start.dt.normalize(), "score": np.where(flagged, scores,
                                                                         -np.inf)})
    rank = frame.groupby("day")["score"].rank(method="first", ascending=False).to_numpy()
    for top_k in (1, 7, 40, 10_000):
        np.testing.assert_array_equal(apply_daily_budget(scores, flagged, start, top_k),
                                      flagged & (rank <= top_k))
