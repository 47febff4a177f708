"""What the Live page counts: recent ingests, recent live alerts, a model's recent scores."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

MAX_RECENT_SCORES = 200_000
"""The drift view reads at most this many of the newest scores (rendering stays bounded)."""

_EVENTS_SINCE = """
    SELECT coalesce(sum(n_added), 0) FROM ingests WHERE kind = 'events' AND started_at >= $since
"""
_ALERTS_SINCE = "SELECT count(*) FROM live_alerts WHERE raised_at >= $since"
_NEWEST_ALERTS = """
    SELECT alert_id, raised_at, session_id, user_id, model_id, risk, score, event_ts, reasons
    FROM live_alerts ORDER BY alert_id DESC LIMIT $limit
"""
_RECENT_SCORES = """
    SELECT sc.score FROM scores sc JOIN sessions se ON se.session_id = sc.session_id
    WHERE sc.model_id = $model_id AND sc.scored_at >= $since
      AND ($after IS NULL OR se.start_ts > $after)
    ORDER BY sc.scored_at DESC LIMIT $limit
"""


class LiveStats:
    """Counts over a recent window (times are naive UTC, as the store keeps them)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def events_since(self, since: dt.datetime) -> int:
        """Events added by the ingests (batch or the service's micro-batches) since ``since``."""
        return int(self._store._scalar("live_stats.events_since", _EVENTS_SINCE,
                                       {"since": since}))

    def alerts_since(self, since: dt.datetime) -> int:
        """Live alerts raised since ``since``."""
        return int(self._store._scalar("live_stats.alerts_since", _ALERTS_SINCE,
                                       {"since": since}))

    def newest_alerts(self, limit: int) -> pd.DataFrame:
        """The newest ``limit`` live alerts, newest first."""
        return self._store._frame("live_stats.newest_alerts", _NEWEST_ALERTS,
                                  {"limit": int(limit)})

    def recent_scores(self, model_id: str, since: dt.datetime, *,
                      after: dt.datetime | None = None,
                      limit: int = MAX_RECENT_SCORES) -> np.ndarray:
        """float64 scores ``model_id`` gave since ``since`` to sessions that started after
        ``after`` (None: any session), newest first, at most ``limit``."""
        rows = self._store._rows("live_stats.recent_scores", _RECENT_SCORES, {
            "model_id": model_id, "since": since, "after": after, "limit": int(limit)})
        return np.array([r[0] for r in rows], dtype=np.float64)
