"""The supervised pieces: label checks, class weights, losses, calibration, time split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from core.datasets import EventSequences, FeatureMatrix
from core.detectors import available_detectors, build_detector, get_detector_class
from core.detectors._supervised import (
    MAX_AUTO_POS_WEIGHT,
    Calibration,
    average_precision,
    binary_loss,
    check_event_labels,
    check_labels,
    fit_calibration,
    resolve_pos_weight,
    split_supervised,
)
from core.errors import ConfigError, ModelError

SUPERVISED = ("cnn_gru", "mlp", "transformer")


def test_requires_labels_marks_exactly_the_classifiers() -> None:
    flagged = {name for name in available_detectors() if get_detector_class(name).requires_labels}
    assert set(SUPERVISED) <= flagged
    for name in ("autoencoder", "sequence_autoencoder", "zscore", "isolation_forest",
                 "transformer_mlm"):
        assert not get_detector_class(name).requires_labels


@pytest.mark.parametrize("name", SUPERVISED)
@pytest.mark.parametrize("labels", ["none", "no_positive", "no_negative"])
def test_fit_without_both_classes_says_what_to_do(
    name: str, labels: str, tiny_configs: dict[str, dict[str, object]],
    features: FeatureMatrix, sequences: EventSequences,
) -> None:
    detector = build_detector(name, **tiny_configs[name])
    data: Any = features if detector.input_kind == "features" else sequences
    y = {"none": None, "no_positive": np.zeros(len(data)),
         "no_negative": np.ones(len(data))}[labels]
    with pytest.raises(ModelError, match="unsupervised detector|Widen") as caught:
        detector.fit(data, y)
    assert "must" in str(caught.value)


def test_check_labels_rejects_wrong_shapes_and_values() -> None:
    with pytest.raises(ModelError, match="one value per session"):
        check_labels(np.zeros(3), 4, "mlp")
    with pytest.raises(ModelError, match="must be 0 or 1"):
        check_labels(np.array([0, 1, 0.5, 1]), 4, "mlp")
    assert check_labels([0, 1, 1, 0], 4, "mlp").dtype == np.float32


def test_event_labels_map_nan_to_unknown() -> None:
    labels = check_event_labels(np.array([[0, 1, np.nan]]), (1, 3))
    assert labels.tolist() == [[0.0, 1.0, -1.0]]
    assert (check_event_labels(None, (2, 3)) == -1).all()
    with pytest.raises(ModelError, match="shape"):
        check_event_labels(np.zeros((1, 2)), (1, 3))
    with pytest.raises(ModelError, match="0, 1 or NaN"):
        check_event_labels(np.array([[2.0, 0, 0]]), (1, 3))


def test_pos_weight_is_the_class_ratio_unless_given() -> None:
    y = np.r_[np.ones(10), np.zeros(90), -np.ones(50)]  # -1 = unknown, ignored
    assert resolve_pos_weight(y, None) == pytest.approx(9.0)
    assert resolve_pos_weight(y, 2.5) == 2.5
    rare = np.r_[np.ones(1), np.zeros(10**6)]
    assert resolve_pos_weight(rare, None) == MAX_AUTO_POS_WEIGHT
    assert resolve_pos_weight(np.zeros(5), None) == 1.0


def test_binary_loss_ignores_unknown_targets_and_weights_positives() -> None:
    logits = torch.tensor([0.3, -1.2, 2.0, 0.5])
    targets = torch.tensor([1.0, 0.0, -1.0, 1.0])
    kept = binary_loss(logits[[0, 1, 3]], targets[[0, 1, 3]], 1.0, "bce", 2.0)
    assert binary_loss(logits, targets, 1.0, "bce", 2.0) == pytest.approx(float(kept))
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits[[0, 1, 3]],
                                                                 targets[[0, 1, 3]])
    assert float(kept) == pytest.approx(float(plain))
    weighted = binary_loss(logits, targets, 4.0, "bce", 2.0)
    assert float(weighted) > float(kept)  # the positives are the badly predicted ones here
    focal0 = binary_loss(logits, targets, 1.0, "focal", 0.0)
    assert float(focal0) == pytest.approx(float(kept))  # gamma 0 is plain BCE
    assert float(binary_loss(logits, targets, 1.0, "focal", 2.0)) < float(kept)
    nothing = binary_loss(logits, -torch.ones(4), 1.0, "bce", 2.0)
    assert float(nothing) == 0.0


def _weighted_logits(n: int, seed: int, pos_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model trained with ``pos_weight``: true log-odds + log(pos_weight)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    true_logit = 2.0 * x - 3.5
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(float)
    return true_logit + math.log(pos_weight), y


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_calibration_matches_the_observed_rate_on_held_out_data(method: str) -> None:
    logits, y = _weighted_logits(4000, 0, pos_weight=15.0)
    calibration = fit_calibration(logits, y, method, pos_weight=15.0)
    test_logits, test_y = _weighted_logits(20000, 1, pos_weight=15.0)
    p = calibration.apply(test_logits)
    assert abs(p.mean() - test_y.mean()) < 0.01
    high = p > 0.5  # and within a band, not just on average
    assert abs(p[high].mean() - test_y[high].mean()) < 0.08
    raw = 1 / (1 + np.exp(-test_logits))
    assert raw.mean() > 2 * test_y.mean()  # without calibration the weight inflates them


def test_calibration_without_both_classes_removes_the_prior_shift() -> None:
    calibration = fit_calibration(np.array([0.0, 1.0]), np.zeros(2), "platt", pos_weight=9.0)
    assert calibration.method == "prior_shift"
    assert calibration.apply(np.array([math.log(9.0)]))[0] == pytest.approx(0.5)
    none = fit_calibration(np.array([0.0]), np.ones(1), "none", pos_weight=9.0)
    assert none.apply(np.array([0.0]))[0] == pytest.approx(0.5)


def test_calibration_round_trips_and_rejects_non_finite() -> None:
    calibration = Calibration(0.7, -2.0, "platt")
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    with pytest.raises(ModelError, match="finite"):
        Calibration.from_dict({"slope": float("nan"), "intercept": 0.0})
    assert np.isfinite(calibration.apply(np.array([-1e6, 1e6]))).all()


def test_average_precision_needs_both_classes() -> None:
    assert average_precision(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    assert average_precision(np.array([0.1, 0.9]), np.array([0, 0])) is None
    assert average_precision(np.array([0.1, 0.9, 0.5]), np.array([0, 1, -1])) == 1.0


def test_split_is_by_time_and_keeps_both_classes_in_training() -> None:
    y = np.r_[np.zeros(50), np.ones(10), np.zeros(40)]
    train, val = split_supervised(100, y, 0.2)
    assert train.tolist() == list(range(80)) and val.tolist() == list(range(80, 100))
    late = np.r_[np.zeros(90), np.ones(10)]  # every positive in the latest sessions
    train, val = split_supervised(100, late, 0.2)
    assert len(train) == 100 and len(val) == 0


def test_config_choices_are_checked() -> None:
    with pytest.raises(ConfigError, match="loss must be one of"):
        build_detector("mlp", loss="hinge")
    with pytest.raises(ConfigError, match="calibration must be one of"):
        build_detector("transformer", calibration="isotonic")
    with pytest.raises(ConfigError, match="pos_weight"):
        build_detector("cnn_gru", pos_weight=0.0)
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        build_detector("transformer", hidden_size=30, n_heads=4)
