"""Generated data shared by the sample-data tests (small configs, generated once per module)."""

from __future__ import annotations

import pandas as pd
import pytest

import sample_data
from sample_data import GeneratedData, GeneratorConfig

SMALL = GeneratorConfig(users=300, days=7, seed=11)
RATED = GeneratorConfig(users=1500, days=14, seed=5, anomaly_rate=0.06)


@pytest.fixture(scope="module")
def small() -> GeneratedData:
    return sample_data.generate(SMALL)


@pytest.fixture(scope="module")
def rated() -> GeneratedData:
    """Enough anomalous sessions (about 130) that every scenario shows its shape."""
    return sample_data.generate(RATED)


@pytest.fixture(scope="module")
def rated_events(rated: GeneratedData) -> pd.DataFrame:
    """``rated`` events (duplicates dropped, time order) with their session's scenario and
    their user's persona."""
    labels = rated.labels
    scenario = labels[labels["level"] == "session"].set_index("entity_id")["scenario"]
    events = rated.events.drop_duplicates("event_id").sort_values(["ts", "event_id"])
    events = events.join(scenario.rename("scenario"), on="session_id")
    return events.join(rated.users.set_index("user_id")[["persona", "home_country"]],
                       on="user_id")
