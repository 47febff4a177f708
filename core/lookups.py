"""Read-only views of the store for the dashboard and the CLI: scores, labels, users.

Every function takes an open ``Store`` and returns plain DataFrames or dicts; the SQL lives
beside the store's subject methods (``store.users``, ``store.scores``, ...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.schema import LABEL_SOURCES
from core.store import Store

# Python's datetime (and so pages' date pickers) ends at years 1 and 9999; DuckDB's TIMESTAMP
# reaches 294247. Lookups clamp times into Python's range so pages never meet one they cannot
# draw; ingest refuses such times anyway (core.ingest.time_window), old stores may hold them.
_PY_MIN, _PY_MAX = pd.Timestamp(dt.datetime.min), pd.Timestamp(dt.datetime.max)
_TIME_COLUMNS = ("start_ts", "end_ts", "ts")


def _drawable_times(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its time columns clamped to Python's datetime range."""
    for column in _TIME_COLUMNS:
        if column in frame and pd.api.types.is_datetime64_any_dtype(frame[column]):
            values = frame[column]
            if len(values) and (values.min() < _PY_MIN or values.max() > _PY_MAX):
                frame[column] = values.clip(lower=_PY_MIN, upper=_PY_MAX)
    return frame


def scored_models(store: Store) -> pd.DataFrame:
    """model_id, detector, created_at, train_end, n_scores, input_kind ('features' or
    'sequences') for every model with scores."""
    return store.models.scored()


def labelled_scores(
    store: Store, model_id: str, sources: Sequence[str] = LABEL_SOURCES
) -> pd.DataFrame:
    """session_id, user_id, start_ts, score, is_anomaly (NA when unlabelled), scenario, in
    (start_ts, session_id) order; one join inside DuckDB."""
    return _drawable_times(store.scores.labelled(model_id, sources))


def session_labels(store: Store, sources: Sequence[str] = LABEL_SOURCES) -> pd.DataFrame:
    """One label per session from the chosen sources (analysts override ground truth)."""
    return store.labels.session_labels(sources)


def score_table(store: Store, model_ids: Sequence[str]) -> pd.DataFrame:
    """One row per session: meta, tenure/country segment and, per model, score and percentile.

    Columns: session_id, user_id, start_ts, end_ts, n_events, tenure, country,
    ``score:<model>``, ``pct:<model>`` (0..100, the share of the model's scored sessions that
    score lower; NaN where the model has not scored the session).
    """
    table = store.scores.table(model_ids)
    for i, model_id in enumerate(model_ids):
        values = table.pop(f"s{i}").to_numpy(np.float64)
        scored = np.flatnonzero(np.isfinite(values))
        order = scored[values[scored].argsort()]  # ties: any order (quicksort, faster)
        pct = np.full(len(values), np.nan)
        pct[order] = np.arange(len(order)) / max(len(order) - 1, 1) * 100
        table[f"score:{model_id}"] = values
        table[f"pct:{model_id}"] = pct
    return _drawable_times(table)


def user_events(store: Store, user_id: str, model_id: str | None = None) -> pd.DataFrame:
    """The user's events in time order, with the model's per-event score where it has one."""
    return _drawable_times(store.users.events(user_id, model_id))


def user_sessions(store: Store, user_id: str) -> pd.DataFrame:
    """The user's sessions with every model's score, one column per model."""
    return _sessions_wide(_drawable_times(store.users.sessions(user_id)))


def _sessions_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """(session, model, score) rows -> one row per session in time order, a score column per
    model; sessions no model has scored yet (just ingested) are listed too, with no scores."""
    if frame.empty:
        return frame
    base = (frame[["session_id", "start_ts", "end_ts", "n_events"]]
            .drop_duplicates("session_id"))
    scored = frame.dropna(subset=["model_id"])
    if scored.empty:
        return base.sort_values("start_ts").reset_index(drop=True)
    wide = scored.pivot_table(index="session_id", columns="model_id", values="score",
                              aggfunc="first")
    wide.columns.name = None
    return (base.merge(wide.reset_index(), on="session_id", how="left")
            .sort_values("start_ts").reset_index(drop=True))


