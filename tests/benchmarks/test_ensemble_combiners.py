"""The label-free combiner experiment over dumped member scores (benchmarks.ensemble_combiners)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.ensemble_combiners import COMBINERS, evaluate_inputs, from_dump
from core.detectors.ensemble import EnsembleCombiner, agreement_weights, tail_surprise
from core.evaluate import ThresholdTable


def _dump(folder: Path, seed: int) -> Path:
    """400 training and 600 test sessions; "zscore" sees the 30 test anomalies, "autoencoder"
    half of them, "isolation_forest" none; "ecdf_extremes" sees them all but a label-free
    ensemble may not weigh it."""
    rng = np.random.default_rng(seed)
    n_train, n_test = 400, 600
    y = np.zeros(n_test, bool)
    y[:30] = True
    shift = np.zeros((n_train + n_test, 4))
    shift[n_train:n_train + 30, 0] = 4.0
    shift[n_train:n_train + 15, 1] = 4.0
    shift[n_train:n_train + 30, 3] = 9.0
    scores = rng.normal(size=(n_train + n_test, 4)) + shift
    start = np.datetime64("2026-01-01T00:00:00", "us") + np.arange(n_train + n_test) * \
        np.timedelta64(60, "s")
    index = np.r_[np.full(n_train, -1), np.arange(n_test)]
    path = folder / f"toy__ensemble_inputs__{seed}.npz"
    np.savez(path, members=np.array(["zscore", "autoencoder", "isolation_forest",
                                     "ecdf_extremes"]),
             scores=scores, start=start, train_end=start[n_train], test_index=index,
             test_y=y)
    return path


def _ap(scores: np.ndarray, y: np.ndarray) -> float:
    return float(ThresholdTable.from_scores(scores, y).average_precision())


def test_the_product_rule_is_the_ensembles_own_arithmetic(tmp_path: Path) -> None:
    path = _dump(tmp_path, 0)
    name, aps = evaluate_inputs(path)
    assert name == "toy" and set(aps) == set(COMBINERS) | {"best member", "mean member"}
    with np.load(path) as d:
        scores, y = d["scores"], d["test_y"]
    train, test = scores[:400, :3], scores[400:, :3]  # ecdf_extremes is left out
    combiner = EnsembleCombiner.fit(["a", "b", "c"], list(train.T), np.ones(3))
    weights = agreement_weights(combiner.ranks(train), np.ones(3, bool))
    expected = _ap(tail_surprise(combiner.ranks(test)) @ weights, y)
    assert aps["agreement, tail (product)"] == pytest.approx(expected)
    members = [_ap(test[:, j], y) for j in range(3)]
    assert aps["best member"] == pytest.approx(max(members))
    assert aps["mean member"] == pytest.approx(np.mean(members))
    assert aps["best member"] < 0.99  # the left-out specialist would have been perfect


def test_from_dump_prints_every_rule_and_set(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    for seed in (0, 1):
        _dump(tmp_path, seed)
    table = from_dump([tmp_path])
    out = capsys.readouterr().out
    assert "(2 dumps)" in out and all(rule in out for rule in COMBINERS)
    assert table["best member"]["toy"] > table["mean member"]["toy"]
    assert table["equal, tail"]["toy"] > table["mean member"]["toy"]  # averaging helps here


def test_from_dump_says_what_to_run_without_files(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--dump-scores"):
        from_dump([tmp_path])
