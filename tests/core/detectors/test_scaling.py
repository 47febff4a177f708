"""Per-column scaling: a column constant in training keeps a novelty visible."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import FeatureMatrix
from core.detectors import build_detector
from core.detectors._scaling import fit_scaler, uncovered_calendar


@pytest.mark.parametrize("method", ["robust", "standard", "mad"])
def test_a_constant_column_that_moves_by_one_unit_is_a_large_deviation(method: str) -> None:
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(size=500), np.zeros(500), np.full(500, 3.0)])
    centre, scale = fit_scaler(train, method)
    moved = np.array([0.0, 1.0, 4.0])  # each constant column one unit off
    z = (moved - centre) / scale
    assert abs(z[1]) >= 5 and abs(z[2]) >= 5
    assert abs(z[0]) < 1  # a varying column keeps its own spread


def test_a_large_constant_gets_a_relative_floor() -> None:
    centre, scale = fit_scaler(np.full((50, 1), 10_000.0), "robust")
    assert scale[0] == pytest.approx(100.0)  # 1% of the value
    assert (10_500.0 - centre[0]) / scale[0] == pytest.approx(5.0)


def test_a_sparse_flag_falls_back_to_its_standard_deviation() -> None:
    flag = np.zeros((1000, 1))
    flag[:10] = 1.0
    _, scale = fit_scaler(flag, "robust")
    assert scale[0] == pytest.approx(flag.std())


def test_the_autoencoder_ranks_a_never_seen_event_type_first() -> None:
    """One unit in a column constant in training outranks ordinary noise in 40 columns."""
    rng = np.random.default_rng(1)
    train = np.column_stack([rng.normal(size=(2000, 40)), np.zeros((2000, 1))])
    test = np.column_stack([rng.normal(size=(200, 40)), np.zeros((200, 1))])
    test[7, -1] = np.log1p(1.0)  # e.g. count_log of a type never seen: one event
    names = tuple(f"c{i}" for i in range(41))
    detector = build_detector("autoencoder", quiet=True, max_steps=300, device="cpu").fit(
        FeatureMatrix(np.arange(2000).astype(object), train.astype(np.float32), names))
    scores = detector.score(FeatureMatrix(np.arange(200).astype(object),
                                          test.astype(np.float32), names))
    assert int(np.argmax(scores)) == 7


def test_a_calendar_column_constant_in_training_does_not_count() -> None:
    """A weekdays-only window never saw a weekend: is_weekend gets no say, while an ordinary
    constant column keeps its floor."""
    train = np.column_stack([np.zeros(300), np.zeros(300)])
    centre, scale = fit_scaler(train, "robust", ("is_weekend", "count_log[x]"))
    z = (np.array([1.0, 1.0]) - centre) / scale
    assert abs(z[0]) < 1e-5
    assert abs(z[1]) >= 5
    assert uncovered_calendar(train, ("is_weekend", "count_log[x]")).tolist() == [True, False]


def _weekday_matrices() -> tuple[FeatureMatrix, FeatureMatrix, tuple[str, ...]]:
    rng = np.random.default_rng(3)
    names = ("a", "b", "is_weekend", "hour_sin", "hour_cos")
    train = np.column_stack([rng.normal(size=(800, 2)), np.zeros(800),
                             rng.uniform(-1, 1, size=(800, 2))]).astype(np.float32)
    test = np.repeat(train[:50], 2, axis=0)
    test[1::2, 2] = 1.0  # every second row: the same session on a weekend
    return (FeatureMatrix(np.arange(800).astype(object), train, names),
            FeatureMatrix(np.arange(100).astype(object), test, names), names)


@pytest.mark.parametrize("name,config", [("zscore", {}), ("ecdf_tails", {}),
                                         ("autoencoder", {"max_steps": 50, "device": "cpu",
                                                          "quiet": True}),
                                         ("vae", {"max_steps": 50, "device": "cpu",
                                                  "quiet": True})])
def test_a_weekend_scores_like_a_weekday_after_weekday_training(name: str, config: dict
                                                                ) -> None:
    train, test, _ = _weekday_matrices()
    detector = build_detector(name, **config).fit(train)
    scores = detector.score(test)
    np.testing.assert_allclose(scores[1::2], scores[0::2], rtol=1e-4, atol=1e-4)
