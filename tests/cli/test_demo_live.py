"""`anomalyst demo --live`: the events it replays are new users after the store's last event."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from cli.demo import LIVE_PREFIX, write_live_events
from core.app.data import open_store


def test_live_events_are_fresh_and_come_after_the_store(demo_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    shutil.copy(demo_store, db)
    path = write_live_events(db, users=30, days=1, seed=3)
    events = pd.read_parquet(path)
    with open_store(db, read_only=True) as store:
        last = store.summary.time_range()[1]
        stored = set(store.con.execute("SELECT event_id FROM events").fetchdf()["event_id"])
    assert len(events) > 0 and "session_id" not in events.columns
    assert events["user_id"].str.startswith(LIVE_PREFIX).all()
    assert not set(events["event_id"]) & stored
    assert pd.to_datetime(events["ts"]).min() > pd.Timestamp(last)
    assert pd.to_datetime(events["ts"]).is_monotonic_increasing
