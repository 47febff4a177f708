"""Labelled synthetic inputs for the supervised detector tests (seeded, no store)."""

from __future__ import annotations

import numpy as np

from core.datasets import EventSequences, FeatureMatrix

BURST_TOKEN = 2  # "type_0"
BURST_LENGTH = 3


def make_labelled_sequences(
    n: int, seed: int, rate: float = 0.1, max_len: int = 24, n_types: int = 8,
    n_channels: int = 2,
) -> tuple[EventSequences, np.ndarray, np.ndarray]:
    """(sequences, y, event_labels). Sessions of 6..max_len events walk a sticky chain with
    Gaussian numeric channels; an anomalous session (``rate`` of them) holds a burst of three
    ``type_0`` events whose first channel spikes (+3), somewhere in the session. Event labels
    are 1 on the burst and 0 elsewhere; NaN on padding."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(6, max_len + 1, size=n)
    tokens = np.zeros((n, max_len), dtype=np.int64)
    current = rng.integers(2, n_types + 2, size=n)
    for t in range(max_len):
        tokens[:, t] = current
        jump = rng.random(n) < 0.5
        current = np.where(jump, rng.integers(2, n_types + 2, size=n), current)
    numeric = rng.normal(size=(n, max_len, n_channels)).astype(np.float32)
    y = (rng.random(n) < rate).astype(float)
    events = np.zeros((n, max_len))
    starts = rng.integers(0, lengths - BURST_LENGTH + 1)
    for row in np.flatnonzero(y):
        cols = slice(starts[row], starts[row] + BURST_LENGTH)
        tokens[row, cols] = BURST_TOKEN
        numeric[row, cols, 0] = 3.0 + 0.3 * rng.normal(size=BURST_LENGTH)
        events[row, cols] = 1.0
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    tokens[~mask] = 0
    numeric[~mask] = 0.0
    events[~mask] = np.nan
    event_ids = np.where(mask, np.char.add(f"e{seed}-", np.arange(n * max_len).astype(str))
                         .reshape(n, max_len), "").astype(object)
    data = EventSequences(
        np.array([f"l{seed}-{i}" for i in range(n)], dtype=object), tokens, numeric, mask,
        event_ids, {f"type_{k}": k + 2 for k in range(n_types)},
        tuple(f"channel_{c}" for c in range(n_channels)))
    return data, y, events


def make_labelled_features(n: int, seed: int, rate: float = 0.1, n_features: int = 8,
                           ) -> tuple[FeatureMatrix, np.ndarray]:
    """(features, y): Gaussian features; anomalies are shifted by +2 on features 0 and 1 (a
    plausible value on each, rare on both together)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, n_features))
    y = (rng.random(n) < rate).astype(float)
    values[y == 1, :2] += 2.0
    return FeatureMatrix(np.array([f"f{seed}-{i}" for i in range(n)], dtype=object),
                         values.astype(np.float32),
                         tuple(f"feature_{j}" for j in range(n_features))), y
