"""Session scores from per-event scores, and the score of event types never seen in training.

The sequence detectors score each event (NaN on padding) and reduce a session's events to one
number here, so one impossible event among 20 is not averaged away unless the config asks for
the plain mean:

* ``mean``: the mean over the session's events (dilutes a single bad event by the length);
* ``max``: the worst event;
* ``topk``: the mean of the ``top_k`` worst events (all of them in a shorter session);
* ``mean+max``: (mean + max) / 2;
* ``mean+topk``: (mean + top-k mean) / 2.

A session without events scores 0. The default of each detector was chosen by
``benchmarks/sequence_aggregation.py`` (docs/FEATURES.md, "Sequence score aggregation").

>>> import numpy as np
>>> events = np.array([[1.0, 5.0, np.nan, 0.0], [np.nan, np.nan, np.nan, np.nan]])
>>> aggregate_events(events, "max").tolist(), aggregate_events(events, "topk", 2).tolist()
([5.0, 0.0], [3.0, 0.0])
"""

from __future__ import annotations

import numpy as np

from core.detectors.config import check_choice, check_int

AGGREGATIONS = ("mean", "max", "topk", "mean+max", "mean+topk")
UNKNOWN_FACTOR = 2.0
"""An event type never seen in training scores at least this many times the worst event
score seen on the training sessions (see ``unknown_floor``)."""
FLOOR_SAMPLE = 10_000
"""At most this many training sessions (the latest) are scored to learn the floor."""


def check_aggregation(aggregation: object, top_k: object) -> None:
    """ConfigError unless ``aggregation`` is one of AGGREGATIONS and ``top_k`` >= 1."""
    check_choice("aggregation", aggregation, AGGREGATIONS)
    check_int("top_k", top_k, 1, 4096)


def aggregate_events(events: np.ndarray, aggregation: str, top_k: int = 3) -> np.ndarray:
    """float64 (n,) session scores of (n, L) per-event scores, NaN where padded."""
    check_aggregation(aggregation, top_k)
    events = np.asarray(events, dtype=np.float64)
    real = ~np.isnan(events)
    counts = real.sum(axis=1)
    has_events = counts > 0
    mean = np.where(real, events, 0.0).sum(axis=1) / np.maximum(counts, 1)
    if aggregation == "mean":
        return mean
    worst_first = -np.sort(-np.where(real, events, -np.inf), axis=1)  # padding last
    if aggregation in ("max", "mean+max"):
        tail = np.where(has_events, worst_first[:, 0] if events.shape[1] else 0.0, 0.0)
    else:
        k = min(top_k, events.shape[1])
        top = worst_first[:, :k]
        tail = np.where(np.isfinite(top), top, 0.0).sum(axis=1) / np.maximum(
            np.minimum(counts, k), 1)
    return tail if aggregation in ("max", "topk") else 0.5 * (mean + tail)


def unknown_floor(training_events: np.ndarray) -> float:
    """The least score of an event type never seen in training: ``UNKNOWN_FACTOR`` times the
    worst per-event score on the training sessions (float64 (n, L), NaN on padding), and
    at least 1 so a model that fits its training data perfectly still gives it weight."""
    real = training_events[~np.isnan(training_events)]
    worst = float(real.max()) if real.size else 0.0
    return max(UNKNOWN_FACTOR * worst, 1.0)


def trained_vocab(vocab: dict[str, int], tokens: np.ndarray, mask: np.ndarray
                  ) -> dict[str, int]:
    """``vocab`` cut to the event types that occur in the training ``tokens`` (real events,
    ``mask``): a type the store knows but training never showed (one that first appears after
    the train end) then maps to UNKNOWN at scoring time, instead of to an untrained id."""
    seen = set(np.unique(np.asarray(tokens)[np.asarray(mask, dtype=bool)]).tolist())
    return {name: token for name, token in vocab.items() if token in seen}


def apply_unknown_floor(events: np.ndarray, unknown: np.ndarray, floor: float | None
                        ) -> np.ndarray:
    """``events`` with every ``unknown`` position raised to at least ``floor`` (in place)."""
    if floor is not None and unknown.any():
        events[unknown] = np.maximum(events[unknown], floor)
    return events