def linked_accounts(store: Store, user_id: str) -> pd.DataFrame:
    """Other users sharing a device, IP or payment method with ``user_id``."""
    return store.users.linked_accounts(user_id)


def find_users(store: Store, text: str) -> list[str]:
    """User ids containing ``text`` (case-insensitive), at most 50."""
    return store.users.ids_containing(text)


def data_time_span(store: Store) -> tuple[dt.datetime, dt.datetime] | tuple[None, None]:
    """(first start, last end) of the sessions, leaving out far-out timestamps (a stray event
    dated 9999 must not stretch the span that default train ends and cuts are taken from);
    (None, None) for an empty store. See ``store.summary.robust_time_span`` for the rule."""
    return store.summary.robust_time_span()


def store_summary(store: Store) -> dict[str, Any]:
    """The headline counts of the store (``Store.info``)."""
    return store.info()


def session_details(store: Store, session_ids: Sequence[str],
                    sources: Sequence[str] = LABEL_SOURCES) -> pd.DataFrame:
    """session_id, is_anomaly and scenario (NA when unlabelled; an analyst's label wins),
    amount (the sum of the session's amounts, 0 without any) of ``session_ids``."""
    return store.sessions.details(session_ids, sources)


def sessions_with_event_types(store: Store, event_types: Sequence[str]) -> list[str]:
    """Sessions holding at least one event of ``event_types``."""
    return store.sessions.with_event_types(event_types)


def event_type_names(store: Store) -> list[str]:
    return store.sessions.event_type_names()


# --- bounded reads of one user (issue #20, item 10) ------------------------------------------
BUCKETS_S = (60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)
BUCKET_NAMES = {60: "minute", 600: "10 minutes", 3600: "hour", 6 * 3600: "6 hours",
                86400: "day", 7 * 86400: "week", 30 * 86400: "30 days", 365 * 86400: "year"}


def user_counts(store: Store, user_id: str) -> tuple[int, int]:
    """(events, sessions) of ``user_id``: two counts, nothing read."""
    return store.users.counts(user_id)


def user_events_bounded(store: Store, user_id: str, model_id: str | None, limit: int,
                        n_events: int | None = None) -> pd.DataFrame:
    """The user's events as ``user_events`` while there are at most ``limit``; beyond that,
    one row per time bucket and event type (the finest of ``BUCKETS_S`` that fits in
    ``limit`` rows) with ``n_events`` per row, the amounts summed and the highest event score.
    ``attrs``: ``n_events`` (all of the user's), ``bucket`` (a name, or None when every event
    is there)."""
    total = user_counts(store, user_id)[0] if n_events is None else n_events
    if total <= limit:
        events = user_events(store, user_id, model_id)
        events.attrs.update(n_events=total, bucket=None)
        return events
    span = store.users.event_span_s(user_id)
    for seconds in BUCKETS_S:
        if span is not None and span / seconds > 4 * limit:
            continue  # more buckets than we would draw even with one event type
        frame = store.users.events_bucketed(user_id, model_id, seconds=seconds, limit=limit + 1)
        if len(frame) <= limit or seconds == BUCKETS_S[-1]:
            frame = _drawable_times(frame.head(limit))
            frame.attrs.update(n_events=total, bucket=BUCKET_NAMES[seconds])
            return frame
    raise AssertionError("unreachable: the last bucket always returns")


def user_events_preferring(store: Store, user_id: str, model_id: str | None,
                           session_ids: Sequence[str], limit: int) -> pd.DataFrame:
    """At most ``limit`` of the user's events, in time order: those of ``session_ids`` first,
    then the newest others (a report's events, whatever the user did)."""
    frame = store.users.events_preferring(user_id, model_id, session_ids, limit)
    return _drawable_times(frame.sort_values(["ts", "event_id"]).reset_index(drop=True))


def user_sessions_page(store: Store, user_id: str, limit: int, offset: int = 0
                       ) -> pd.DataFrame:
    """One page of the user's sessions (newest first, ``limit`` of them from ``offset``), in
    time order, as ``user_sessions``."""
    return _sessions_wide(_drawable_times(store.users.sessions_page(user_id, limit=limit,
                                                                    offset=offset)))
