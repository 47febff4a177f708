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
        weights = torch.as_tensor(detector.error_weights_, dtype=torch.float32)
        expected = (net(z) - z).square() * weights
    np.testing.assert_allclose(detector.feature_errors(data), expected.numpy(), rtol=1e-4,
                               atol=1e-4)
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


@pytest.fixture(scope="module")
def weighted() -> tuple[AutoencoderDetector, FeatureMatrix]:
    """Fitted with ``error_scale="median"`` on two noise columns and two copies of a signal
    column (which the bottleneck reconstructs from each other)."""
    import dataclasses

    rng = np.random.default_rng(3)
    signal = rng.normal(size=600)
    values = np.column_stack([rng.normal(size=600) * 3, rng.normal(size=600) * 3, signal,
                              signal]).astype(np.float32)
    data = FeatureMatrix(np.arange(600).astype(str).astype(object), values,
                         ("noise_a", "noise_b", "copy_1", "copy_2"))
    config = dataclasses.replace(TINY, hidden_dims=(8,), latent_dim=1, epochs=30,
                                 error_scale="median")
    return AutoencoderDetector(config).fit(data), data


def test_median_error_scale_weights_what_the_network_reconstructs(weighted) -> None:  # type: ignore[no-untyped-def]
    detector, data = weighted
    weights = detector.error_weights_
    assert weights[2:].min() > weights[:2].max()  # the modelled columns count for more
    np.testing.assert_allclose(detector.feature_errors(data).mean(axis=1), detector.score(data),
                               rtol=1e-5)
    # breaking the copies' relation outranks the same move in a noise column
    broken, noisy = data.values[:1].copy(), data.values[:1].copy()
    broken[0, 3] += 2.0
    noisy[0, 0] += 2.0
    ids = data.session_ids[:1]
    assert (detector.score(FeatureMatrix(ids, broken, data.names))[0]
            > detector.score(FeatureMatrix(ids, noisy, data.names))[0])


def test_error_weights_survive_save_and_load(weighted, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.detectors import load_detector

    detector, data = weighted
    detector.save(tmp_path / "model")
    loaded = load_detector(tmp_path / "model")
    np.testing.assert_allclose(loaded.error_weights_, detector.error_weights_)
    np.testing.assert_allclose(loaded.score(data), detector.score(data), rtol=1e-6)


def test_plain_error_scale_keeps_unit_weights(features: FeatureMatrix) -> None:
    import dataclasses

    plain = AutoencoderDetector(dataclasses.replace(TINY, error_scale="none")).fit(features)
    assert np.all(plain.error_weights_ == 1.0)
    errors = plain.feature_errors(features)
    np.testing.assert_allclose(errors.mean(axis=1), plain.score(features), rtol=1e-5)
    with pytest.raises(Exception, match="error_scale"):
        AutoencoderConfig(error_scale="mean")


def test_an_unweighted_model_loads_as_saved(features: FeatureMatrix, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from core.detectors import load_detector

    plain = AutoencoderDetector(dataclasses.replace(TINY, error_scale="none")).fit(features)
    plain.save(tmp_path / "plain")
    loaded = load_detector(tmp_path / "plain")
    assert loaded.config.error_scale == "none"
    np.testing.assert_allclose(loaded.score(features), plain.score(features), rtol=1e-6)


def test_error_scale_reads_a_bounded_sample_of_rows(features: FeatureMatrix,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from core.detectors import autoencoder

    seen: list[int] = []
    errors = AutoencoderDetector._errors

    def counting(self, data, per_feature):  # type: ignore[no-untyped-def]
        if per_feature:
            seen.append(len(data))
        return errors(self, data, per_feature)

    monkeypatch.setattr(autoencoder, "ERROR_SCALE_ROWS", 50)
    monkeypatch.setattr(AutoencoderDetector, "_errors", counting)
    detector = AutoencoderDetector(TINY).fit(features)
    assert seen == [50]
    assert np.isfinite(detector.error_weights_).all() and (detector.error_weights_ > 0).all()
