"""core.risk: the one risk score, its calibration and its calibration error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.operating_point import ScoreReference
from core.risk import (
    RiskCalibration,
    expected_calibration_error,
    fit_risk,
    reliability,
    user_risk,
)


def test_ece_matches_a_hand_computation() -> None:
    # bin [0.1, 0.2): predictions 0.1, 0.1 with labels 0, 1 -> gap |0.1 - 0.5| = 0.4, weight 2
    # bin [0.9, 1.0]: predictions 0.9, 0.9, 0.9 with labels 1, 1, 1 -> gap 0.1, weight 3
    p = np.array([0.1, 0.1, 0.9, 0.9, 0.9])
    y = np.array([0, 1, 1, 1, 1])
    assert expected_calibration_error(p, y) == pytest.approx((0.4 * 2 + 0.1 * 3) / 5)


def test_reliability_leaves_empty_bins_empty() -> None:
    rel = reliability(np.array([0.05, 0.95, 1.0]), np.array([0, 1, 1]))
    assert rel.count.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert np.isnan(rel.observed[1])
    assert rel.observed[9] == 1.0


def test_a_perfect_forecaster_has_zero_error_and_a_constant_one_does_not() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=200_000)
    y = rng.uniform(size=p.size) < p
    assert expected_calibration_error(p, y) < 0.01
    assert expected_calibration_error(np.full(p.size, 0.9), y) == pytest.approx(0.4, abs=0.01)


def _labelled(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores whose true probability of anomaly is a logistic of the score."""
    rng = np.random.default_rng(seed)
    train = rng.normal(size=n)
    valid = rng.normal(size=n)
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-(3 * valid - 4)))
    return train, valid, y


def test_enough_labels_give_a_calibrated_probability() -> None:
    train, valid, y = _labelled(20_000, seed=2)
    ref = ScoreReference.from_scores(train, np.empty(0)).pooled
    cal = fit_risk(valid, y, ref)
    assert cal.kind == "probability"
    assert cal.ece is not None and cal.ece < 0.03
    risk = cal.risk(np.array([-3.0, 0.0, 3.0]))
    truth = 100 / (1 + np.exp(-(3 * np.array([-3.0, 0.0, 3.0]) - 4)))
    assert np.all(np.diff(risk) >= 0)  # monotone: the detector's order is kept
    assert risk == pytest.approx(truth, abs=6)


def test_few_labels_give_a_training_percentile_and_say_so() -> None:
    train, valid, y = _labelled(2_000, seed=3)
    y[:] = False
    y[:5] = True
    ref = np.sort(train)
    cal = fit_risk(valid, y, ref)
    assert cal.kind == "percentile" and cal.ece is None and cal.n_positive == 5
    assert fit_risk(valid, None, ref).kind == "percentile"
    median = float(np.median(train))
    assert cal.risk(np.array([median]))[0] == pytest.approx(50, abs=1)
    assert cal.risk(np.array([np.nan]))[0] != cal.risk(np.array([np.nan]))[0]


def test_calibration_survives_json() -> None:
    train, valid, y = _labelled(5_000, seed=4)
    cal = fit_risk(valid, y, np.sort(train))
    back = RiskCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    probe = np.linspace(-4, 4, 50)
    assert back.kind == cal.kind and back.ece == cal.ece
    np.testing.assert_allclose(back.risk(probe), cal.risk(probe))


def test_user_risk_is_the_highest_session_risk() -> None:
    got = user_risk(np.array([10.0, 80.0, np.nan, 30.0]), np.array(["a", "a", "b", "b"]))
    assert got == {"a": 80.0, "b": 30.0}
