"""Dense autoencoder: explanations, robustness to wild inputs, detection quality."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.datasets import FeatureMatrix
from core.detectors import AutoencoderConfig, AutoencoderDetector

TINY = AutoencoderConfig(hidden_dims=(16,), latent_dim=4, epochs=3, batch_size=64, quiet=True,
                         device="cpu")


@pytest.fixture(scope="module")
def detector(features: FeatureMatrix) -> AutoencoderDetector:
    return AutoencoderDetector(TINY).fit(features)


def test_feature_errors_explain_the_score(detector: AutoencoderDetector,
                                          features: FeatureMatrix) -> None:
    errors = detector.feature_errors(features)
    assert errors.shape == (len(features), len(features.names))
    assert (errors >= 0).all()
    np.testing.assert_allclose(errors.mean(axis=1), detector.score(features), rtol=1e-5)


def test_history_records_train_and_time_split_validation(detector: AutoencoderDetector) -> None:
    history = detector.history_
    assert len(history.train_loss) == len(history.val_loss) == TINY.epochs


def test_wild_inputs_keep_scores_finite(detector: AutoencoderDetector,
                                        features: FeatureMatrix) -> None:
    wild = features.values[:5].copy()
    wild[:, 0] = 1e30
    wild[:, 1] = -3e38
    scores = detector.score(FeatureMatrix(features.session_ids[:5], wild, features.names))
    assert np.isfinite(scores).all()
    assert (scores > np.median(detector.score(features))).all()


def test_non_finite_features_are_rejected_with_the_column(
    detector: AutoencoderDetector, features: FeatureMatrix,
) -> None:
    from core.errors import ModelError

    bad = features.values[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ModelError, match=r"feature_2.*Impute"):
        detector.score(FeatureMatrix(features.session_ids[:3], bad, features.names))


def test_columns_in_another_order_are_realigned(detector: AutoencoderDetector,
                                                features: FeatureMatrix) -> None:
    order = np.arange(len(features.names))[::-1]
    swapped = FeatureMatrix(features.session_ids, features.values[:, order],
                            tuple(features.names[i] for i in order))
    np.testing.assert_allclose(detector.score(swapped), detector.score(features))


def test_explicit_validation_set_and_progress_callback(features: FeatureMatrix) -> None:
    seen: list[float] = []
    fitted = AutoencoderDetector(TINY).fit(features.take(np.arange(300)),
                                           validation=features.take(np.arange(300, 400)),
                                           progress=lambda f, _: seen.append(f))
    assert len(fitted.history_.val_loss) >= 1 and seen[-1] == 1.0


def test_detects_broken_correlations(planted_correlation_breaks) -> None:  # type: ignore[no-untyped-def]
    train, test, labels = planted_correlation_breaks
    config = AutoencoderConfig(hidden_dims=(16,), latent_dim=2, epochs=15, quiet=True,
                               device="cpu", batch_size=128)
    scores = AutoencoderDetector(config).fit(train).score(test)
    assert roc_auc_score(labels, scores) >= 0.9


def test_detects_extreme_values(planted_extremes) -> None:  # type: ignore[no-untyped-def]
    train, test, labels = planted_extremes
    scores = AutoencoderDetector(TINY).fit(train).score(test)
    assert roc_auc_score(labels, scores) >= 0.9
