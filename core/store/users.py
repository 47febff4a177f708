"""One user's data: events, sessions, linked accounts, profile and labels.

The bounded reads (``counts``, ``event_span``, ``events_bucketed``, ``events_preferring``,
``sessions_page``) stay small whatever the user did (a bot with a million events, a user with
100k sessions: issue #20, item 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

_EVENT_COLUMNS = """
    e.event_id, e.session_id, e.ts, e.event_type, e.item_id, e.category, e.amount,
    e.quantity, e.device_id, e.ip, e.country, e.payment_id, e.text, es.score AS event_score
"""
_EVENTS = f"""
    SELECT {_EVENT_COLUMNS}
    FROM events e
    LEFT JOIN event_scores es ON es.event_id = e.event_id AND es.model_id = $model_id
    WHERE e.user_id = $user_id
    ORDER BY e.ts, e.event_id
"""
# The events of the given sessions first, then the newest others, at most $limit.
_EVENTS_PREFERRING = f"""
    SELECT {_EVENT_COLUMNS}
    FROM events e
    LEFT JOIN event_scores es ON es.event_id = e.event_id AND es.model_id = $model_id
    WHERE e.user_id = $user_id
    ORDER BY list_contains($sessions, e.session_id) DESC, e.ts DESC, e.event_id DESC
    LIMIT $limit
"""
# One row per (time bucket, event type): the count, the amount's sum, the highest per-event
# score, and the bucket's first session, device, IP, country and payment method.
_EVENTS_BUCKETED = """
    SELECT time_bucket(to_seconds($seconds), e.ts) AS ts, e.event_type,
           count(*) AS n_events, sum(e.amount) AS amount, max(es.score) AS event_score,
           arg_min(e.session_id, e.ts) AS session_id, arg_min(e.device_id, e.ts) AS device_id,
           arg_min(e.ip, e.ts) AS ip, arg_min(e.country, e.ts) AS country,
           arg_min(e.payment_id, e.ts) AS payment_id
    FROM events e
    LEFT JOIN event_scores es ON es.event_id = e.event_id AND es.model_id = $model_id
    WHERE e.user_id = $user_id
    GROUP BY ALL
    ORDER BY ts, e.event_type
    LIMIT $limit
"""
_EVENT_SPAN = "SELECT epoch(max(ts)) - epoch(min(ts)) FROM events WHERE user_id = $user_id"
_COUNTS = """
    SELECT (SELECT count(*) FROM events WHERE user_id = $user_id) AS n_events,
           (SELECT count(*) FROM sessions WHERE user_id = $user_id) AS n_sessions
"""
_SESSIONS = """
    SELECT se.session_id, se.start_ts, se.end_ts, se.n_events, s.model_id, s.score
    FROM sessions se LEFT JOIN scores s USING (session_id)
    WHERE se.user_id = $user_id
    ORDER BY se.start_ts
"""
# A page of the user's sessions, newest first, with every model's score (long form).
_SESSIONS_PAGE = """
    WITH page AS (
        SELECT session_id FROM sessions WHERE user_id = $user_id
        ORDER BY start_ts DESC, session_id DESC LIMIT $limit OFFSET $offset
    )
    SELECT se.session_id, se.start_ts, se.end_ts, se.n_events, s.model_id, s.score
    FROM sessions se JOIN page USING (session_id) LEFT JOIN scores s USING (session_id)
    ORDER BY se.start_ts
"""
_SESSION_IDS = """
    SELECT session_id FROM sessions WHERE user_id = $user_id ORDER BY start_ts, session_id
"""
# From user_entities (one row per user and device, IP or payment method), not events: a scan
# of every event became one small join (docs/BENCHMARKS.md, 'Measurements behind design
# choices').
_LINKED_ACCOUNTS = """
    WITH mine AS (SELECT kind, value FROM user_entities WHERE user_id = $user_id)
    SELECT u.user_id, list(DISTINCT u.kind || ':' || u.value ORDER BY
                           u.kind || ':' || u.value) AS shared,
           count(DISTINCT u.kind || ':' || u.value) AS n_shared
    FROM user_entities u JOIN mine ON u.kind = mine.kind AND u.value = mine.value
    WHERE u.user_id <> $user_id
    GROUP BY u.user_id ORDER BY n_shared DESC, u.user_id LIMIT 200
"""
_IDS_LIKE = """
    SELECT DISTINCT user_id FROM sessions
    WHERE user_id ILIKE $pattern ESCAPE '\\' ORDER BY 1 LIMIT 50
