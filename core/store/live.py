"""Reads and writes of the real-time scoring service (core.serve): its alerts and lookups.

``live_alerts`` holds one row per session the service flagged (a session is alerted once
per model); the lookups answer what the single writer asks between micro-batches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.store.tenure import tenure_sql

if TYPE_CHECKING:
    from core.store import Store

ALERT_COLUMNS = ("alert_id", "session_id", "user_id", "model_id", "score", "risk",
                 "raised_at", "event_ts", "reasons")

_INSERT = """
    INSERT INTO live_alerts
    SELECT nextval('live_alert_id_seq'), session_id, user_id, model_id, score, risk,
           raised_at, event_ts, reasons
    FROM _new_live_alerts
"""
_SINCE = f"""
    SELECT {', '.join(ALERT_COLUMNS)} FROM live_alerts
    WHERE raised_at >= $since AND alert_id > $after_id
    ORDER BY alert_id LIMIT $limit
"""
_ALERTED = """
    SELECT session_id FROM live_alerts
    WHERE model_id = $model_id AND list_contains($session_ids, session_id)
"""
_ALERTED_ALL = "SELECT session_id FROM live_alerts WHERE model_id = $model_id"
_COUNT = "SELECT count(*) FROM live_alerts"
# Alerts of a model per day of their sessions' start (the day a daily budget counts in)
_PER_DAY = """
    SELECT CAST(s.start_ts AS DATE) AS day, count(*) AS alerts
    FROM live_alerts a JOIN sessions s ON s.session_id = a.session_id
    WHERE a.model_id = $model_id AND list_contains($days, CAST(s.start_ts AS DATE))
    GROUP BY ALL
"""
_PER_DAY_ALL = """
    SELECT CAST(s.start_ts AS DATE) AS day, count(*) AS alerts
    FROM live_alerts a JOIN sessions s ON s.session_id = a.session_id
    WHERE a.model_id = $model_id GROUP BY ALL
"""
_STORED_IDS = """
    SELECT event_id, session_id FROM events WHERE event_id IN (SELECT unnest($event_ids))
"""
# What the service's in-memory feature state needs of the stored events (core.serve.fast_path)
_SESSION_SUMMARIES = """
    SELECT user_id, session_id, epoch_us(min(ts)) AS start_us, epoch_us(max(ts)) AS end_us,
           count(*) AS n_events, max(amount) AS amount_max, min(country) AS country,
           list(DISTINCT device_id) FILTER (device_id IS NOT NULL) AS device_id,
           list(DISTINCT ip) FILTER (ip IS NOT NULL) AS ip,
           list(DISTINCT country) FILTER (country IS NOT NULL) AS countries,
           list(DISTINCT payment_id) FILTER (payment_id IS NOT NULL) AS payment_id
    FROM events GROUP BY user_id, session_id
"""
_FIRST_USES = {col: f"""
    SELECT {col} AS value, user_id, epoch_us(min(ts)) AS t_us FROM events
    WHERE {col} IS NOT NULL GROUP BY ALL
""" for col in ("device_id", "ip", "text")}
_SESSION_EVENTS = """
    SELECT event_id, epoch_us(ts) AS t_us, event_type, amount, quantity, device_id, ip,
           country, user_agent, payment_id, item_id, category, text, extra
    FROM events WHERE session_id = $session_id ORDER BY ts, event_id
"""
_LATEST_SESSION = """
    SELECT session_id, start_ts, end_ts, n_events FROM sessions
    WHERE user_id = $user_id ORDER BY end_ts DESC, session_id DESC LIMIT 1
"""
_SEGMENTS = f"""
    SELECT se.session_id, se.user_id, se.start_ts, se.end_ts,
           {tenure_sql("se.start_ts", "f.first_ts")} AS tenure,
           coalesce(se.country, 'unknown') AS country
    FROM sessions se
    JOIN (SELECT user_id, min(start_ts) AS first_ts FROM sessions
          WHERE user_id IN (SELECT user_id FROM sessions
                            WHERE list_contains($session_ids, session_id))
          GROUP BY user_id) f ON f.user_id = se.user_id
    WHERE list_contains($session_ids, se.session_id)
    ORDER BY se.start_ts, se.session_id
