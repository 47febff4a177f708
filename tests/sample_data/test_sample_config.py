from __future__ import annotations

import dataclasses

import pytest

from core.errors import ConfigError
from sample_data import SCENARIOS, GeneratorConfig


def test_defaults_are_the_demo_set() -> None:
    config = GeneratorConfig()
    assert (config.users, config.days, config.seed, config.anomaly_rate) == (5000, 30, 7, 0.02)
    assert config.scenarios == SCENARIOS
    assert config.start_weekday == 1  # 2026-09-01 is a Tuesday


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        GeneratorConfig().users = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 3}, "users must be >= 10, got 3. Pass --users 10 or more."),
        ({"users": 2.5}, "users must be an integer"),
        ({"days": 0}, "days must be between 1 and 3660, got 0"),
        ({"anomaly_rate": 0.9}, "anomaly_rate must be between 0 and 0.5, got 0.9"),
        ({"anomaly_rate": -0.1}, "anomaly_rate must be between 0 and 0.5"),
        ({"start": "someday"}, "start must be a date like '2026-09-01', got 'someday'"),
        ({"scenarios": ("card_testing", "phishing")}, "scenarios must be distinct names from"),
        ({"duplicate_rate": 0.5}, "duplicate_rate must be between 0 and 0.2"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
    ],
)
def test_invalid_values_say_what_to_do(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        GeneratorConfig(**kwargs)
    assert message in str(err.value)
    assert "Pass" in str(err.value)


def test_scenarios_list_becomes_a_tuple() -> None:
    config = GeneratorConfig(scenarios=["card_testing"])  # type: ignore[arg-type]
    assert config.scenarios == ("card_testing",)
