"""What the torch detectors share through ``TorchDetector``: one fit skeleton, and models
saved before the conversion (a plain ``TrainingHistory`` in config.json) still load."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from core.datasets import EventSequences, FeatureMatrix
from core.detectors import available_detectors, build_detector, get_detector_class
from core.detectors.base import CONFIG_FILE, load_detector
from core.detectors.torch_detector import ComponentHistory, TorchDetector

CONVERTED = ("autoencoder", "sequence_autoencoder", "transformer_mlm", "mlp", "cnn_gru",
             "transformer")


def test_every_torch_detector_uses_the_shared_skeleton() -> None:
    torch_kinds = {name for name in available_detectors()
                   if issubclass(get_detector_class(name), TorchDetector)}
    assert set(CONVERTED) | {"vae", "sequence_vae"} <= torch_kinds
    for name in torch_kinds:  # fit, save and load come from the base
        cls = get_detector_class(name)
        assert "_get_state" not in vars(cls) and "_set_state" not in vars(cls), name


@pytest.mark.parametrize("kind", CONVERTED)
def test_a_model_saved_with_a_plain_history_loads_and_scores_the_same(
    kind: str, tmp_path: Path, features: FeatureMatrix, sequences: EventSequences,
    labels_for: Callable[[FeatureMatrix | EventSequences], np.ndarray],
) -> None:
    cls = get_detector_class(kind)
    data = features if cls.input_kind == "features" else sequences
    detector = build_detector(kind, **cls.tiny_config)
    detector.fit(data, labels_for(data) if cls.requires_labels else None)
    detector.save(tmp_path)
    document = json.loads((tmp_path / CONFIG_FILE).read_text(encoding="utf-8"))
    for key in ("components", "val_components"):  # what the detectors wrote before
        del document["state"]["history"][key]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(document), encoding="utf-8")

    loaded = load_detector(tmp_path)

    np.testing.assert_array_equal(loaded.score(data), detector.score(data))
    assert isinstance(loaded.history_, ComponentHistory)
    assert loaded.history_ == detector.history_
    assert loaded.history_.n_steps == detector.history_.n_steps > 0
