"""MLP classifier: it learns an injected pattern, its probabilities are calibrated, it saves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _labelled import make_labelled_features
from sklearn.metrics import average_precision_score

from core.datasets import FeatureMatrix
from core.detectors import MLPConfig, MLPDetector, load_detector

TINY = MLPConfig(hidden_dims=(16,), epochs=5, quiet=True, device="cpu")


@pytest.fixture(scope="module")
def held_out() -> tuple[FeatureMatrix, np.ndarray]:
    return make_labelled_features(4000, seed=2)


@pytest.fixture(scope="module")
def detector() -> MLPDetector:
    train, y = make_labelled_features(2000, seed=1)
    return MLPDetector(TINY).fit(train, y)


def test_learns_the_injected_pattern(detector: MLPDetector,
                                     held_out: tuple[FeatureMatrix, np.ndarray]) -> None:
    data, y = held_out
    ap = average_precision_score(y, detector.score(data))
    assert ap > max(0.5, 4 * y.mean())
    assert detector.validation_ap_ is not None and detector.validation_ap_ > 0.5


def test_probabilities_are_calibrated_on_held_out_data(
    detector: MLPDetector, held_out: tuple[FeatureMatrix, np.ndarray],
) -> None:
    data, y = held_out
    p = detector.score(data)
    assert ((p >= 0) & (p <= 1)).all()
    assert abs(p.mean() - y.mean()) < 0.03
    top = p >= np.quantile(p, 0.9)  # the most suspicious tenth: predicted vs. observed
    assert abs(p[top].mean() - y[top].mean()) < 0.1
    assert detector.calibration_.method == "platt"


def test_save_keeps_calibration_and_validation_ap(detector: MLPDetector, tmp_path: Path,
                                                  held_out: tuple[FeatureMatrix, np.ndarray],
                                                  ) -> None:
    loaded = load_detector(detector.save(tmp_path / "mlp"))
    assert isinstance(loaded, MLPDetector)
    assert loaded.calibration_ == detector.calibration_
    assert loaded.validation_ap_ == detector.validation_ap_
    assert loaded.pos_weight_ == detector.pos_weight_
    data, _ = held_out
    np.testing.assert_array_equal(loaded.score(data), detector.score(data))


def test_focal_loss_learns_too(held_out: tuple[FeatureMatrix, np.ndarray]) -> None:
    train, y = make_labelled_features(2000, seed=1)
    focal = MLPDetector(MLPConfig(hidden_dims=(16,), epochs=5, quiet=True, device="cpu",
                                  loss="focal")).fit(train, y)
    data, y_test = held_out
    assert average_precision_score(y_test, focal.score(data)) > max(0.5, 4 * y_test.mean())
