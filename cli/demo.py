"""Building the demo store: generate sample data, ingest it, train and score detectors.

The sample data comes from ``sample_data``; everything else is a ``core.app`` use case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.app import data as app_data
from core.app import models as app_models
from core.app import user360

log = logging.getLogger(__name__)

SAMPLE_CURRENCY = "EUR"
"""The sample data's prices are euros (sample_data/catalogue.py); set as the display currency."""

DEMO_DETECTORS = ("zscore", "isolation_forest", "ecdf_tails", "autoencoder",
                  "sequence_autoencoder", "vae", "sequence_vae", "mlp", "gbdt", "transformer",
                  "ensemble")
"""Trained by `anomalyst demo`: the three baselines, the reconstruction families (autoencoders and
VAEs, on features and on sequences), three classifiers (trained on the sample data's ground
truth) and, last, the ensemble of all of them."""

DEMO_CONFIG: dict[str, dict[str, Any]] = {"transformer": {"epochs": 4},
                                          "gbdt": {"n_estimators": 200}}
"""Fewer transformer epochs than the default keep the first demo build near three minutes on two
CPU cores; `anomalyst train --detector transformer` trains it fully. gbdt gets at most 200 rounds
(about a second; early stopping usually ends it near 60 on the sample data)."""


def build_demo_store(
    db: Path,
    *,
    users: int = 5000,
    days: int = 30,
    seed: int = 7,
    detectors: Sequence[str] = DEMO_DETECTORS,
    config: dict[str, dict[str, Any]] | None = None,
    quiet: bool = False,
    wait_s: float = 30.0,
    step: Callable[[str], None] = log.info,
) -> list[str]:
    """Generate, ingest, train ``detectors`` and score with each; returns the model ids."""
    import sample_data

    step(f"1/4 generating {users:,} users × {days} days of sample data")
    data = sample_data.generate(sample_data.GeneratorConfig(users=users, days=days, seed=seed))
    paths = sample_data.write(data, db.parent / "sample")
    model_ids = []
    with app_data.open_store(db, wait_s=wait_s) as store:
        step(f"2/4 ingesting {len(data.events):,} events into {db}")
        step(app_data.ingest_event_files(store, [paths["events"]]).summary())
        step(app_data.ingest_label_file(store, paths["labels"]).summary())
        user360.set_display_currency(store, SAMPLE_CURRENCY)
        for i, name in enumerate(detectors, 1):
            step(f"3/4 training {name} ({i}/{len(detectors)})")
            chosen = (config if config is not None else DEMO_CONFIG).get(name)
            result = app_models.train(store, app_models.TrainRequest(name, quiet=quiet,
                                                                     config=chosen))
            step(f"4/4 scoring with {result.model_id}")
            app_models.score(store, result.model_id)
            model_ids.append(result.model_id)
    return model_ids


LIVE_PREFIX = "live-"
"""Ids of the live demo's users and events start with this and the run's time, so each run's
users and events are new (an event id already stored would be a duplicate, not scored)."""


def write_live_events(db: Path, *, users: int = 400, days: int = 2, seed: int = 8) -> Path:
    """A fresh sample (new users, ids prefixed ``live-<run time>-``, no session ids: the service
    sessionizes them) whose first event comes right after the store's last, as Parquet beside
    the store; for ``anomalyst demo --live`` to replay."""
    import pandas as pd

    import sample_data

    data = sample_data.generate(sample_data.GeneratorConfig(users=users, days=days, seed=seed))
    events = data.events.copy()
    with app_data.open_store(db, read_only=True) as store:
        last = store.summary.time_range()[1]
    start = pd.to_datetime(events["ts"]).min()
    if last is not None and not pd.isna(last):
        events["ts"] = pd.to_datetime(events["ts"]) + (pd.Timestamp(last) - start
                                                       + pd.Timedelta(minutes=1))
    run = pd.Timestamp.now(tz="UTC").strftime("%m%d%H%M%S")
    for column in ("user_id", "event_id"):
        events[column] = f"{LIVE_PREFIX}{run}-" + events[column].astype(str)
    events = events.drop(columns=["session_id"], errors="ignore")
    target = db.parent / "live_demo_events.parquet"
    events.sort_values("ts").to_parquet(target, index=False)
    return target
