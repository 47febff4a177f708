"""What the store holds: counts, time spans, label and ingest summaries."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

# What session features are a function of (core.pipeline.feature_cache): events change only
# through ingests, and a recreated store has other ingest start times.
_EVENTS_FINGERPRINT = """
    SELECT (SELECT count(*) FROM events), max(ingest_id), arg_max(started_at, ingest_id)
    FROM ingests
"""
# The data's span without far-out timestamps: sessions starting and ending inside Tukey's
# far-out fences of the session starts (Q1 - 3 IQR, Q3 + 3 IQR; IQR at least a day), in
# microseconds so no timestamp overflows, clamped to what Python's datetime holds (NULLs when no
# session qualifies: greatest/least skip NULLs, so the clamps alone would read as a span).
_ROBUST_TIME_SPAN = """
    WITH q AS (
        SELECT quantile_cont(epoch_us(start_ts)::DOUBLE, 0.25) AS q1,
               quantile_cont(epoch_us(start_ts)::DOUBLE, 0.75) AS q3
        FROM sessions
    ),
    f AS (SELECT q1 - 3 * greatest(q3 - q1, 86400e6) AS lo,
                 q3 + 3 * greatest(q3 - q1, 86400e6) AS hi FROM q)
    SELECT CASE WHEN count(*) > 0 THEN greatest(min(start_ts), TIMESTAMP '0001-01-01') END,
           CASE WHEN count(*) > 0 THEN least(max(end_ts), TIMESTAMP '9999-12-31 23:59:59') END
    FROM sessions, f
    WHERE epoch_us(start_ts) >= f.lo AND epoch_us(end_ts) <= f.hi
"""
_EVENT_TYPE_COUNTS = """
    SELECT event_type, count(*) AS n FROM events GROUP BY event_type ORDER BY n DESC, event_type
"""
_LABEL_COUNTS = """
    SELECT source, level, coalesce(scenario, 'unspecified') AS scenario,
           count(*) FILTER (WHERE is_anomaly) AS n_anomalous,
           count(*) FILTER (WHERE NOT is_anomaly) AS n_normal
    FROM labels GROUP BY ALL ORDER BY source, level, scenario
"""

Span = tuple[dt.datetime, dt.datetime] | tuple[None, None]

_SESSION_SHAPE = """
    SELECT count(*), count(*) FILTER (WHERE n_events = 1), count(DISTINCT user_id)
    FROM sessions
"""


class SessionShape(NamedTuple):
    """single_event_share: sessions of one event; repeat_share: sessions that follow an
    earlier one of the same user ((sessions - users) / sessions); entity_columns: the
    canonical entity columns (device, IP, merchant, ...) that hold a value."""

    single_event_share: float
    repeat_share: float
    entity_columns: tuple[str, ...]


class Summary:
    """Read-only headline figures of the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def count_events(self) -> int:
        return int(self._store._scalar("count_events", "SELECT count(*) FROM events"))

    def count_sessions(self) -> int:
        return int(self._store._scalar("count_sessions", "SELECT count(*) FROM sessions"))

    def session_shape(self) -> SessionShape:
        """How the store's sessions are shaped: what says whether history features have
        anything to read (core.pipeline.history_default)."""
        from core.store.entities import ENTITY_COLUMNS
        from core.store.history import present_columns

        n, single, users = self._store._rows("session_shape", _SESSION_SHAPE)[0]
        n = int(n or 0)
        if n == 0:
            return SessionShape(0.0, 0.0, ())
        entities = tuple(present_columns(self._store.con, ENTITY_COLUMNS))
        return SessionShape(float(single) / n, (n - int(users)) / n, entities)

    def count_users(self) -> int:
        return int(self._store._scalar("count_users",
                                       "SELECT count(DISTINCT user_id) FROM sessions"))

    def events_fingerprint(self) -> tuple[int, int | None, Any]:
        """(events, last ingest id, its start time): changes whenever events may have."""
        n_events, last_id, last_at = self._store._memoized(
            ("events_fingerprint",),
            lambda: self._store._rows("events_fingerprint", _EVENTS_FINGERPRINT)[0])
        return int(n_events), last_id, last_at

    def time_range(self) -> tuple[Any, Any]:
        """(first session start, last session end), as stored (None for an empty store)."""
        first, last = self._store._rows(
            "time_range", "SELECT min(start_ts), max(end_ts) FROM sessions")[0]
        return first, last

    def robust_time_span(self) -> Span:
        """(first start, last end) of the sessions, far-out timestamps left out (a stray
        event dated 9999 must not stretch the span); (None, None) for an empty store."""
        first, last = self._store._rows("robust_time_span", _ROBUST_TIME_SPAN)[0]
        return (first, last) if first is not None and last is not None else (None, None)

    def event_type_counts(self) -> dict[str, int]:
        """event type -> events, most frequent first."""
        rows = self._store._rows("event_type_counts", _EVENT_TYPE_COUNTS)
        return {str(t): int(n) for t, n in rows}

    def label_counts(self) -> pd.DataFrame:
        """source, level, scenario, n_anomalous, n_normal."""
        return self._store._frame("label_counts", _LABEL_COUNTS)

    def ingest_log(self) -> pd.DataFrame:
        """Every ingest's row, oldest first."""
        return self._store._frame("ingest_log", "SELECT * FROM ingests ORDER BY ingest_id")
