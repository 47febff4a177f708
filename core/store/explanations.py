"""What explaining a session reads, and the explanation cache (``explanations``: one row per
(model, session, method), a JSON payload each)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.store.tenure import tenure_sql

if TYPE_CHECKING:
    from core.store import Store


@dataclass(frozen=True)
class SessionInfo:
    """One session's row with its segment (tenure, country)."""

    session_id: str
    user_id: str
    start_ts: pd.Timestamp
    end_ts: pd.Timestamp
    n_events: int
    country: str
    tenure: str


_FIRST_START = "(SELECT min(f.start_ts) FROM sessions f WHERE f.user_id = s.user_id)"
_SESSION_ROW = f"""
    SELECT s.session_id, s.user_id, s.start_ts, s.end_ts, s.n_events,
           coalesce(s.country, 'unknown') AS country,
           {tenure_sql("s.start_ts", _FIRST_START)} AS tenure
    FROM sessions s WHERE s.session_id = $session_id
"""
# Every model that scored the session, with where the session ranks among its scores.
_SESSION_MODELS = """
    WITH mine AS (SELECT model_id, score FROM scores WHERE session_id = $session_id)
    SELECT m.model_id, mo.detector, mo.created_at, m.score,
           count(*) FILTER (WHERE s.score < m.score) AS n_lower, count(*) AS n_scores
    FROM mine m JOIN scores s USING (model_id) JOIN models mo USING (model_id)
    GROUP BY ALL ORDER BY mo.created_at, m.model_id
"""
_USER_OTHER_SESSIONS = """
    SELECT session_id, start_ts FROM sessions
    WHERE user_id = $user_id AND session_id <> $session_id
    ORDER BY start_ts DESC, session_id LIMIT $limit
"""
# A stable pseudo-random sample: ordered by the hash of the id, so the same store gives the
# same sample in every process.
_POPULATION_SAMPLE = """
    SELECT session_id FROM sessions ORDER BY hash(session_id), session_id LIMIT $limit
"""
# Normal sessions of the training window: no anomalous label of any level or source. The
# labels are checked on a prefix of the stable order only (``$pool`` sessions; the caller
# widens it when too few survive), and only the pool's events meet the event labels:
# 1.4 s -> 0.6 s at 1M sessions (14.5M events, 1.5M event labels).
_BACKGROUND_SAMPLE = """
    WITH pool AS (
        SELECT session_id FROM sessions
        WHERE ($train_end IS NULL OR start_ts < $train_end)
        ORDER BY hash(session_id), session_id LIMIT $pool
    ),
    pool_events AS (
        SELECT e.event_id, e.session_id FROM events e SEMI JOIN pool p USING (session_id)
    ),
    anomalous AS (
        SELECT pe.session_id FROM pool_events pe
        SEMI JOIN labels l ON l.entity_id = pe.event_id AND l.level = 'event' AND l.is_anomaly
        UNION ALL
        SELECT entity_id FROM labels WHERE level = 'session' AND is_anomaly
    )
    SELECT p.session_id, (SELECT count(*) FROM pool) AS pooled FROM pool p
    ANTI JOIN anomalous a ON a.session_id = p.session_id
    ORDER BY hash(p.session_id), p.session_id LIMIT $limit
"""
_SESSION_EVENTS = """
    SELECT event_id, ts, event_type, amount, quantity, item_id, category, device_id, ip,
           country, payment_id, text
    FROM events WHERE session_id = $session_id ORDER BY ts, event_id
"""
_CACHE_ROWS = """
    SELECT method, payload FROM explanations
    WHERE model_id = $model_id AND session_id = $session_id ORDER BY method
"""
_CACHE_DELETE = "DELETE FROM explanations WHERE model_id = $model_id AND session_id = $session_id"
_CACHE_INSERT = """
    INSERT INTO explanations VALUES ($model_id, $session_id, $method, $computed_at, $payload)
"""
_CACHE_COUNT = "SELECT count(*) FROM explanations WHERE model_id = $model_id"
# Ground truth for the fidelity benchmark.
_EVENT_LABELS = """
    SELECT e.session_id, l.entity_id AS event_id, l.is_anomaly, l.scenario
    FROM labels l JOIN events e ON e.event_id = l.entity_id
    WHERE l.level = 'event' AND l.source = 'ground_truth'
    ORDER BY e.session_id, l.entity_id
"""