"""


class LiveAlerts:
    """The ``live_alerts`` table and the service's store lookups; writes run inside the
    caller's transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def insert(self, alerts: pd.DataFrame) -> None:
        """Append ``alerts`` (every column of ``ALERT_COLUMNS`` but ``alert_id``)."""
        con = self._store.con
        con.register("_new_live_alerts", alerts)
        try:
            self._store._execute("live.insert", _INSERT)
        finally:
            con.unregister("_new_live_alerts")

    def since(self, since: dt.datetime, *, after_id: int = 0, limit: int = 100) -> pd.DataFrame:
        """Alerts raised at or after ``since`` (naive UTC) with an id above ``after_id``,
        oldest first, at most ``limit``."""
        return self._store._frame("live.since", _SINCE, {
            "since": since, "after_id": int(after_id), "limit": int(limit)})

    def count(self) -> int:
        return int(self._store._scalar("live.count", _COUNT))

    def alerted(self, model_id: str, session_ids: Sequence[str]) -> set[str]:
        """Which of ``session_ids`` already have an alert of ``model_id``."""
        rows = self._store._rows("live.alerted", _ALERTED, {
            "model_id": model_id, "session_ids": list(session_ids)})
        return {str(r[0]) for r in rows}

    def per_day(self, model_id: str, days: Sequence[dt.date]) -> dict[dt.date, int]:
        """Alerts of ``model_id`` already raised for sessions that started on each of
        ``days`` (UTC)."""
        if not days:
            return {}
        rows = self._store._rows("live.per_day", _PER_DAY,
                                 {"model_id": model_id, "days": list(days)})
        return {day: int(n) for day, n in rows}

    def alerted_all(self, model_id: str) -> set[str]:
        """Every session with an alert of ``model_id``."""
        rows = self._store._rows("live.alerted_all", _ALERTED_ALL, {"model_id": model_id})
        return {str(r[0]) for r in rows}

    def per_day_all(self, model_id: str) -> dict[dt.date, int]:
        """Alerts of ``model_id`` per day of their sessions' start (UTC), every day."""
        rows = self._store._rows("live.per_day_all", _PER_DAY_ALL, {"model_id": model_id})
        return {day: int(n) for day, n in rows}

    def stored_sessions_of(self, event_ids: Sequence[str]) -> dict[str, str]:
        """event_id -> session_id of those ``event_ids`` already stored."""
        if not event_ids:
            return {}
        rows = self._store._rows("live.stored_ids", _STORED_IDS,
                                 {"event_ids": list(event_ids)})
        return {str(e): str(s) for e, s in rows}

    def latest_session(self, user_id: str) -> dict[str, Any] | None:
        """The user's session that ended last: session_id, start_ts, end_ts, n_events."""
        rows = self._store._rows("live.latest_session", _LATEST_SESSION, {"user_id": user_id})
        if not rows:
            return None
        session_id, start, end, n = rows[0]
        return {"session_id": str(session_id), "start_ts": start, "end_ts": end,
                "n_events": int(n)}

    def session_summaries(self) -> pd.DataFrame:
        """Per stored session: user_id, session_id, start_us, end_us, n_events, amount_max,
        country (the smallest) and the lists of its devices, IPs, countries and payment ids."""
        return self._store._large_frame("live.session_summaries", _SESSION_SUMMARIES)

    def first_uses(self, column: str) -> pd.DataFrame:
        """value, user_id, t_us: each user's first event with each value of ``column``
        (device_id, ip or text)."""
        return self._store._large_frame(f"live.first_uses.{column}", _FIRST_USES[column])

    def session_events(self, session_id: str) -> pd.DataFrame:
        """The stored events of one session, in time order (the feature columns)."""
        return self._store._frame("live.session_events", _SESSION_EVENTS,
                                  {"session_id": session_id})

    def segments(self, session_ids: Sequence[str]) -> pd.DataFrame:
        """session_id, user_id, start_ts, end_ts, tenure, country of ``session_ids``."""
        return self._store._frame("live.segments", _SEGMENTS,
                                  {"session_ids": list(session_ids)})
