"""The Live page's questions: the newest live alerts, the pulse, and score drift.

The scoring service (``core.serve``) writes events, scores and ``live_alerts`` into the store;
this module only reads them, so the page works on any process's store (a running service, a
batch ingest, a replay) and never talks to the service itself.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.drift import Drift, score_drift
from core.store import Store

PULSE_EVENTS_S = 60
"""Events per second are counted over the last minute."""
PULSE_ALERTS_S = 600
"""Alerts per minute are counted over the last ten minutes."""
DRIFT_WINDOW = dt.timedelta(hours=1)
FEED_LIMIT = 50
REASON_CHARS = 160


def utc_now() -> dt.datetime:
    """Now, naive UTC (as the store keeps its times)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Pulse:
    """How busy the stream is."""

    events_per_s: float
    alerts_per_min: float
    alerts_total: int


def pulse(store: Store, now: dt.datetime | None = None) -> Pulse:
    """Events per second (last minute) and alerts per minute (last ten minutes)."""
    now = now or utc_now()
    events = store.live_stats.events_since(now - dt.timedelta(seconds=PULSE_EVENTS_S))
    alerts = store.live_stats.alerts_since(now - dt.timedelta(seconds=PULSE_ALERTS_S))
    return Pulse(events / PULSE_EVENTS_S, alerts / (PULSE_ALERTS_S / 60), store.live.count())


def feed(store: Store, *, limit: int = FEED_LIMIT) -> pd.DataFrame:
    """The newest live alerts, newest first: alert_id, raised_at, session_id, user_id,
    model_id, risk, score, event_ts, reasons (one line of text)."""
    frame = store.live_stats.newest_alerts(max(1, min(int(limit), 500)))
    frame["reasons"] = [_reason_line(r) for r in frame["reasons"]]
    return frame


def _reason_line(text: object) -> str:
    """The stored reasons (JSON) as one short line of plain text."""
    try:
        value = json.loads(str(text))
    except (TypeError, ValueError):
        value = text
    if isinstance(value, list):
        parts = [str(v.get("text") or v.get("feature") or v) if isinstance(v, dict) else str(v)
                 for v in value[:3]]
        line = "; ".join(parts)
    else:
        line = "" if value is None else str(value)
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 1] + "…"


@dataclass(frozen=True)
class DriftView:
    """The policy model's recent risks against its training risks, and the verdict. Recent:
    scored in the last ``window``, of sessions that started after the model's training
    window (``after``; None when the model records none), so a batch score of the whole store
    does not compare the training sessions with themselves."""

    model_id: str | None
    recent_risk: np.ndarray
    training_risk: np.ndarray
    drift: Drift
    window: dt.timedelta
    after: dt.datetime | None = None


def drift(store: Store, *, model_id: str | None = None, window: dt.timedelta = DRIFT_WINDOW,
          now: dt.datetime | None = None) -> DriftView:
    """Drift of ``model_id`` (default: the alert policy's model) over the last ``window``."""
    from core.policy import policy_in_force, risk_calibration

    empty = DriftView(None, np.empty(0), np.empty(0), score_drift(np.empty(0)), window)
    if model_id is None:
        policy = policy_in_force(store)
        if policy is None:
            return empty
        model_id = policy.model_id
    calibration = risk_calibration(store, model_id)
    if calibration is None:
        return DriftView(model_id, np.empty(0), np.empty(0), empty.drift, window)
    after = _training_end(store, model_id)
    recent = store.live_stats.recent_scores(model_id, (now or utc_now()) - window, after=after)
    return DriftView(model_id, calibration.risk(recent),
                     calibration.risk(np.asarray(calibration.reference)),
                     score_drift(calibration.percentile(recent)), window, after)


def _training_end(store: Store, model_id: str) -> dt.datetime | None:
    """The end of the model's training window (None when its row has none)."""
    end = (store.models.by_id(model_id) or {}).get("train_end")
    return None if end is None or pd.isna(end) else pd.Timestamp(end).to_pydatetime()
