"""The dense VAE: KL warm-up, the ELBO by hand, save/load, planted anomalies, history."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from core.datasets import FeatureMatrix
from core.detectors import VAEConfig, VAEDetector, load_detector
from core.detectors.torch_detector import ComponentHistory, linear_warmup

TINY = VAEConfig(**VAEDetector.tiny_config)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread: None) -> None:
    """Every test of this module on one torch thread (conftest's ``one_torch_thread``)."""


@pytest.fixture(scope="module")
def fitted(features: FeatureMatrix) -> VAEDetector:
    return VAEDetector(TINY).fit(features)


def test_kl_warmup_rises_linearly_then_stays_at_beta() -> None:
    assert linear_warmup(0, 100, 0.25) == pytest.approx(1 / 25)
    assert linear_warmup(11, 100, 0.25) == pytest.approx(12 / 25)
    assert linear_warmup(24, 100, 0.25) == 1.0
    assert linear_warmup(80, 100, 0.25) == 1.0
    assert linear_warmup(0, 100, 0.0) == 1.0
    detector = VAEDetector(VAEConfig(beta=2.0, kl_warmup=0.5))
    weights = [detector.kl_weight(step, 10) for step in range(10)]
    assert weights == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])


def _hand_scores(detector: VAEDetector, values: np.ndarray, eps: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(negative ELBO at ``eps`` or the posterior mean, -log reconstruction probability)
    computed in float64 numpy from the net's weights."""
    w = {k: v.detach().double().numpy() for k, v in detector.net_.state_dict().items()}
    cfg = detector.config
    x = np.clip((values - detector.centre_) / detector.scale_, -cfg.clip, cfg.clip)
    h = np.maximum(x @ w["encoder.0.weight"].T + w["encoder.0.bias"], 0)
    mu = h @ w["mu.weight"].T + w["mu.bias"]
    logvar = 8 * np.tanh((h @ w["logvar.weight"].T + w["logvar.bias"]) / 8)
    kl = 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    zs = [mu] if eps is None else [mu + np.exp(0.5 * logvar) * e for e in eps]
    nll = []
    for z in zs:
        d = np.maximum(z @ w["decoder.0.weight"].T + w["decoder.0.bias"], 0)
        mean = d @ w["mean.weight"].T + w["mean.bias"]
        out_logvar = 6 * np.tanh((d @ w["out_logvar.weight"].T + w["out_logvar.bias"]) / 6)
        nll.append(0.5 * (math.log(2 * math.pi) + out_logvar
                          + (x - mean) ** 2 * np.exp(-out_logvar)).sum(axis=1))
    nll_arr = np.array(nll)  # (S, n)
    elbo = nll_arr.mean(axis=0) + cfg.beta * kl
    log_p = -nll_arr
    top = log_p.max(axis=0)
    recon_prob = math.log(len(zs)) - (top + np.log(np.exp(log_p - top).sum(axis=0)))
    return elbo, recon_prob


@pytest.mark.parametrize("elbo_samples", [0, 3])
def test_scores_match_a_hand_computation_with_fixed_weights(
    features: FeatureMatrix, elbo_samples: int,
) -> None:
    config = VAEConfig(hidden_dims=(3,), latent_dim=2, beta=0.7, elbo_samples=elbo_samples,
                       score_samples=4, epochs=1, batch_size=128, quiet=True, device="cpu",
                       seed=5)
    detector = VAEDetector(config).fit(features)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for param in detector.net_.parameters():
            param.copy_(torch.from_numpy(rng.normal(scale=0.5, size=param.shape)))
    data = features.take(np.arange(20))
    values = data.values.astype(np.float64)
    draws = np.random.default_rng(5).standard_normal((4, 2)).astype(np.float32)
    elbo, _ = _hand_scores(detector, values, draws[:elbo_samples] if elbo_samples else None)
    _, recon_prob = _hand_scores(detector, values, draws)
    np.testing.assert_allclose(detector.negative_elbo(data), elbo, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(detector.reconstruction_probability(data), recon_prob,
                               rtol=1e-4, atol=1e-4)


def test_save_load_round_trip_gives_identical_scores(
    fitted: VAEDetector, features: FeatureMatrix, tmp_path: object,
) -> None:
    fitted.save(tmp_path / "vae")  # type: ignore[operator]
    loaded = load_detector(tmp_path / "vae")  # type: ignore[operator]
    assert isinstance(loaded, VAEDetector)
    np.testing.assert_array_equal(loaded.score(features), fitted.score(features))
    np.testing.assert_array_equal(loaded.reconstruction_probability(features),
                                  fitted.reconstruction_probability(features))
    assert loaded.history_ == fitted.history_


def test_sampled_score_of_a_row_does_not_depend_on_its_batch(
    fitted: VAEDetector, features: FeatureMatrix,
) -> None:
    whole = fitted.reconstruction_probability(features)
    part = fitted.reconstruction_probability(features.take(np.arange(7, 12)))
    np.testing.assert_allclose(part, whole[7:12], rtol=1e-6)


def test_history_records_recon_and_kl_per_check(fitted: VAEDetector) -> None:
    history = fitted.history_
    assert isinstance(history, ComponentHistory)
    as_dict = history.to_dict()
    assert set(as_dict["components"]) == {"recon", "kl"}
    assert len(as_dict["components"]["recon"]) == len(history.train_loss) > 0
    assert len(as_dict["val_components"]["kl"]) == len(history.val_loss)
    assert all(v >= 0 for v in as_dict["components"]["kl"])
    assert ComponentHistory.from_dict(as_dict) == history


def test_planted_anomalies_score_higher_than_normal_rows(
    feature_factory: Callable[..., FeatureMatrix],
) -> None:
    make_features = feature_factory
    train, normal = make_features(800, seed=1), make_features(200, seed=2)
    rng = np.random.default_rng(3)
    planted = make_features(20, seed=4).values.copy()
    planted[np.arange(20), rng.integers(0, 8, 20)] += 8 * train.values.std(axis=0).max()
    values = np.vstack([normal.values, planted]).astype(np.float32)
    test = FeatureMatrix(np.arange(len(values)).astype(str).astype(object), values, train.names)
    config = VAEConfig(hidden_dims=(16,), latent_dim=2, max_steps=150, eval_every=25,
                       batch_size=128, quiet=True, device="cpu")
    for score in ("elbo", "reconstruction_probability"):
        detector = VAEDetector(dataclasses.replace(config, score=score)).fit(train)
        scores = detector.score(test)
        assert np.isfinite(scores).all()
        assert scores[200:].min() > np.quantile(scores[:200], 0.95)



def test_the_trimmed_loss_leaves_out_the_worst_rows_in_training_only(
    fitted: VAEDetector, features: FeatureMatrix,
) -> None:
    def copy(trim: float) -> VAEDetector:
        detector = VAEDetector(dataclasses.replace(fitted.config, trim_fraction=trim))
        for name in ("feature_names_", "centre_", "scale_", "net_"):
            setattr(detector, name, getattr(fitted, name))
        detector.train_step_, detector.step_budget_ = 10, 10  # past the warm-up: beta = 1
        return detector

    trimmed, untrimmed = copy(0.25), copy(0.0)
    x = torch.from_numpy(trimmed._standardise(features.values[:8]))
    x[0] = 9.0  # one row far off: the worst quarter of 8 rows holds it

    def loss(detector: VAEDetector, training: bool) -> float:
        detector.net_.train(training)
        torch.manual_seed(0)
        with torch.no_grad():
            return float(detector._batch_loss(detector.net_, (x,))[0])

    try:
        assert loss(trimmed, True) < loss(untrimmed, True)
        assert loss(trimmed, False) == pytest.approx(loss(untrimmed, False))  # every row
    finally:
        fitted.net_.eval()
    with pytest.raises(Exception, match="trim_fraction"):
        VAEConfig(trim_fraction=0.9)
