"""The empirical-tail detector: exact tails, bounded knots, novelty past the training range."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import FeatureMatrix
from core.detectors import EcdfTailsConfig, EcdfTailsDetector, load_detector
from core.detectors.ecdf_tails import column_knots
from core.errors import ConfigError


def _matrix(values: np.ndarray, names: tuple[str, ...] | None = None) -> FeatureMatrix:
    names = names or tuple(f"f{j}" for j in range(values.shape[1]))
    return FeatureMatrix(np.arange(len(values)).astype(str).astype(object),
                         np.asarray(values, np.float32), names)


def _brute_force(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sum over features of max(-log left, -log right) smoothed tail, by counting."""
    n = len(train)
    out = np.zeros(len(rows))
    for j in range(train.shape[1]):
        le = (train[None, :, j] <= rows[:, None, j]).sum(axis=1)
        ge = (train[None, :, j] >= rows[:, None, j]).sum(axis=1)
        out += np.maximum(np.log((n + 1) / (le + 1)), np.log((n + 1) / (ge + 1)))
    return out


def test_scores_equal_counting_the_tails_at_training_values() -> None:
    rng = np.random.default_rng(1)
    train = rng.integers(0, 20, size=(300, 4)).astype(np.float64)
    detector = EcdfTailsDetector().fit(_matrix(train))
    np.testing.assert_allclose(detector.score(_matrix(train)), _brute_force(train, train),
                               rtol=1e-9)


def test_a_feature_with_many_values_keeps_bounded_knots_and_exact_tails() -> None:
    column = np.random.default_rng(2).normal(size=50_000)
    values, le, ge = column_knots(column, 256, 32)
    assert len(values) <= 256
    ordered = np.sort(column)
    np.testing.assert_array_equal(values[:32], ordered[:32])
    np.testing.assert_array_equal(values[-32:], ordered[-32:])
    np.testing.assert_array_equal(le[:32], np.arange(1, 33))
    np.testing.assert_array_equal(ge[-32:], np.arange(32, 0, -1))


def test_past_the_training_range_the_score_keeps_rising_up_to_the_cap() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(size=(1000, 2))
    detector = EcdfTailsDetector(EcdfTailsConfig(beyond_cap=10.0)).fit(_matrix(train))
    top = train[:, 0].max()
    probe = np.array([[top, 0.0], [top + 1, 0.0], [top + 3, 0.0], [top + 1e6, 0.0],
                      [top + 1e9, 0.0]])
    scores = detector.score(_matrix(probe))
    assert scores[0] < scores[1] < scores[2] < scores[3]
    assert scores[3] == pytest.approx(scores[4])  # capped: bounded, finite
    left, right = detector.feature_tails(_matrix(probe[3:4]))
    assert right[0, 0] == pytest.approx(np.log(1001) + 10.0)


def test_a_column_constant_in_training_stands_out_when_it_moves_one_unit() -> None:
    rng = np.random.default_rng(4)
    train = np.column_stack([rng.normal(size=(2000, 5)), np.zeros(2000)])
    detector = EcdfTailsDetector().fit(_matrix(train))
    test = train[:200].copy()
    test[17, 5] = 1.0  # one event of a type never seen in training
    scores = detector.score(_matrix(test))
    assert int(np.argmax(scores)) == 17
    _, right = detector.feature_tails(_matrix(test[17:18]))
    assert right[0, 5] == pytest.approx(np.log(2001) + 10.0)  # scale floor 0.1: 10 units


def test_a_session_scores_the_same_alone_and_after_a_reload(tmp_path) -> None:
    rng = np.random.default_rng(5)
    train, test = rng.lognormal(size=(800, 3)), rng.lognormal(size=(50, 3))
    detector = EcdfTailsDetector(EcdfTailsConfig(max_knots=64, tail_knots=8)).fit(
        _matrix(train))
    batch = detector.score(_matrix(test))
    alone = np.array([detector.score(_matrix(test[i:i + 1]))[0] for i in range(len(test))])
    np.testing.assert_array_equal(batch, alone)
    detector.save(tmp_path / "m")
    np.testing.assert_array_equal(load_detector(tmp_path / "m").score(_matrix(test)), batch)


def test_the_medians_are_kept_for_quick_reasons_and_older_models_load_without(tmp_path) -> None:
    from core.serve.quick_reasons import quick_reasons, scale_of

    rng = np.random.default_rng(6)
    train = rng.normal(10.0, 2.0, size=(400, 2))
    detector = EcdfTailsDetector(EcdfTailsConfig(max_knots=32, tail_knots=4)).fit(
        _matrix(train, ("n_events_log", "duration_log")))
    detector.save(tmp_path / "m")
    centre, scale = scale_of([load_detector(tmp_path / "m")])
    np.testing.assert_allclose(centre, np.median(train, axis=0))
    assert quick_reasons(("n_events_log", "duration_log"), np.array([10.0, 30.0]), centre,
                         scale)[0].startswith("session length")
    state, arrays = detector._get_state()  # a model saved before the medians were kept
    older = EcdfTailsDetector(detector.config)
    older._set_state(state, {k: v for k, v in arrays.items() if k != "centre"})
    assert older.centre_ is None and scale_of([older]) is None
    rows = _matrix(train[:5], ("n_events_log", "duration_log"))
    np.testing.assert_array_equal(older.score(rows), detector.score(rows))


def test_a_config_whose_tails_swallow_the_knots_is_refused() -> None:
    with pytest.raises(ConfigError, match="tail_knots must be under half"):
        EcdfTailsConfig(max_knots=16, tail_knots=8)


@pytest.mark.parametrize("kind", ["ecdf_tails", "ecdf_extremes"])
def test_features_that_grow_with_time_count_only_their_low_end(kind: str, tmp_path) -> None:
    """An account older than any in training is the clock, not a novelty; a brand-new one is
    still a surprise. Kept across a reload; a model saved without the list reads both tails."""
    from core.detectors import build_detector

    rng = np.random.default_rng(7)
    names = ("user_age_days_log", "duration_log")
    train = _matrix(np.column_stack([rng.uniform(1.0, 3.0, 500), rng.normal(5.0, 1.0, 500)]),
                    names)
    detector = build_detector(kind).fit(train)
    assert detector.left_only_ == ("user_age_days_log",)
    typical, older, brand_new = [[2.0, 5.0], [9.0, 5.0], [0.0, 5.0]]
    rows = _matrix(np.array([typical, older, brand_new]), names)
    score = detector.score(rows)
    assert score[1] <= score[0] + 1e-9 < score[2]
    detector.save(tmp_path / "m")
    np.testing.assert_array_equal(load_detector(tmp_path / "m").score(rows), score)
    state, arrays = detector._get_state()
    state.pop("left_only")
    before = type(detector)(detector.config)
    before._set_state(state, arrays)
    assert before.left_only_ == () and before.score(rows)[1] > score[0] + 5
