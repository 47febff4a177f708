"""A small scored store with a gbdt model on history features, and its events as Parquet
partitioned by day (the layout of an object store), shared by the scale tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest


@dataclass(frozen=True)
class ScaleData:
    store: Path
    events: Path
    """A folder of day=YYYY-MM-DD/part.parquet files."""
    models: dict[str, str]
    """detector -> model id (zscore, sequence_autoencoder, gbdt with history features)."""


@pytest.fixture(scope="package")
def scale_data(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> ScaleData:
    from core.app import models as app_models
    from core.app.data import open_store

    root = tmp_path_factory.mktemp("scale")
    store_path = root / "store.duckdb"
    shutil.copy(demo_store, store_path)
    shutil.copytree(demo_store.parent / "models", root / "models")
    with open_store(store_path) as store:
        trained = app_models.train(store, app_models.TrainRequest(
            "gbdt", quiet=True, config={"n_estimators": 20, "history_features": True}))
        app_models.score(store, trained.model_id)
        models = {d: store.models.latest_of(d) for d in ("zscore", "sequence_autoencoder")}
    models["gbdt"] = trained.model_id
    events = pd.read_parquet(demo_store.parent / "sample" / "events.parquet")
    folder = root / "events"
    for day, rows in events.groupby(events["ts"].dt.date.astype(str)):
        (folder / f"day={day}").mkdir(parents=True)
        rows.to_parquet(folder / f"day={day}" / "part.parquet", index=False)
    return ScaleData(store_path, folder, models)


def store_scores(data: ScaleData, model_id: str) -> pd.Series:
    from core.app.data import open_store

    with open_store(data.store, read_only=True) as store:
        return store.scores.of_model(model_id).set_index("session_id")["score"]
