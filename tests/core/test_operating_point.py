"""Label-free operating points from a model's own training scores."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from core.operating_point import RULES, ScoreReference, best_f1_threshold, threshold_by_rule
from core.pipeline.operating_point import choose_point


def test_every_rule_reads_only_the_training_scores() -> None:
    rng = np.random.default_rng(0)
    normal = np.sort(rng.gamma(2.0, 1.0, 10_000))
    for rule in RULES:
        value = threshold_by_rule(normal, rule)
        assert np.median(normal) <= value <= normal[-1] * 3
    # more anomalies in the store do not move a threshold learned from training
    assert threshold_by_rule(normal, "q99") == pytest.approx(np.quantile(normal, 0.99))


def test_contamination_is_a_quantile_and_is_checked() -> None:
    scores = np.arange(1000.0)
    assert threshold_by_rule(scores, contamination=0.05) == pytest.approx(949.05)
    with pytest.raises(ConfigError, match="contamination must be in"):
        threshold_by_rule(scores, contamination=0.7)


def test_the_reference_gives_percentiles_against_training() -> None:
    ref = ScoreReference.from_scores(np.arange(1000.0), np.arange(1000.0, 1100.0))
    pct = ref.percentile(np.array([-5.0, 550.0, 1e9, np.nan]))
    assert pct[0] == 0.0 and pct[2] == 100.0 and np.isnan(pct[3])
    assert 45 < pct[1] < 55
    back = ScoreReference.from_dict(ref.to_dict())
    np.testing.assert_array_equal(back.train, ref.train)


def test_best_f1_threshold_on_labelled_scores() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.95])
    labels = np.array([0, 0, 0, 1, 1, 0], bool)
    assert best_f1_threshold(scores, labels) == 0.8
    assert best_f1_threshold(scores, np.zeros(6, bool)) is None


def test_supervised_models_use_validation_labels_else_the_label_free_rule() -> None:
    ref = ScoreReference.from_scores(np.linspace(0, 1, 500), np.linspace(0, 1, 50))
    val = np.r_[np.linspace(0, 0.5, 45), np.linspace(0.9, 1.0, 5)]
    labels = np.r_[np.zeros(45, bool), np.ones(5, bool)]
    point = choose_point(ref, val, labels, supervised=True)
    assert point.rule == "best_f1_validation" and point.threshold == pytest.approx(0.9)
    unsupervised = choose_point(ref, val, labels, supervised=False)
    assert unsupervised.rule in RULES and "label-free" in unsupervised.source
    assert choose_point(ref, val, labels, supervised=False,
                        contamination=0.1).rule == "contamination"


def test_the_label_free_default_flags_at_most_five_percent_of_training() -> None:
    rng = np.random.default_rng(3)
    heavy = rng.pareto(1.0, 20_000)  # heavy-tailed errors: median + 4 MAD flags far more
    ref = ScoreReference.from_scores(heavy[:18_000], heavy[18_000:])
    point = choose_point(ref, heavy[18_000:], np.zeros(2000, bool), supervised=False)
    flagged = float((heavy >= point.threshold).mean())
    assert 0.045 <= flagged <= 0.051 and "at most 5%" in point.source
    light = rng.normal(size=20_000)  # a light tail: the fence itself flags far less
    ref = ScoreReference.from_scores(light[:18_000], light[18_000:])
    fence = choose_point(ref, light[18_000:], np.zeros(2000, bool), supervised=False)
    assert "at most" not in fence.source and "median + 4 MAD" in fence.source
    assert (light >= fence.threshold).mean() < 0.001


def test_the_default_fence_finds_a_contaminating_tail() -> None:
    """Training scores that hold 4% anomalies well above the normal bulk: the default flags
    most of them and few normal sessions (the contaminated regime of ADBench's sets)."""
    rng = np.random.default_rng(4)
    normal, anomalous = rng.normal(size=19_200), rng.normal(6.0, 1.0, size=800)
    scores = np.concatenate([normal, anomalous])
    ref = ScoreReference.from_scores(scores, np.empty(0))
    point = choose_point(ref, np.empty(0), np.empty(0, bool), supervised=False)
    assert (anomalous >= point.threshold).mean() > 0.9
    assert (normal >= point.threshold).mean() < 0.005


def test_a_vetted_training_window_takes_a_false_positive_rate_not_the_fence() -> None:
    rng = np.random.default_rng(5)
    heavy = rng.pareto(1.0, 20_000)  # the fence would flag its 5% cap here
    ref = ScoreReference.from_scores(heavy, np.empty(0))
    point = choose_point(ref, np.empty(0), np.empty(0, bool), supervised=False, vetted=True)
    assert point.rule == "q995" and "labelled normal" in point.source
    assert (heavy >= point.threshold).mean() == pytest.approx(0.005, abs=0.001)
    labels = np.r_[np.zeros(90, bool), np.ones(10, bool)]  # labels in validation still win
    scored = choose_point(ref, np.r_[np.zeros(90), np.ones(10)], labels, supervised=True,
                          vetted=True)
    assert scored.rule == "best_f1_validation"


def test_a_vetted_window_with_enough_labelled_anomalies_takes_best_f1_for_any_model() -> None:
    """An unsupervised model over a labelled window: the validation labels pick its cut once
    they hold 20 anomalies; with fewer, the 99.5th percentile of the normal scores stays."""
    rng = np.random.default_rng(6)
    ref = ScoreReference.from_scores(rng.normal(size=5000), np.empty(0))
    val = np.r_[rng.normal(size=600), rng.normal(2.5, 0.3, size=40)]
    labels = np.r_[np.zeros(600, bool), np.ones(40, bool)]
    point = choose_point(ref, val, labels, supervised=False, vetted=True)
    assert point.rule == "best_f1_validation" and "without labels" in point.source
    assert point.threshold < threshold_by_rule(ref.pooled, "q995")
    assert (val[600:] >= point.threshold).mean() > 0.9  # the labelled anomalies are caught
    few = np.r_[np.zeros(600, bool), np.ones(19, bool)]
    assert choose_point(ref, val[:619], few, supervised=False, vetted=True).rule == "q995"
    unvetted = choose_point(ref, val, labels, supervised=False)
    assert unvetted.rule != "best_f1_validation"
