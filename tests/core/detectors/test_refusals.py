"""Data a detector cannot learn from is refused by fit, naming what to use instead."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.datasets import EventSequences, FeatureMatrix
from core.detectors import available_detectors, build_detector, get_detector_class
from core.detectors._refusals import unsupervised_detectors
from core.errors import ConfigError, ModelError

SEQUENCE_MODELS = tuple(name for name in available_detectors()
                        if get_detector_class(name).input_kind == "sequences")


def _with_tokens(data: EventSequences, tokens: np.ndarray, mask: np.ndarray) -> EventSequences:
    return EventSequences(data.session_ids, np.where(mask, tokens, 0), data.numeric, mask,
                          data.event_ids, data.vocab, data.channel_names)


def test_the_alternatives_come_from_the_registry() -> None:
    names = unsupervised_detectors().split(", ")
    assert names == sorted(n for n in available_detectors()
                           if not get_detector_class(n).requires_labels)
    assert {"autoencoder", "transformer_mlm"} <= set(names) and "mlp" not in names
    assert unsupervised_detectors("features", exclude=("zscore",)).split(", ") == sorted(
        n for n in names if get_detector_class(n).input_kind == "features" and n != "zscore")


def test_transformer_mlm_refuses_a_single_event_type(
    sequences: EventSequences, tiny_configs: dict[str, dict[str, object]],
) -> None:
    one_type = _with_tokens(sequences, np.full(sequences.tokens.shape, 3), sequences.mask)
    detector = build_detector("transformer_mlm", **tiny_configs["transformer_mlm"])
    with pytest.raises(ConfigError, match="at least 2 event types, got 1") as caught:
        detector.fit(one_type)
    text = str(caught.value)
    assert "sequence_autoencoder" in text and "isolation_forest" in text
    assert "transformer_mlm," not in text  # not itself


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_models_refuse_sessions_of_one_event(
    name: str, sequences: EventSequences, tiny_configs: dict[str, dict[str, object]],
) -> None:
    first_only = np.zeros_like(sequences.mask)
    first_only[:, 0] = True
    data = _with_tokens(sequences, sequences.tokens, first_only)
    detector = build_detector(name, **tiny_configs[name])
    y = (np.arange(len(data)) % 5 == 0).astype(float)
    kwargs: dict[str, Any] = {"y": y} if detector.requires_labels else {}
    with pytest.raises(ConfigError, match=f"`{name}` must be trained on sessions of at least "
                                          "2 events, got at most one event") as caught:
        detector.fit(data, **kwargs)
    assert unsupervised_detectors("features") in str(caught.value)


@pytest.mark.parametrize("name", ["mlp", "cnn_gru", "transformer"])
def test_classifiers_refuse_labels_that_are_all_normal(
    name: str, features: FeatureMatrix, sequences: EventSequences,
    tiny_configs: dict[str, dict[str, object]],
) -> None:
    detector = build_detector(name, **tiny_configs[name])
    data: Any = features if detector.input_kind == "features" else sequences
    with pytest.raises(ModelError, match=f"labels y of '{name}' must mark some sessions "
                                         f"anomalous .1., got labels for all {len(data)} "
                                         "sessions and none anomalous") as caught:
        detector.fit(data, np.zeros(len(data)))
    assert unsupervised_detectors() in str(caught.value)
