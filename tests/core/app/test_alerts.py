"""core.app.alerts: the queue's filters, the overview's flags and a threshold's metrics, on
small hand-made tables (the pages draw what these return)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from core.app import alerts
from core.thresholds import InForce, SegmentView


def _queue() -> pd.DataFrame:
    """Four flagged sessions, two models: ``f`` reads features, ``q`` sequences."""
    return pd.DataFrame({
        "session_id": ["s1", "s2", "s3", "s4"],
        "user_id": ["u1", "u1", "u2", "u3"],
        "start_ts": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 10:00",
                                    "2026-01-03 10:00", "2026-01-04 10:00"]),
        "country": ["DE", "FR", "DE", None],
        "amount": [0.0, 50.0, 200.0, 10.0],
        "is_anomaly": pd.Series([True, False, None, True], dtype=object),
        "scenario": ["card_testing", None, None, "bot"],
        "flag:f": [True, True, False, True],
        "flag:q": [False, True, True, False],
        "n_flagging": [1, 2, 1, 1],
        "flagged_by": ["F", "F, Q", "Q", "F"],
        "pct:f": [99.0, 98.0, 50.0, 97.0],
        "pct:q": [10.0, 99.5, 99.9, 20.0],
    })


KINDS = {"f": "features", "q": "sequences"}


def _kept(chosen: alerts.QueueFilter) -> list[str]:
    return alerts.filter_queue(_queue(), ["f", "q"], chosen)["session_id"].tolist()


@pytest.mark.parametrize(("chosen", "expected"), [
    (alerts.QueueFilter(), ["s1", "s2", "s3", "s4"]),
    (alerts.QueueFilter(by=["q"]), ["s2", "s3"]),
    (alerts.QueueFilter(agreement="flagged only by sequence models", input_kinds=KINDS), ["s3"]),
    (alerts.QueueFilter(agreement="flagged only by feature models", input_kinds=KINDS),
     ["s1", "s4"]),
    (alerts.QueueFilter(agreement="flagged by exactly one detector"), ["s1", "s3", "s4"]),
    (alerts.QueueFilter(agreement="flagged by every detector"), ["s2"]),
    (alerts.QueueFilter(label="labelled anomalous"), ["s1", "s4"]),
    (alerts.QueueFilter(label="labelled normal"), ["s2"]),
    (alerts.QueueFilter(label="unlabelled"), ["s3"]),
    (alerts.QueueFilter(label="bot"), ["s4"]),
    (alerts.QueueFilter(dates=(dt.date(2026, 1, 2), dt.date(2026, 1, 3))), ["s2", "s3"]),
    (alerts.QueueFilter(countries=["DE"]), ["s1", "s3"]),
    (alerts.QueueFilter(with_sessions={"s4", "s9"}), ["s4"]),
    (alerts.QueueFilter(min_amount=50.0), ["s2", "s3"]),
    (alerts.QueueFilter(by=["f"], countries=["DE"], min_amount=1.0), []),
])
def test_the_queue_filters_narrow_as_named(chosen: alerts.QueueFilter,
                                           expected: list[str]) -> None:
    assert _kept(chosen) == expected


def test_label_choices_list_the_anomalous_scenarios_after_the_fixed_ones() -> None:
    assert alerts.label_choices(_queue()) == [*alerts.LABEL_FILTERS, "bot", "card_testing"]


def test_queue_rows_per_session_put_the_highest_percentile_first() -> None:
    out, pct = alerts.queue_rows(_queue(), ["f", "q"], {"f": "F", "q": "Q"}, "sessions")
    assert pct == ["F %ile", "Q %ile"]
    assert out["session_id"].tolist() == ["s3", "s2", "s1", "s4"]


def test_queue_rows_per_user_count_sessions_and_keep_the_highest_percentile() -> None:
    out, _ = alerts.queue_rows(_queue(), ["f", "q"], {"f": "F", "q": "Q"}, "users")
    u1 = out.set_index("user_id").loc["u1"]
    assert out["user_id"].iloc[0] == "u1"
    assert (u1["flagged_sessions"], u1["amount"], u1["F %ile"]) == (2, 50.0, 99.0)


def test_ranked_sessions_are_highest_percentile_first() -> None:
    ranked = alerts.ranked_sessions(_queue(), ["f", "q"])
    assert ranked["session_id"].tolist() == ["s3", "s2", "s1", "s4"]
    assert alerts.ranked_sessions(pd.DataFrame(), []).empty


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


def test_the_queue_spans_its_first_and_last_day() -> None:
    assert alerts.date_span(_queue()) == (dt.date(2026, 1, 1), dt.date(2026, 1, 4))
    assert alerts.countries(_queue()) == ["DE", "FR"]