"""
_PROFILE = """
    SELECT count(DISTINCT session_id) AS n_sessions, count(*) AS n_events,
           min(ts) AS first_seen, max(ts) AS last_seen,
           count(DISTINCT device_id) AS n_devices, count(DISTINCT ip) AS n_ips,
           count(DISTINCT payment_id) AS n_payment_methods,
           string_agg(DISTINCT country, ', ' ORDER BY country) AS countries,
           coalesce(sum(amount), 0) AS total_amount,
           count(*) FILTER (WHERE event_type = 'purchase') AS n_purchases
    FROM events WHERE user_id = $user_id
"""
_LABEL_ROWS = """
    SELECT level, is_anomaly, scenario, source FROM labels
    WHERE level = 'user' AND entity_id = $user_id ORDER BY source
"""


class Users:
    """Reads of one user's events, sessions, links, profile and user-level labels."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- events -----------------------------------------------------------------------------
    def events(self, user_id: str, model_id: str | None = None) -> pd.DataFrame:
        """Every event of the user in time order, with ``model_id``'s per-event score."""
        return self._store._frame("users.events", _EVENTS,
                                  {"user_id": user_id, "model_id": model_id or ""})

    def events_preferring(self, user_id: str, model_id: str | None,
                          session_ids: Sequence[str], limit: int) -> pd.DataFrame:
        """At most ``limit`` events: those of ``session_ids`` first, then the newest others
        (newest first; the caller orders them)."""
        return self._store._frame("users.events_preferring", _EVENTS_PREFERRING, {
            "user_id": user_id, "model_id": model_id or "", "sessions": list(session_ids),
            "limit": int(limit)})

    def events_bucketed(self, user_id: str, model_id: str | None, *, seconds: int,
                        limit: int) -> pd.DataFrame:
        """One row per (``seconds`` bucket, event type), at most ``limit``, in time order."""
        return self._store._frame("users.events_bucketed", _EVENTS_BUCKETED, {
            "user_id": user_id, "model_id": model_id or "", "seconds": int(seconds),
            "limit": int(limit)})

    def event_span_s(self, user_id: str) -> float | None:
        """Seconds between the user's first and last event (None without events)."""
        span = self._store._scalar("users.event_span", _EVENT_SPAN, {"user_id": user_id})
        return None if span is None else float(span)

    def counts(self, user_id: str) -> tuple[int, int]:
        """(events, sessions) of the user: two counts, nothing read."""
        n_events, n_sessions = self._store._rows("users.counts", _COUNTS,
                                                 {"user_id": user_id})[0]
        return int(n_events), int(n_sessions)

    # --- sessions ---------------------------------------------------------------------------
    def sessions(self, user_id: str) -> pd.DataFrame:
        """session_id, start_ts, end_ts, n_events, model_id, score: one row per (session,
        scoring model), unscored sessions once with no model, in time order."""
        return self._store._frame("users.sessions", _SESSIONS, {"user_id": user_id})

    def sessions_page(self, user_id: str, *, limit: int, offset: int = 0) -> pd.DataFrame:
        """``sessions`` of one page (newest first, ``limit`` from ``offset``), in time order."""
        return self._store._frame("users.sessions_page", _SESSIONS_PAGE, {
            "user_id": user_id, "limit": int(limit), "offset": int(offset)})

    def session_ids(self, user_id: str) -> list[str]:
        """The user's sessions in time order."""
        rows = self._store._rows("users.session_ids", _SESSION_IDS, {"user_id": user_id})
        return [str(r[0]) for r in rows]

    # --- around the user --------------------------------------------------------------------
    def linked_accounts(self, user_id: str) -> pd.DataFrame:
        """user_id, shared (list of 'kind:value'), n_shared of users sharing a device, IP or
        payment method, most shared first, at most 200."""
        return self._store._frame("users.linked_accounts", _LINKED_ACCOUNTS, {"user_id": user_id})

    def ids_containing(self, text: str) -> list[str]:
        """User ids containing ``text`` (case-insensitive, taken literally), at most 50."""
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._store._rows("users.ids_containing", _IDS_LIKE,
                                 {"pattern": f"%{escaped}%"})
        return [str(r[0]) for r in rows]

    def profile(self, user_id: str) -> dict[str, Any]:
        """n_sessions, n_events, first/last seen, distinct devices/IPs/payment methods,
        countries, total amount, purchases."""
        frame = self._store._frame("users.profile", _PROFILE, {"user_id": user_id})
        return frame.iloc[0].to_dict()

    def label_rows(self, user_id: str) -> pd.DataFrame:
        """level, is_anomaly, scenario, source of the user-level labels of the user."""
        return self._store._frame("users.label_rows", _LABEL_ROWS, {"user_id": user_id})
