"""Small synthetic inputs for the detector tests (built once per module, seeded)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from core.datasets import EventSequences, FeatureMatrix
from core.detectors import available_detectors, get_detector_class

# Tiny configs (transformers' "tiny config" idea): each detector class carries its own
# (``Detector.tiny_config``), so a new detector is covered by the contract test the day it is
# registered, with no edit here.
TINY_CONFIGS: dict[str, dict[str, object]] = {
    name: dict(get_detector_class(name).tiny_config) for name in available_detectors()}


def contract_labels(data: FeatureMatrix | EventSequences) -> np.ndarray:
    """Deterministic 0/1 labels (about 20% positive) for fitting supervised detectors in the
    contract test: the top fifth of the first feature, or sessions with an early type_0."""
    if isinstance(data, FeatureMatrix):
        first = data.values[:, 0]
        return (first > np.quantile(first, 0.8)).astype(float)
    return (data.tokens[:, :3] == 2).any(axis=1).astype(float)


def make_features(n: int, n_features: int = 8, seed: int = 0, n_factors: int = 2) -> FeatureMatrix:
    """Correlated features: a few latent factors mixed linearly, plus noise. The mixing is the
    same for every ``seed``, so different seeds are samples of one distribution."""
    mixing = np.random.default_rng(12345).normal(size=(n_factors, n_features))
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, n_factors)) @ mixing + 0.1 * rng.normal(size=(n, n_features))
    return FeatureMatrix(
        np.array([f"s{seed}-{i}" for i in range(n)], dtype=object),
        values.astype(np.float32),
        tuple(f"feature_{j}" for j in range(n_features)),
    )


def make_sequences(
    n: int, max_len: int = 16, n_types: int = 10, n_channels: int = 1, seed: int = 0,
    left_padded: bool = False,
) -> EventSequences:
    """Sessions of 1..max_len events from a sticky Markov chain, with numeric channels."""
    rng = np.random.default_rng(seed)
    tokens = np.zeros((n, max_len), dtype=np.int64)
    lengths = rng.integers(1, max_len + 1, size=n)
    current = rng.integers(2, n_types + 2, size=n)
    for t in range(max_len):
        tokens[:, t] = current
        jump = rng.random(n) < 0.5
        current = np.where(jump, (current - 2 + 1) % n_types + 2, current)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    tokens[~mask] = 0
    numeric = rng.normal(size=(n, max_len, n_channels)).astype(np.float32)
    numeric[~mask] = 0.0
    if left_padded:  # the same events, moved to the end of each row
        shift = (max_len - lengths)[:, None] + np.arange(max_len)[None, :]
        source = shift % max_len
        back = np.argsort(source, axis=1)
        tokens = np.take_along_axis(tokens, back, axis=1)
        numeric = np.take_along_axis(numeric, back[:, :, None], axis=1)
        mask = np.take_along_axis(mask, back, axis=1)
    event_ids = np.where(mask, np.char.add("e", np.arange(n * max_len).astype(str)).reshape(
        n, max_len), "").astype(object)
    return EventSequences(
        np.array([f"s{seed}-{i}" for i in range(n)], dtype=object), tokens, numeric, mask,
        event_ids, {f"type_{k}": k + 2 for k in range(n_types)},
        tuple(f"channel_{c}" for c in range(n_channels)),
    )


@pytest.fixture(scope="module")
def features() -> FeatureMatrix:
    return make_features(400)


@pytest.fixture(scope="module")
def sequences() -> EventSequences:
    return make_sequences(300)


@pytest.fixture(scope="module")
def feature_factory() -> Callable[..., FeatureMatrix]:
    return make_features


@pytest.fixture(scope="module")
def sequence_factory() -> Callable[..., EventSequences]:
    return make_sequences


@pytest.fixture(scope="module")
def labels_for() -> Callable[[FeatureMatrix | EventSequences], np.ndarray]:
    return contract_labels


@pytest.fixture(scope="module")
def tiny_configs() -> dict[str, dict[str, object]]:
    return TINY_CONFIGS


def _with_planted(normal: FeatureMatrix, anomalies: np.ndarray) -> tuple[FeatureMatrix, np.ndarray]:
    values = np.vstack([normal.values, anomalies.astype(np.float32)])
    ids = np.array([f"t{i}" for i in range(len(values))], dtype=object)
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalies))]
    return FeatureMatrix(ids, values, normal.names), labels


@pytest.fixture(scope="module")
def planted_extremes() -> tuple[FeatureMatrix, FeatureMatrix, np.ndarray]:
    """(train, test, labels): test anomalies sit 6 std out on two features."""
    train, normal = make_features(2000, seed=1), make_features(500, seed=2)
    normal = FeatureMatrix(normal.session_ids, normal.values, train.names)
    rng = np.random.default_rng(3)
    anomalies = make_features(40, seed=4).values.copy()
    spread = train.values.std(axis=0)
    for row in anomalies:
        cols = rng.choice(row.size, size=2, replace=False)
        row[cols] += 6 * spread[cols] * rng.choice([-1, 1], size=2)
    test, labels = _with_planted(normal, anomalies)
    return train, test, labels


@pytest.fixture(scope="module")
def planted_correlation_breaks() -> tuple[FeatureMatrix, FeatureMatrix, np.ndarray]:
    """(train, test, labels): each anomalous feature is a plausible value on its own, but the
    features no longer move together (columns shuffled independently)."""
    train, normal = make_features(2000, seed=1), make_features(500, seed=2)
    normal = FeatureMatrix(normal.session_ids, normal.values, train.names)
    rng = np.random.default_rng(5)
    source = make_features(40, seed=6).values
    anomalies = np.column_stack([rng.permutation(col) for col in source.T])
    test, labels = _with_planted(normal, anomalies)
    return train, test, labels


def make_markov_sessions(
    n: int, seed: int, anomaly_rate: float = 0.0, n_types: int = 300, n_successors: int = 3,
    min_len: int = 12, max_len: int = 24, width: int = 32,
) -> tuple[EventSequences, np.ndarray]:
    """Sessions walking a fixed sparse Markov chain over ``n_types`` event types (no numeric
    channels, no times beyond order). An anomalous session takes one random jump that the chain
    never makes (a rare transition) somewhere in its middle. Returns (sequences, labels)."""
    successors = np.random.default_rng(99).integers(0, n_types, size=(n_types, n_successors))
    rng = np.random.default_rng(seed)
    tokens = np.zeros((n, width), dtype=np.int64)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    labels = rng.random(n) < anomaly_rate
    jump_at = rng.integers(4, min_len - 2, size=n)
    current = rng.integers(0, n_types, size=n)
    for t in range(width):
        tokens[:, t] = current + 2
        following = successors[current, rng.integers(0, n_successors, size=n)]
        current = np.where(labels & (jump_at == t), rng.integers(0, n_types, size=n), following)
    mask = np.arange(width)[None, :] < lengths[:, None]
    tokens[~mask] = 0
    sequences = EventSequences(
        np.array([f"m{seed}-{i}" for i in range(n)], dtype=object), tokens,
        np.zeros((n, width, 0), dtype=np.float32), mask, np.full((n, width), "", dtype=object),
        {f"type_{k}": k + 2 for k in range(n_types)}, (),
    )
    return sequences, labels.astype(int)


@pytest.fixture(scope="module")
def markov_factory() -> Callable[..., tuple[EventSequences, np.ndarray]]:
    return make_markov_sessions


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny nets train faster on one thread (and ten times faster on a loaded machine); a
    module opts in with an autouse fixture that requests this one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
