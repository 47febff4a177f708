"""Robust z-score: per-feature explanation, zero-spread features, detection quality."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from core.datasets import FeatureMatrix
from core.detectors import ZScoreConfig, ZScoreDetector


def test_zscores_are_signed_and_top_k_of_one_is_the_max(features: FeatureMatrix) -> None:
    detector = ZScoreDetector(ZScoreConfig(top_k=1)).fit(features)
    z = detector.feature_zscores(features)
    assert z.shape == (len(features), len(features.names))
    assert (z < 0).any() and (z > 0).any()
    np.testing.assert_allclose(detector.score(features), np.abs(z).max(axis=1))
    top3 = ZScoreDetector(ZScoreConfig(top_k=3)).fit(features).score(features)
    np.testing.assert_allclose(top3, np.sort(np.abs(z), axis=1)[:, -3:].mean(axis=1))


def test_a_rare_value_in_an_almost_constant_feature_stands_out() -> None:
    values = np.zeros((100, 2), dtype=np.float32)
    values[:, 1] = np.linspace(0, 1, 100)
    values[0, 0] = 1.0  # MAD of column 0 is 0: the std fallback keeps this finite and high
    data = FeatureMatrix(np.arange(100).astype(object), values, ("flag", "x"))
    scores = ZScoreDetector(ZScoreConfig(top_k=1)).fit(data).score(data)
    assert np.isfinite(scores).all() and int(np.argmax(scores)) == 0


def test_detects_extreme_values(planted_extremes) -> None:  # type: ignore[no-untyped-def]
    train, test, labels = planted_extremes
    scores = ZScoreDetector().fit(train).score(test)
    assert roc_auc_score(labels, scores) >= 0.95
