"""Session scores from per-event scores: each aggregation, padding anywhere, the unknown floor."""

from __future__ import annotations

import numpy as np
import pytest

from core.detectors._aggregate import (
    AGGREGATIONS,
    UNKNOWN_FACTOR,
    aggregate_events,
    apply_unknown_floor,
    unknown_floor,
)
from core.errors import ConfigError

NAN = np.nan
# Row 0: 4 events (padding between them), row 1: one event, row 2: none, row 3: 2 events.
EVENTS = np.array([
    [1.0, NAN, 4.0, 0.0, NAN, 7.0],
    [NAN, NAN, 2.5, NAN, NAN, NAN],
    [NAN, NAN, NAN, NAN, NAN, NAN],
    [3.0, 1.0, NAN, NAN, NAN, NAN],
])
EXPECTED = {
    "mean": [3.0, 2.5, 0.0, 2.0],
    "max": [7.0, 2.5, 0.0, 3.0],
    "topk": [(7.0 + 4.0 + 1.0) / 3, 2.5, 0.0, 2.0],  # k = 3; fewer events: all of them
    "mean+max": [5.0, 2.5, 0.0, 2.5],
    "mean+topk": [(3.0 + 4.0) / 2, 2.5, 0.0, 2.0],
}


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_each_aggregation_on_padded_rows(aggregation: str) -> None:
    got = aggregate_events(EVENTS, aggregation, top_k=3)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, EXPECTED[aggregation])


def test_top_k_of_one_is_the_max_and_k_beyond_the_width_is_the_mean() -> None:
    np.testing.assert_allclose(aggregate_events(EVENTS, "topk", top_k=1), EXPECTED["max"])
    np.testing.assert_allclose(aggregate_events(EVENTS, "topk", top_k=50), EXPECTED["mean"])


def test_one_bad_event_among_many_is_not_diluted() -> None:
    events = np.zeros((1, 40))
    events[0, 17] = 10.0
    assert aggregate_events(events, "mean")[0] == pytest.approx(0.25)
    assert aggregate_events(events, "max")[0] == 10.0
    assert aggregate_events(events, "topk", top_k=2)[0] == 5.0


def test_an_empty_width_scores_zero() -> None:
    assert aggregate_events(np.empty((2, 0)), "max").tolist() == [0.0, 0.0]


def test_unknown_choices_are_refused() -> None:
    with pytest.raises(ConfigError, match="aggregation must be one of 'mean', 'max'"):
        aggregate_events(EVENTS, "median")
    with pytest.raises(ConfigError, match="top_k must be an integer in"):
        aggregate_events(EVENTS, "topk", top_k=0)


def test_unknown_floor_is_a_multiple_of_the_worst_training_event() -> None:
    assert unknown_floor(EVENTS) == UNKNOWN_FACTOR * 7.0
    assert unknown_floor(np.full((2, 3), NAN)) == 1.0  # nothing seen: still above 0
    events = EVENTS.copy()
    unknown = np.zeros(EVENTS.shape, dtype=bool)
    unknown[0, 3] = unknown[0, 5] = True
    out = apply_unknown_floor(events, unknown, 10.0)
    assert out[0, 3] == 10.0 and out[0, 5] == 10.0  # raised, never lowered
    assert apply_unknown_floor(np.array([[20.0]]), np.array([[True]]), 10.0)[0, 0] == 20.0
    np.testing.assert_array_equal(np.isnan(out), np.isnan(EVENTS))
