"""A tiny scored store for the entity tests, built without the sample-data generator: 40
users, one device (``dev-shared``) shared by six of them, scored by a z-score model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SHARED = "dev-shared"
SHARED_USERS = [f"u{i:02d}" for i in range(6)]


def events() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    start = pd.Timestamp("2026-02-01 08:00:00")
    for u in range(40):
        user = f"u{u:02d}"
        for s in range(4):
            day = start + pd.Timedelta(days=int(s * 2 + u % 3), hours=int(u % 9))
            device = SHARED if user in SHARED_USERS and s >= 2 else f"dev-{user}"
            for e in range(3):
                rows.append({
                    "user_id": user, "session_id": f"{user}-s{s}",
                    "ts": day + pd.Timedelta(minutes=e * 3),
                    "event_type": ("login", "view", "purchase")[e],
                    "item_id": f"item-{int(rng.integers(0, 8))}",
                    "amount": float(round(rng.gamma(2.0, 20.0), 2)) if e == 2 else None,
                    "device_id": device, "ip": f"10.0.{u % 5}.{s}", "country": "DE",
                    "payment_id": f"card-{user}",
                })
    return pd.DataFrame(rows)


def build(path: Path) -> Path:
    """Ingest the events, train and score a z-score model; returns ``path``."""
    from core.app import data as app_data
    from core.app import models as app_models

    with app_data.open_store(path) as store:
        from core.ingest.events import ingest_events

        ingest_events(store, events())
        result = app_models.train(store, app_models.TrainRequest("zscore", quiet=True))
        app_models.score(store, result.model_id)
    return path
