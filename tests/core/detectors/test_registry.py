"""Registry lookups and config validation messages."""

from __future__ import annotations

import pytest

from core.detectors import (
    AutoencoderConfig,
    AutoencoderDetector,
    IsolationForestConfig,
    SequenceAutoencoderConfig,
    ZScoreConfig,
    ZScoreDetector,
    available_detectors,
    build_detector,
    get_detector_class,
)
from core.errors import ConfigError, ModelError


def test_every_detector_is_registered_with_its_kind() -> None:
    assert set(available_detectors()) >= {
        "autoencoder", "sequence_autoencoder", "isolation_forest", "zscore"}
    for name in available_detectors():
        cls = get_detector_class(name)
        assert cls.kind == name
        assert cls.input_kind in ("features", "sequences")


def test_unknown_detector_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="autoencoder, .*isolation_forest.*got 'nope'"):
        get_detector_class("nope")


def test_build_detector_applies_overrides_and_rejects_unknown_fields() -> None:
    detector = build_detector("autoencoder", latent_dim=3, hidden_dims=[8])
    assert isinstance(detector, AutoencoderDetector)
    assert detector.config.latent_dim == 3 and detector.config.hidden_dims == (8,)
    with pytest.raises(ConfigError, match="must be among .*latent_dim.*got laten_dim"):
        build_detector("autoencoder", laten_dim=3)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: AutoencoderConfig(latent_dim=0), r"latent_dim must be an integer >= 1, got 0\."),
    (lambda: AutoencoderConfig(hidden_dims=()), "hidden_dims must be a non-empty"),
    (lambda: AutoencoderConfig(device="tpu"), "device must be one of 'auto', 'cpu', 'cuda'"),
    (lambda: AutoencoderConfig(validation_fraction=0.9), r"validation_fraction must be .*0\.5"),
    (lambda: SequenceAutoencoderConfig(cell="rnn"), "cell must be one of 'gru', 'lstm'"),
    (lambda: SequenceAutoencoderConfig(aggregation="median"), "aggregation must be one of"),
    (lambda: IsolationForestConfig(max_samples=1), "max_samples must be an integer >= 2"),
    (lambda: IsolationForestConfig(max_features=0.0), "max_features must be a number in"),
    (lambda: ZScoreConfig(top_k=0), "top_k must be an integer >= 1"),
    (lambda: ZScoreConfig(scaling="minmax"), "scaling must be one of"),
])
def test_config_errors_say_what_and_what_to_do(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        make()  # type: ignore[operator]
    assert "." in str(info.value).split(", got ")[-1]  # ends with what to do


def test_configs_are_frozen_and_round_trip_through_json_dicts() -> None:
    config = SequenceAutoencoderConfig(hidden_dim=8)
    with pytest.raises(AttributeError):
        config.hidden_dim = 9  # type: ignore[misc]
    assert SequenceAutoencoderConfig.from_dict(config.to_dict()) == config
    assert AutoencoderConfig.from_dict(AutoencoderConfig().to_dict()) == AutoencoderConfig()


def test_detector_rejects_a_config_of_another_detector() -> None:
    with pytest.raises(ConfigError, match="must be a ZScoreConfig"):
        ZScoreDetector(AutoencoderConfig())  # type: ignore[arg-type]


def test_load_through_the_wrong_class_names_the_kind(tmp_path, features) -> None:  # type: ignore[no-untyped-def]
    ZScoreDetector().fit(features).save(tmp_path / "z")
    with pytest.raises(ModelError, match="must be a autoencoder detector, got 'zscore'"):
        AutoencoderDetector.load(tmp_path / "z")
