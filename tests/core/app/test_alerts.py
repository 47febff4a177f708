"""core.app.alerts: the overview's flags and a threshold's metrics, on small hand-made tables
(the pages draw what these return; the work queue's filters: test_queue.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.app import alerts
from core.thresholds import InForce, SegmentView


def _scores() -> pd.DataFrame:
    return pd.DataFrame({
        "session_id": ["a", "b", "c", "d"],
        "start_ts": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-02"]),
        "tenure": ["new", "returning", "returning", "new"],
        "country": ["DE", "DE", "FR", "FR"],
        "score:m": [0.9, 0.5, 0.7, np.nan],
    })


def test_flag_summary_uses_the_thresholds_in_force_and_the_default_where_none_is_saved() -> None:
    labels = pd.DataFrame({"session_id": ["a", "c"], "is_anomaly": [True, False]})
    saved = alerts.flag_summary(_scores(), ["m"], {"m": InForce({"country:FR": 0.6}, 0.8)},
                                labels)
    assert saved.any_flag.tolist() == [True, False, True, False]  # d is unscored
    assert (saved.n_flagged, saved.flag_rate) == (2, 0.5)
    assert saved.thresholds == {"m": 0.8}  # segment 'all' has none saved: the default
    assert saved.anomalous.tolist() == [True, False, False, False]
    assert saved.daily["alerts"].tolist() == [1, 1]
    everywhere = alerts.flag_summary(_scores(), ["m"], {"m": InForce({"all": 0.4}, 0.8)}, labels)
    assert everywhere.thresholds == {"m": 0.4} and everywhere.n_flagged == 3


def _view() -> SegmentView:
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    return SegmentView.build(scores, pd.Series(pd.to_datetime(["2026-01-01"] * 5)),
                             scores[[0, 3, 4]], np.array([False, True, False]),
                             np.array(["", "bot", ""]))


def test_measure_counts_the_labelled_sessions_and_the_alerts() -> None:
    at = alerts.measure(_view(), 0.5)
    assert (at.tp, at.fp, at.fn, at.tn, at.n_alerts, at.per_day) == (1, 1, 0, 1, 2, 2.0)
    assert (at.precision, at.recall, at.fpr) == (0.5, 1.0, 0.5)
    assert at.f1 == pytest.approx(2 / 3)


def test_metrics_without_alerts_or_positives_are_undefined() -> None:
    nothing = alerts.OperatingMetrics(tp=0, fp=0, fn=0, tn=3, n_alerts=0, n_days=1)
    assert math.isnan(nothing.precision) and math.isnan(nothing.recall)
    assert math.isnan(nothing.f1) and nothing.fpr == 0.0


def test_measure_with_a_daily_budget_keeps_each_days_top_sessions() -> None:
    table = _scores().assign(**{"score:m": [0.9, 0.85, 0.7, 0.1]})
    labelled = pd.DataFrame({"session_id": ["a", "b", "c"], "score": [0.9, 0.85, 0.7],
                             "is_anomaly": pd.array([False, True, True], dtype="boolean"),
                             "scenario": [None, "bot", "bot"]})
    view = alerts.segment_view(table, labelled, "m", "all")
    at = alerts.measure(view, 0.5, budget=1, table=table, labelled=labelled, model_id="m")
    assert at.n_alerts == 2  # a on the first day (b is over the budget), c on the second
    assert (at.tp, at.fp, at.fn) == (1, 1, 1)
    with pytest.raises(TypeError):
        alerts.measure(view, 0.5, budget=1)


def test_segments_and_newest_models() -> None:
    assert alerts.segments(["DE"]) == ["all", "tenure:new", "tenure:returning", "country:DE"]
    models = pd.DataFrame({"model_id": ["m1", "m2", "m3"], "detector": ["b", "a", "b"],
                           "created_at": pd.to_datetime(["2026-01-01", "2026-01-02",
                                                         "2026-01-03"])})
    assert alerts.newest_per_detector(models) == ["m2", "m3"]
    assert alerts.newest_per_detector(models.iloc[:0]) == []


def test_countries_are_sorted_and_skip_the_unknown() -> None:
    table = pd.DataFrame({"country": ["FR", "DE", None, "DE"]})
    assert alerts.countries(table) == ["DE", "FR"]
