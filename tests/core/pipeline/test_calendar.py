"""A training window shorter than a calendar cycle: the column is held, and does not count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.datasets import FeatureMatrix
from core.ingest import ingest_events
from core.pipeline import train_model
from core.pipeline.calendar import hold_short_cycles
from core.pipeline.registry import load_model, model_row
from core.store import Store


def test_columns_with_a_cycle_longer_than_the_window_are_held_at_their_median():
    names = ("a", "is_weekend", "hour_sin", "is_night")
    values = np.array([[1, 0, 0.1, 0], [2, 0, 0.5, 0], [3, 1, 0.9, 1]], np.float32)
    data = FeatureMatrix(np.array(["s1", "s2", "s3"], object), values, names)
    three_days = pd.to_datetime(["2026-01-02", "2026-01-03", "2026-01-05"])  # Fri..Mon
    held, which = hold_short_cycles(data, three_days)
    assert which == ["is_weekend"]
    assert held.values[:, 1].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(held.values[:, [0, 2, 3]], values[:, [0, 2, 3]])
    same, none = hold_short_cycles(data, pd.to_datetime(["2026-01-01", "2026-01-05",
                                                         "2026-01-09"]))  # 8 days
    assert none == [] and same is data
    hours = pd.to_datetime(["2026-01-05 09:00", "2026-01-05 12:00", "2026-01-05 17:00"])
    assert hold_short_cycles(data, hours)[1] == ["is_weekend", "hour_sin", "is_night"]


@pytest.fixture(scope="module")
def monday_to_saturday(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users browse every two hours from Monday 00:00 to the next Monday; the default train
    end (70% of the time) falls on Saturday, so training sees a few Saturday sessions."""
    rng = np.random.default_rng(0)
    rows = []
    start = pd.Timestamp("2026-01-05")  # a Monday
    for step in range(84):  # every 2 h for 7 days
        for u in range(12):
            ts = start + pd.Timedelta(hours=2 * step, minutes=int(rng.integers(0, 50)))
            for k in range(int(rng.integers(2, 5))):
                rows.append((f"u{u}", ts + pd.Timedelta(seconds=30 * k),
                             ["view", "search", "add_to_cart"][k % 3]))
    path = tmp_path_factory.mktemp("calendar") / "c.duckdb"
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame(rows, columns=["user_id", "ts", "event_type"]))
    return path


def test_a_short_window_does_not_make_weekends_anomalous(monday_to_saturday: Path, tmp_path):
    with Store.open(monday_to_saturday) as store:
        trained = train_model(store, "zscore", quiet=True, models_dir=tmp_path)
        metrics = json.loads(model_row(store, trained.model_id)["metrics"])
        detector = load_model(store, trained.model_id).detector
    assert metrics["calendar_held"] == ["is_weekend"]
    assert any(n.startswith("left out is_weekend: the training window is shorter")
               for n in trained.notes)
    j = detector.feature_names_.index("is_weekend")
    assert detector.scale_[j] >= 1e5  # left out of the score
    k = detector.feature_names_.index("hour_sin")  # six days cover the day: learned
    assert detector.scale_[k] < 10
