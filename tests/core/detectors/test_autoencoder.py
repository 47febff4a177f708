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


def test_scoring_path_matches_the_training_forward_pass(
    features: FeatureMatrix, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The folded scoring plan (clip in raw units, standardisation in the first layer) gives
    the errors of standardise -> forward, over many blocks in parallel lanes, with dropout
    layers skipped and with values far beyond the clip."""
    import torch

    from core.detectors import _lanes

    monkeypatch.setattr(_lanes, "CPU_BLOCK_ROWS", 7)
    config = AutoencoderConfig(hidden_dims=(16, 8), latent_dim=3, dropout=0.3, epochs=2,
                               batch_size=64, quiet=True, device="cpu")
    detector = AutoencoderDetector(config).fit(features)
    values = features.values.copy()
    values[::5, 0] = 1e6
    values[1::5, 1] = -1e6
    data = FeatureMatrix(features.session_ids, values, features.names)
    with torch.inference_mode():
        net = detector.net_.eval()
        z = net.standardise(torch.from_numpy(values))
        expected = (net(z) - z).square()
    np.testing.assert_allclose(detector.feature_errors(data), expected.numpy(), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(detector.score(data), expected.mean(dim=1).numpy(), rtol=1e-4)


def test_infinite_feature_in_a_late_block_is_rejected(
    detector: AutoencoderDetector, features: FeatureMatrix, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.detectors import _lanes
    from core.errors import ModelError

    monkeypatch.setattr(_lanes, "CPU_BLOCK_ROWS", 4)
    bad = features.values.copy()
    bad[-1, 3] = np.inf
    with pytest.raises(ModelError, match=r"feature_3.*Impute"):
        detector.score(FeatureMatrix(features.session_ids, bad, features.names))


def test_the_trimmed_loss_leaves_out_the_worst_rows_in_training_only(
    detector: AutoencoderDetector, features: FeatureMatrix,
) -> None:
    import dataclasses

    import torch

    x = torch.from_numpy(detector._standardise(features.values[:8]))
    x[0] = 9.0  # one row far off: the worst quarter of 8 rows holds it
    trimmed = AutoencoderDetector(dataclasses.replace(TINY, trim_fraction=0.25))

    def loss(config_of: AutoencoderDetector, training: bool) -> float:
        detector.net_.train(training)
        torch.manual_seed(0)
        with torch.no_grad():
            return float(type(detector)._batch_loss(config_of, detector.net_, (x,)))

    try:
        assert loss(trimmed, True) < loss(detector, True)
        assert loss(trimmed, False) == pytest.approx(loss(detector, False))  # every row
    finally:
        detector.net_.eval()
    with pytest.raises(Exception, match="trim_fraction"):
        AutoencoderConfig(trim_fraction=0.9)
