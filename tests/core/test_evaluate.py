"""Threshold tables and summary metrics, checked against scikit-learn on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from core.errors import ConfigError
from core.evaluate import MAX_CURVE_POINTS, ThresholdTable, evaluate_scores


@st.composite
def scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Scores with many ties (a few distinct values) and both classes present."""
    n = draw(st.integers(2, 60))
    scores = np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), float) / 4
    labels = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    labels[0], labels[1] = True, False
    return scores, labels


@settings(max_examples=150, deadline=None)
@given(scored(), st.floats(-0.5, 2.5))
def test_at_matches_sklearn_confusion(data: tuple[np.ndarray, np.ndarray], t: float) -> None:
    scores, labels = data
    op = ThresholdTable.from_scores(scores, labels).at(t)
    pred = scores >= t
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[False, True]).ravel()
    assert (op.tp, op.fp, op.fn, op.tn, op.n_alerts) == (tp, fp, fn, tn, tp + fp)
    assert op.recall == pytest.approx(recall_score(labels, pred))
    if pred.any():
        assert op.precision == pytest.approx(precision_score(labels, pred))
    else:
        assert math.isnan(op.precision)
    assert op.f1 == pytest.approx(f1_score(labels, pred, zero_division=0.0))
    assert op.fpr == pytest.approx(fp / (fp + tn))


@settings(max_examples=150, deadline=None)
@given(scored())
def test_auc_and_ap_match_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = data
    table = ThresholdTable.from_scores(scores, labels)
    assert table.roc_auc() == pytest.approx(roc_auc_score(labels, scores))
    assert table.average_precision() == pytest.approx(average_precision_score(labels, scores))


def test_random_continuous_scores_against_sklearn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(20_000) < 0.03
    scores = rng.normal(size=20_000) + 1.5 * labels
    out = evaluate_scores(scores, labels, ks=(100, 500))
    assert out["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert out["average_precision"] == pytest.approx(average_precision_score(labels, scores))
    top = np.argsort(-scores)[:100]
    assert out["precision_at_k"][100] == pytest.approx(labels[top].mean())
    pred = scores >= out["threshold_at_fpr"]
    assert pred[~labels].mean() <= 0.01
    assert out["recall_at_fpr"] == pytest.approx(recall_score(labels, pred))
    assert out["best_f1"] == pytest.approx(f1_score(labels, scores >= out["best_f1_threshold"]))


def test_vectorised_at_many_equals_at() -> None:
    rng = np.random.default_rng(1)
    scores, labels = rng.random(500).round(2), rng.random(500) < 0.2
    table = ThresholdTable.from_scores(scores, labels)
    ts = np.r_[-1.0, np.linspace(0, 1, 37), 2.0, np.inf]
    many = table.at_many(ts)
    for i, t in enumerate(ts):
        op = table.at(t)
        assert op.tp == many["tp"][i] and op.fp == many["fp"][i]
    assert table.at(-1.0).n_alerts == 500 and table.at(np.inf).n_alerts == 0


def test_ties_at_the_threshold_are_all_flagged() -> None:
    table = ThresholdTable.from_scores([0.9, 0.5, 0.5, 0.5, 0.1], [1, 1, 0, 0, 0])
    assert (table.at(0.5).tp, table.at(0.5).fp) == (2, 2)
    assert table.at(0.50001).n_alerts == 1
    assert table.threshold_for_alerts(2) == 0.9  # the tie group of three would exceed 2
    assert table.threshold_for_alerts(4) == 0.5
    assert table.threshold_for_alerts(0) == math.inf
    # precision@2 shares the tie group proportionally: 1 + 1/3 of the 3 ties are positive
    assert table.precision_at_k(2) == pytest.approx((1 + 1 / 3) / 2)


def test_threshold_for_fpr_is_the_lowest_within_budget() -> None:
    scores = np.arange(100, dtype=float)
    labels = np.zeros(100, bool)
    labels[-5:] = True  # scores 95..99 positive; 95 negatives
    table = ThresholdTable.from_scores(scores, labels)
    t = table.threshold_for_fpr(0.0)
    assert t == 95 and table.at(t).recall == 1.0 and table.at(t).fp == 0
    t2 = table.threshold_for_fpr(2 / 95)
    assert table.at(t2).fp == 2 and table.at(t2 - 1).fp == 3


def test_best_f1_and_curve() -> None:
    rng = np.random.default_rng(2)
    labels = rng.random(5000) < 0.1
    scores = rng.normal(size=5000) + labels
    table = ThresholdTable.from_scores(scores, labels)
    best = table.best_f1()
    grid = table.at_many(table.thresholds)
    assert best.f1 == pytest.approx(np.nanmax(grid["f1"]))
    curve = table.curve()
    assert len(curve.thresholds) <= MAX_CURVE_POINTS + 1
    assert curve.fpr[0] == 0 and curve.tpr[0] == 0 and curve.fpr[-1] == 1 and curve.tpr[-1] == 1
    assert np.all(np.diff(curve.fpr) >= 0) and np.all(np.diff(curve.thresholds) < 0)
    small = ThresholdTable.from_scores([0.2, 0.4], [0, 1]).curve()
    assert list(small.thresholds) == [np.inf, 0.4, 0.2]


def test_recall_by_scenario_at_the_fpr_threshold() -> None:
    scores = np.r_[np.linspace(0, 1, 200), [5.0, 5.0, 0.1, 5.0]]
    labels = np.r_[np.zeros(200, bool), [True, True, True, True]]
    scenarios = np.array(["normal"] * 200 + ["ato", "ato", "bot", "bot"], dtype=object)
    out = evaluate_scores(scores, labels, scenarios=scenarios)
    assert out["recall_by_scenario"] == {"ato": 1.0, "bot": 0.5}


def test_degenerate_inputs() -> None:
    with pytest.raises(ConfigError, match="empty"):
        evaluate_scores([], [])
    with pytest.raises(ConfigError, match="same length"):
        ThresholdTable.from_scores([1.0, 2.0], [1])
    with pytest.raises(ConfigError, match="finite"):
        ThresholdTable.from_scores([np.nan, 1.0], [0, 1])
    with pytest.raises(ConfigError, match="0/1"):
        ThresholdTable.from_scores([1.0, 2.0], [0, 2])
    no_pos = evaluate_scores([0.1, 0.2, 0.3], [0, 0, 0])
    assert math.isnan(no_pos["roc_auc"]) and math.isnan(no_pos["average_precision"])
    assert math.isnan(no_pos["best_f1"]) and no_pos["precision_at_k"][100] == 0
    no_neg = evaluate_scores([0.1, 0.2], [1, 1])
    assert math.isnan(no_neg["roc_auc"]) and math.isnan(no_neg["recall_at_fpr"])
    assert no_neg["average_precision"] == 1.0
    with pytest.raises(ConfigError, match="positive"):
        ThresholdTable.from_scores([0.1], [0]).best_f1()
    with pytest.raises(ConfigError, match="negative"):
        ThresholdTable.from_scores([0.1], [1]).threshold_for_fpr(0.01)
    with pytest.raises(ConfigError, match="max_fpr"):
        ThresholdTable.from_scores([0.1, 0.2], [0, 1]).threshold_for_fpr(1.5)
    op = ThresholdTable.from_scores([0.1, 0.2], [0, 1]).at(1.0)
    assert op.n_alerts == 0 and math.isnan(op.precision) and op.f1 == 0