class Explanations:
    """The reads behind one session's explanation, and its cache."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def session(self, session_id: str) -> SessionInfo | None:
        """The session's row and segment, or None when the store has no such session."""
        rows = self._store._frame("explanations.session", _SESSION_ROW,
                                  {"session_id": str(session_id)})
        if rows.empty:
            return None
        r = rows.iloc[0]
        return SessionInfo(str(r["session_id"]), str(r["user_id"]), r["start_ts"], r["end_ts"],
                           int(r["n_events"]), str(r["country"]), str(r["tenure"]))

    def session_models(self, session_id: str) -> pd.DataFrame:
        """model_id, detector, created_at, score, n_lower (the model's scores below this
        session's), n_scores, for every model that scored the session, oldest model first."""
        return self._store._frame("explanations.session_models", _SESSION_MODELS,
                                  {"session_id": session_id})

    def user_other_sessions(self, user_id: str, session_id: str, limit: int) -> pd.DataFrame:
        """session_id, start_ts of the user's newest ``limit`` sessions other than this one."""
        params = {"user_id": user_id, "session_id": session_id, "limit": int(limit)}
        return self._store._memoized(
            ("user_other_sessions", user_id, session_id, int(limit)),
            lambda: self._store._frame("explanations.user_other_sessions",
                                       _USER_OTHER_SESSIONS, params)).copy()

    def population_sample(self, limit: int) -> list[str]:
        """A stable sample of ``limit`` session ids."""
        rows = self._store._rows("explanations.population_sample", _POPULATION_SAMPLE,
                                 {"limit": int(limit)})
        return [str(r[0]) for r in rows]

    def background_sample(self, train_end: Any, limit: int) -> list[str]:
        """A stable sample of ``limit`` unlabelled-or-normal sessions before ``train_end``: the
        first in ``hash(session_id)`` order."""
        pool = max(int(limit) * 20, 1000)
        while True:
            rows = self._store._rows("explanations.background_sample", _BACKGROUND_SAMPLE,
                                     {"train_end": train_end, "limit": int(limit),
                                      "pool": pool})
            if len(rows) >= limit or not rows or int(rows[0][1]) < pool:
                return [str(r[0]) for r in rows]  # enough, or every session was in the pool
            pool *= 8

    def session_events(self, session_id: str) -> pd.DataFrame:
        """The session's events in time order."""
        return self._store._memoized(
            ("session_events", session_id),
            lambda: self._store._frame("explanations.session_events", _SESSION_EVENTS,
                                       {"session_id": session_id})).copy()

    def event_labels(self) -> pd.DataFrame:
        """session_id, event_id, is_anomaly, scenario of every ground-truth event label."""
        return self._store._frame("explanations.event_labels", _EVENT_LABELS)

    # --- the cache --------------------------------------------------------------------------
    def cached(self, model_id: str, session_id: str) -> dict[str, Any]:
        """method -> parsed payload of the cached rows of (model, session); empty if none."""
        rows = self._store._rows("explanations.cached", _CACHE_ROWS,
                                 {"model_id": model_id, "session_id": session_id})
        return {str(method): json.loads(payload) for method, payload in rows}

    def replace(self, model_id: str, session_id: str, payloads: Mapping[str, Any], *,
                computed_at: dt.datetime) -> None:
        """Replace the cached rows of (model, session) with ``payloads``, in one transaction."""
        key = {"model_id": model_id, "session_id": session_id}
        with self._store.transaction():
            self._store._execute("explanations.delete", _CACHE_DELETE, key)
            for method, payload in payloads.items():
                self._store._execute("explanations.insert", _CACHE_INSERT, {
                    **key, "method": method, "computed_at": computed_at,
                    "payload": json.dumps(payload, allow_nan=False)})

    def cached_count(self, model_id: str) -> int:
        """Cached rows of ``model_id`` (all sessions and methods)."""
        return int(self._store._scalar("explanations.count", _CACHE_COUNT,
                                       {"model_id": model_id}))

    # --- what-if: the deletion test of benchmarks.why ---------------------------------------
    @contextmanager
    def events_removed(self, event_ids: Sequence[str]) -> Iterator[None]:
        """The store as if ``event_ids`` were not there, to rescore a session without them;
        they are put back, unchanged, on exit. For a private copy of a store only: a reader
        in between would see the session without them."""
        params = {"ids": [str(e) for e in event_ids]}
        self._store._execute("explanations.hold_events", _HOLD_EVENTS, params)
        try:
            self._store._execute("explanations.remove_events", _REMOVE_EVENTS, params)
            yield
        finally:
            self._store._execute("explanations.restore_events", _RESTORE_EVENTS)
            self._store._execute("explanations.drop_held", "DROP TABLE IF EXISTS _held_events")


_HOLD_EVENTS = ("CREATE OR REPLACE TEMP TABLE _held_events AS "
                "SELECT * FROM events WHERE list_contains($ids, event_id)")
_REMOVE_EVENTS = "DELETE FROM events WHERE list_contains($ids, event_id)"
_RESTORE_EVENTS = "INSERT INTO events SELECT * FROM _held_events"
