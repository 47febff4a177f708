"""The Live page's questions (core.app.live): pulse, feed and drift over a store's live
alerts and recent scores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.app import live
from core.app import policy as app_policy
from core.app.data import open_store


def _alerts(store, model_id: str, n: int, now: dt.datetime) -> None:  # noqa: ANN001
    store.live.insert(pd.DataFrame({
        "session_id": [f"s{i}" for i in range(n)], "user_id": [f"u{i}" for i in range(n)],
        "model_id": model_id,
        "score": np.arange(n, dtype=float), "risk": np.linspace(90, 99, n),
        "raised_at": [now - dt.timedelta(seconds=10 * i) for i in range(n)],
        "event_ts": [now] * n,
        "reasons": [json.dumps([{"text": "many failed payments"}, "new device"])] * n}))


def test_feed_is_newest_first_with_reasons_as_one_line(demo_store_copy: Path) -> None:
    now = live.utc_now()
    with open_store(demo_store_copy) as store:
        model_id = app_policy.in_force(store).model_id
        _alerts(store, model_id, 3, now)
        frame = live.feed(store, limit=2)
        beat = live.pulse(store, now=now + dt.timedelta(seconds=1))
    assert list(frame["alert_id"]) == sorted(frame["alert_id"], reverse=True) and len(frame) == 2
    assert frame["reasons"].iloc[0] == "many failed payments; new device"
    assert beat.alerts_total == 3 and beat.alerts_per_min == 3 / 10


def test_drift_compares_the_policy_models_recent_scores_with_training(
        demo_store_copy: Path) -> None:
    with open_store(demo_store_copy) as store:
        model_id = app_policy.in_force(store).model_id
        view = live.drift(store, window=dt.timedelta(days=365 * 30))
        scored = store.live_stats.recent_scores(model_id, dt.datetime(2000, 1, 1),
                                                after=view.after)
        later = live.drift(store, now=live.utc_now() + dt.timedelta(days=2))
    assert view.model_id == model_id and len(view.recent_risk) == len(scored) > 0
    assert len(view.training_risk) > 0 and np.isfinite(view.drift.psi)
    assert later.drift.n == 0 and not later.drift.alarm  # nothing scored in the last hour then


def test_drift_leaves_out_the_models_own_training_sessions(demo_store_copy: Path) -> None:
    """A batch score of the whole store writes every session's score in the last hour; the
    sessions the model trained on are not 'recent' and must not vouch for themselves."""
    with open_store(demo_store_copy) as store:
        model_id = app_policy.in_force(store).model_id
        end = pd.Timestamp(store.models.by_id(model_id)["train_end"]).to_pydatetime()
        everything = store.live_stats.recent_scores(model_id, dt.datetime(2000, 1, 1))
        newer = store.live_stats.recent_scores(model_id, dt.datetime(2000, 1, 1), after=end)
        sessions = store.sessions.meta()
        view = live.drift(store, window=dt.timedelta(days=365 * 30))
    after_end = int((pd.to_datetime(sessions["start_ts"]) > pd.Timestamp(end)).sum())
    assert 0 < len(newer) < len(everything)
    assert len(newer) <= after_end
    assert view.after == end and view.drift.n == len(newer)
