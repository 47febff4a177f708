"""Per-column scaling: a column constant in training keeps a novelty visible."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import FeatureMatrix
from core.detectors import build_detector
from core.detectors._scaling import fit_scaler


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
