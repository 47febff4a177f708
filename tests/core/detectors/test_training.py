"""The shared torch training loop: split by time, early stopping, progress, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.detectors._training import (
    TorchTrainingConfig,
    evaluate_loss,
    resolve_device,
    split_by_time,
    train_model,
)
from core.errors import ConfigError


def test_validation_is_the_latest_rows() -> None:
    train, val = split_by_time(10, 0.3)
    assert list(train) == list(range(7)) and list(val) == [7, 8, 9]
    assert len(split_by_time(10, 0.0)[1]) == 0
    assert len(split_by_time(3, 0.2)[1]) == 0  # too few rows to hold any out


def _regression(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], dtype=np.float32) + rng.normal(size=256) * 0.5)
    return x, y.astype(np.float32)


def _loss(net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    x, y = batch
    return torch.mean((net(x)[:, 0] - y) ** 2)


def test_early_stopping_restores_the_best_weights_and_reports_progress() -> None:
    x, y = _regression()
    calls: list[tuple[float, str]] = []
    # A learning rate this high makes the validation loss bounce, so patience triggers.
    config = TorchTrainingConfig(epochs=30, batch_size=16, learning_rate=0.5, patience=2,
                                 quiet=True, device="cpu")
    net, history = train_model(lambda: nn.Linear(4, 1), _loss, [x[:200], y[:200]], config,
                               [x[200:], y[200:]], lambda f, m: calls.append((f, m)))
    assert len(history.val_loss) == len(history.train_loss) <= 30
    assert history.best_epoch == int(np.argmin(history.val_loss))
    restored = evaluate_loss(net, _loss, [torch.from_numpy(x[200:]), torch.from_numpy(y[200:])],
                             64, torch.device("cpu"))
    assert restored == pytest.approx(min(history.val_loss), rel=1e-5)
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert not net.training


def test_training_is_seeded_and_leaves_global_rng_alone() -> None:
    x, y = _regression()
    config = TorchTrainingConfig(epochs=2, batch_size=32, quiet=True, device="cpu", seed=3)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = train_model(lambda: nn.Linear(4, 1), _loss, [x, y], config)
    after = torch.rand(1)
    b, _ = train_model(lambda: nn.Linear(4, 1), _loss, [x, y], config)
    assert torch.equal(before, after)
    assert torch.equal(a.weight, b.weight)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_config_error_when_training_only() -> None:
    with pytest.raises(ConfigError, match="Use device='auto' or 'cpu'"):
        resolve_device("cuda")
    assert resolve_device("cuda", strict=False).type == "cpu"
    assert resolve_device("auto").type == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_detectors_train_and_score_on_cuda(features, sequences, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.detectors import build_detector, load_detector

    for name, data in (("autoencoder", features), ("sequence_autoencoder", sequences)):
        detector = build_detector(name, device="cuda", epochs=2, quiet=True).fit(data)
        assert next(detector.net_.parameters()).is_cuda
        scores = detector.score(data)
        assert np.isfinite(scores).all()
        detector.save(tmp_path / name)
        np.testing.assert_allclose(load_detector(tmp_path / name).score(data), scores, rtol=1e-6)


def test_the_budget_is_counted_in_steps_with_an_optional_epoch_cap() -> None:
    assert TorchTrainingConfig(max_steps=500, epochs=None, batch_size=100).step_budget(
        1000) == (500, 10)
    assert TorchTrainingConfig(max_steps=500, epochs=3, batch_size=100).step_budget(
        1000) == (30, 10)
    # checks at most every 200 steps on big data
    assert TorchTrainingConfig(max_steps=5000, epochs=None, batch_size=10).step_budget(
        100_000) == (5000, 200)


def test_the_learning_rate_warms_up_then_decays() -> None:
    from core.detectors._training import lr_factor

    factors = [lr_factor(s, 1000, "cosine") for s in range(1000)]
    peak = int(np.argmax(factors))
    assert 0 < peak <= 50 and factors[0] < 0.2 and factors[-1] < 0.06
    assert all(a >= b for a, b in zip(factors[peak:], factors[peak + 1:], strict=False))
    assert lr_factor(10, 1000, "constant") == 1.0


def test_history_records_steps_and_passes() -> None:
    x, y = _regression()
    config = TorchTrainingConfig(max_steps=40, epochs=None, batch_size=32, quiet=True,
                                 device="cpu", patience=100)
    _, history = train_model(lambda: nn.Linear(4, 1), _loss, [x[:200], y[:200]], config,
                             [x[200:], y[200:]])
    assert history.n_steps == 40 and history.step_budget == 40
    assert history.steps[-1] == 40 and len(history.steps) == len(history.val_loss)
    assert history.epochs == pytest.approx(40 * 32 / 200, rel=1e-3)
    assert history.val_loss[-1] < history.val_loss[0]


def test_a_noisy_validation_loss_draws_the_same_noise_at_every_check() -> None:
    net = nn.Linear(3, 1)
    rows = [torch.ones(50, 3)]

    def noisy(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return (model(batch[0]) + torch.rand(len(batch[0]), 1)).mean()

    torch.manual_seed(0)
    first = evaluate_loss(net, noisy, rows, 16, torch.device("cpu"))
    after_first = torch.rand(1)
    torch.manual_seed(0)
    second = evaluate_loss(net, noisy, rows, 16, torch.device("cpu"))
    third = evaluate_loss(net, noisy, rows, 16, torch.device("cpu"))
    assert first == second == third  # same weights, same noise: checks differ by weights alone
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after_first)  # training's own stream is untouched
