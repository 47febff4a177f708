"""The contract every registered detector keeps (scikit-learn's common checks, in small)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.datasets import EventSequences, FeatureMatrix
from core.detectors import Detector, available_detectors, build_detector, load_detector
from core.errors import ModelError, NotFittedError


def _tiny(name: str, tiny_configs: dict[str, dict[str, object]]) -> Detector[Any]:
    if not tiny_configs.get(name):
        pytest.fail(f"set tiny_config on the new detector {name!r}: the config overrides of a "
                    "tiny, fast model (see Detector.tiny_config)")
    return build_detector(name, **tiny_configs[name])


def _data(detector: Detector[Any], features: FeatureMatrix, sequences: EventSequences) -> Any:
    return features if detector.input_kind == "features" else sequences


def _fit(detector: Detector[Any], data: Any, labels_for: Any) -> Any:
    """Supervised detectors get the contract's deterministic labels; the rest fit on data."""
    if detector.requires_labels:
        return detector.fit(data, labels_for(data))
    return detector.fit(data)


@pytest.fixture(scope="module", params=available_detectors())
def fitted(request: pytest.FixtureRequest, tiny_configs: dict[str, dict[str, object]],
           features: FeatureMatrix, sequences: EventSequences,
           tmp_path_factory: pytest.TempPathFactory, labels_for: Any) -> dict[str, Any]:
    """Each detector fitted once, with its scores and a saved copy."""
    detector = _tiny(request.param, tiny_configs)
    data = _data(detector, features, sequences)
    returned = _fit(detector, data, labels_for)
    folder = tmp_path_factory.mktemp(request.param) / "model"
    detector.save(folder)
    return {"name": request.param, "detector": detector, "returned": returned, "data": data,
            "scores": detector.score(data), "folder": folder}


def test_fit_returns_self(fitted: dict[str, Any]) -> None:
    assert fitted["returned"] is fitted["detector"]
    assert fitted["detector"].is_fitted


def test_scores_are_finite_float64_per_session(fitted: dict[str, Any]) -> None:
    scores = fitted["scores"]
    assert scores.dtype == np.float64
    assert scores.shape == (len(fitted["data"]),)
    assert np.isfinite(scores).all()


def test_score_before_fit_says_what_to_call(
    fitted: dict[str, Any], tiny_configs: dict[str, dict[str, object]],
) -> None:
    with pytest.raises(NotFittedError, match="fit"):
        _tiny(fitted["name"], tiny_configs).score(fitted["data"])


def test_save_then_load_gives_identical_scores(fitted: dict[str, Any]) -> None:
    loaded = load_detector(fitted["folder"])
    assert type(loaded) is type(fitted["detector"])
    assert loaded.config == fitted["detector"].config
    np.testing.assert_allclose(loaded.score(fitted["data"]), fitted["scores"], rtol=1e-12, atol=0)
    assert type(fitted["detector"]).load(fitted["folder"]).is_fitted
    if loaded.input_kind == "sequences" and hasattr(loaded, "score_events"):
        np.testing.assert_allclose(loaded.score_events(fitted["data"]),
                                   fitted["detector"].score_events(fitted["data"]), rtol=1e-12)


def test_same_seed_gives_same_scores(
    fitted: dict[str, Any], tiny_configs: dict[str, dict[str, object]], labels_for: Any,
) -> None:
    again = _fit(_tiny(fitted["name"], tiny_configs), fitted["data"], labels_for)
    np.testing.assert_allclose(again.score(fitted["data"]), fitted["scores"], rtol=1e-6)


def test_row_order_only_permutes_scores(fitted: dict[str, Any]) -> None:
    order = np.random.default_rng(1).permutation(len(fitted["data"]))
    permuted = fitted["detector"].score(fitted["data"].take(order))
    np.testing.assert_allclose(permuted, fitted["scores"][order], rtol=1e-5, atol=1e-7)


def test_mismatched_inputs_raise_model_error(fitted: dict[str, Any]) -> None:
    detector, data = fitted["detector"], fitted["data"]
    if isinstance(data, FeatureMatrix):
        names = ("renamed", *data.names[1:])
        wrong: Any = FeatureMatrix(data.session_ids, data.values, names)
        with pytest.raises(ModelError, match=r"missing \['feature_0'\].*extra \['renamed'\]"):
            detector.score(wrong)
        fewer = FeatureMatrix(data.session_ids, data.values[:, 1:], data.names[1:])
        with pytest.raises(ModelError, match="retrain|Retrain"):
            detector.score(fewer)
    else:
        wrong = EventSequences(data.session_ids, data.tokens, data.numeric, data.mask,
                               data.event_ids, data.vocab, ("other",) * data.numeric.shape[2])
        with pytest.raises(ModelError, match="channels"):
            detector.score(wrong)


def test_wrong_input_kind_raises_model_error(
    fitted: dict[str, Any], features: FeatureMatrix, sequences: EventSequences,
) -> None:
    other = sequences if fitted["detector"].input_kind == "features" else features
    with pytest.raises(ModelError, match="must be a"):
        fitted["detector"].score(other)


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    target.mkdir()
    for file in folder.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    return target


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing", "bad_json", "kind"])
def test_damaged_model_folder_raises_model_error(
    fitted: dict[str, Any], tmp_path: Path, damage: str,
) -> None:
    folder = _copy(fitted["folder"], tmp_path)
    weights, config = folder / "model.safetensors", folder / "config.json"
    raw = bytearray(weights.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
        weights.write_bytes(bytes(raw))
    elif damage == "truncate":
        weights.write_bytes(bytes(raw[: len(raw) // 3]))
    elif damage == "missing":
        weights.unlink()
    elif damage == "bad_json":
        config.write_text(config.read_text()[:-10])
    else:
        document = json.loads(config.read_text())
        document["kind"] = "no_such_detector"
        config.write_text(json.dumps(document))
    with pytest.raises(ModelError):
        load_detector(folder)


def test_weights_that_do_not_fit_the_config_raise_model_error(
    fitted: dict[str, Any], tmp_path: Path,
) -> None:
    """A consistent checksum but arrays of the wrong shape (e.g. hand-edited files)."""
    from safetensors.numpy import load_file, save_file

    from core.detectors.base import _sha256

    folder = _copy(fitted["folder"], tmp_path)
    weights = folder / "model.safetensors"
    arrays = load_file(str(weights))
    first = sorted(arrays)[0]
    arrays[first] = np.zeros((3, 1, 7), dtype=arrays[first].dtype)
    save_file(arrays, str(weights))
    config = folder / "config.json"
    document = json.loads(config.read_text())
    document["weights_sha256"] = _sha256(weights)
    config.write_text(json.dumps(document))
    with pytest.raises(ModelError, match="shape|must"):
        load_detector(folder)


def test_save_replaces_an_existing_model(fitted: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "model"
    fitted["detector"].save(folder)
    (folder / "stale.txt").write_text("old")
    fitted["detector"].save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folders left
