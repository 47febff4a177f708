"""Data a detector cannot learn from: refused by ``fit`` with what to use instead.

The alternatives are read off the registry (``requires_labels``, ``input_kind``), so a new
detector is named the day it is registered.
"""

from __future__ import annotations

import numpy as np

from core.datasets import EventSequences
from core.errors import ConfigError


def unsupervised_detectors(input_kind: str | None = None, exclude: tuple[str, ...] = ()) -> str:
    """Comma-separated names of the registered detectors that learn without labels (of
    ``input_kind`` when given), ``exclude`` left out (``registry.unsupervised_detectors``)."""
    from core.detectors.registry import unsupervised_detectors as learn_without_labels

    return ", ".join(learn_without_labels(input_kind, exclude))


def refuse_one_event_sessions(data: EventSequences, kind: str) -> None:
    """ConfigError when no session of ``data`` has two events: a sequence model would learn
    single events, not an order, and the session features describe those better."""
    lengths = np.asarray(data.mask, dtype=bool).sum(axis=1)
    if len(lengths) and int(lengths.max()) < 2:
        raise ConfigError(
            f"`{kind}` must be trained on sessions of at least 2 events, got at most one event "
            f"in each of the {len(lengths):,} sessions, so there is no event order to learn. "
            "Use a detector on the session features instead: "
            f"{unsupervised_detectors('features')} (or mlp with labels)."
        )


def refuse_one_event_type(tokens: np.ndarray, mask: np.ndarray, kind: str) -> None:
    """ConfigError when every real event of the training data has the same token: a
    masked-event model would name it with certainty and score every session the same."""
    seen = np.unique(np.asarray(tokens)[np.asarray(mask, dtype=bool)])
    if len(seen) < 2:
        others = unsupervised_detectors(exclude=(kind,))
        raise ConfigError(
            f"`{kind}` must be trained on at least 2 event types, got {len(seen)}: guessing "
            "a hidden event's type is then trivial and every session would get the same "
            f"score. Use {others} instead (sequence_autoencoder also learns the gaps, "
            "amounts and novelty channels of each event)."
        )
