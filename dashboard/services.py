"""The dashboard's only door to ``core``: cached reads, short-lived store connections.

Every page calls these functions and draws what they return. The store is opened for each
read (read-only) or write (read-write) and closed right after, so a CLI command can take the
file between two reruns; one process-wide lock keeps this process's own threads from opening
it in two modes at once (DuckDB refuses that). Cached results are keyed on the store file's
modification time, so new scores appear on the next rerun.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from core import lookups
from core.errors import AnomalystError
from core.store import Store, resolve_db_path
from core.thresholds import (
    CostChoice,
    SegmentView,
    cheapest_threshold,
    segment_mask,
    threshold_for_capacity,
)
from dashboard import safe_text as safe

T = TypeVar("T")
_LOCK = threading.RLock()
READ_WAIT_S = 10.0


def db_path() -> Path:
    """The store the dashboard shows: ``$ANOMALYST_DB`` or ``data/anomalyst.duckdb``."""
    return resolve_db_path(os.environ.get("ANOMALYST_DB"))


def store_stamp() -> float:
    """Changes whenever the store file does; part of every cache key."""
    path = db_path()
    wal = Path(str(path) + ".wal")
    stamps = [p.stat().st_mtime for p in (path, wal) if p.exists()]
    return max(stamps) if stamps else 0.0


def with_store(func: Callable[[Store], T], *, write: bool = False,
               action: str | None = None) -> T:
    """Run ``func`` on a freshly opened store and close it.

    A write names the ``action`` it performs (see ``core.access.ACTIONS``) and is refused with
    AccessDeniedError unless the signed-in user's role allows it: the check runs here, on the
    server, whatever a page showed or hid.
    """
    if write:
        if action is None:
            raise TypeError("with_store(write=True) needs the action it performs")
        from dashboard import auth

        auth.require(action)
    with _LOCK, Store.open(db_path(), read_only=not write, wait_s=READ_WAIT_S) as store:
        return func(store)


def store_exists() -> bool:
    return db_path().exists()


@st.cache_data(show_spinner=False, max_entries=8)
def summary(_stamp: float, path: str) -> dict[str, Any]:
    return with_store(lookups.store_summary)


@st.cache_data(show_spinner=False, max_entries=8)
def models(_stamp: float, path: str) -> pd.DataFrame:
    return with_store(lookups.scored_models)


@st.cache_resource(show_spinner="Loading scores…", max_entries=4)
def score_table(_stamp: float, path: str, model_ids: tuple[str, ...]) -> pd.DataFrame:
    """Shared, not copied, between reruns and sessions (a copy of a million-row table costs
    ~0.1 s a rerun): callers must treat it as read-only (filter or copy, never assign)."""
    return with_store(lambda s: lookups.score_table(s, model_ids))


@st.cache_data(show_spinner=False, max_entries=8)
def countries(_stamp: float, path: str, model_id: str) -> list[str]:
    """Sorted countries of the sessions ``model_id`` scored (one pass, not one a rerun)."""
    table = score_table(_stamp, path, (model_id,))
    return sorted(table["country"].dropna().unique().tolist())


@st.cache_data(show_spinner=False, max_entries=16)
def labels(_stamp: float, path: str, sources: tuple[str, ...]) -> pd.DataFrame:
    return with_store(lambda s: lookups.session_labels(s, sources))


@st.cache_data(show_spinner=False, max_entries=32)
def thresholds(_stamp: float, path: str, model_id: str) -> pd.DataFrame:
    return with_store(lambda s: s.thresholds.for_model(model_id))


@st.cache_resource(show_spinner="Preparing thresholds…", max_entries=32)
def segment_view(_stamp: float, path: str, model_id: str, segment: str,
                 sources: tuple[str, ...]) -> SegmentView:
    """The sorted arrays behind the Thresholds page for one model, segment and label set."""
    table = score_table(_stamp, path, (model_id,))
    part = table[segment_mask(table, segment)]
    labelled = labelled_scores(_stamp, path, model_id, sources)
    known = labelled[labelled["is_anomaly"].notna()]
    if segment != "all":
        known = known[known["session_id"].isin(part["session_id"])]
    return SegmentView.build(
        part[f"score:{model_id}"].to_numpy(np.float64), part["start_ts"],
        known["score"].to_numpy(np.float64), known["is_anomaly"].astype(bool).to_numpy(),
        known["scenario"].astype(str).to_numpy(),
    )


@st.cache_data(show_spinner="Finding flagged sessions…", max_entries=8, ttl=60)
def flagged_table(_stamp: float, path: str, model_ids: tuple[str, ...],
                  sources: tuple[str, ...]) -> pd.DataFrame:
    """Sessions flagged by at least one model at the thresholds in force, with their labels,
    amounts, a ``flag:<model>`` column per model, ``n_flagging`` and ``flagged_by``. Sessions
    of snoozed users, devices and IPs are left out (re-read each minute: snoozes expire)."""
    from core.cases.suppressions import suppressed_session_ids
    from core.thresholds import flag_sessions

    table = score_table(_stamp, path, model_ids)
    flags = np.column_stack([flag_sessions(table, m, saved_thresholds(m),
                                           operating_point(_stamp, path, m)[0])
                             for m in model_ids])
    any_flag = flags.any(axis=1) & ~table["session_id"].isin(
        with_store(suppressed_session_ids)).to_numpy()
    table = table[any_flag].copy()
    flags = flags[any_flag]
    names = models(_stamp, path).set_index("model_id")["detector"].to_dict()
    for j, m in enumerate(model_ids):
        table[f"flag:{m}"] = flags[:, j]
    table["n_flagging"] = flags.sum(axis=1)
    table["flagged_by"] = [", ".join(names.get(m, m) for m, f in zip(model_ids, row, strict=True)
                                     if f) for row in flags]
    details = with_store(lambda s: lookups.session_details(s, table["session_id"].tolist(),
                                                            sources))
    return table.merge(details, on="session_id", how="left")


@st.cache_data(show_spinner=False, max_entries=64)
def cheapest(_stamp: float, path: str, model_id: str, segment: str, sources: tuple[str, ...],
             miss: float, review: float) -> CostChoice | None:
    view = segment_view(_stamp, path, model_id, segment, sources)
    if not view.labels.any():
        return None
    return cheapest_threshold(view.labelled_scores, view.labels, cost_miss=miss,
                              cost_review=review)


@st.cache_data(show_spinner=False, max_entries=64)
def capacity_threshold(_stamp: float, path: str, model_id: str, segment: str,
                       per_day: float) -> float:
    table = score_table(_stamp, path, (model_id,))
    part = table[segment_mask(table, segment)]
    return threshold_for_capacity(part[f"score:{model_id}"].to_numpy(np.float64),
                                  part["start_ts"], per_day)


@st.cache_data(show_spinner=False, max_entries=16)
def labelled_scores(_stamp: float, path: str, model_id: str,
                    sources: tuple[str, ...]) -> pd.DataFrame:
    return with_store(lambda s: lookups.labelled_scores(s, model_id, sources))


MAX_USER_EVENTS = 20_000  # beyond this the User page draws events aggregated per time bucket
SESSIONS_PER_PAGE = 500  # the User page lists a user's sessions a page at a time


class UserView(NamedTuple):
    """What the User page shows of one user: a page of sessions with scores, events (with
    per-event scores of one model, or none; aggregated per ``bucket`` beyond
    ``MAX_USER_EVENTS``), linked accounts, and the user's totals."""

    sessions: pd.DataFrame
    events: pd.DataFrame
    linked: pd.DataFrame
    n_sessions: int
    n_events: int
    bucket: str | None  # None: every event is there; else e.g. "minute"


@st.cache_data(show_spinner=False, max_entries=64)
def user_view(_stamp: float, path: str, user_id: str, event_model: str | None,
              page: int = 0) -> UserView:
    """One store connection for the page's reads (each open costs ~30 ms), bounded whatever
    the user did: at most ``MAX_USER_EVENTS`` event rows and ``SESSIONS_PER_PAGE`` sessions."""
    def read(s: Store) -> UserView:
        n_events, n_sessions = lookups.user_counts(s, user_id)
        events = lookups.user_events_bounded(s, user_id, event_model, MAX_USER_EVENTS,
                                             n_events)
        sessions = lookups.user_sessions_page(s, user_id, SESSIONS_PER_PAGE,
                                              page * SESSIONS_PER_PAGE)
        return UserView(sessions, events, lookups.linked_accounts(s, user_id), n_sessions,
                        n_events, events.attrs.get("bucket"))

    return with_store(read)


@st.cache_data(show_spinner=False, max_entries=4)
def event_type_names(_stamp: float, path: str) -> list[str]:
    return with_store(lookups.event_type_names)


@st.cache_data(show_spinner=False, max_entries=16)
def sessions_with_event_types(_stamp: float, path: str, types: tuple[str, ...]) -> list[str]:
    return with_store(lambda s: lookups.sessions_with_event_types(s, types))


def input_kinds(models: pd.DataFrame) -> dict[str, str]:
    """model_id -> 'features' or 'sequences' (from ``models``, the scored-models table)."""
    return dict(zip(models["model_id"], models["input_kind"], strict=True))


def find_users(text: str) -> list[str]:
    return with_store(lambda s: lookups.find_users(s, text))


def save_threshold(model_id: str, segment: str, threshold: float, set_by: str) -> bool:
    """Persist an operating threshold (used by every page) and drop cached reads."""
    set_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with_store(lambda s: s.thresholds.save(model_id, segment, threshold, set_by=set_by,
                                           set_at=set_at), write=True, action="threshold")
    forget_reads()
    return True


def forget_reads() -> None:
    """After a write: drop the cached reads, the Thresholds page's prepared views included (a
    cached resource, which ``st.cache_data.clear`` leaves). Cache keys skip ``_stamp``
    (Streamlit hashes no argument named with a leading underscore), so a write by another
    process is seen only when an entry expires."""
    st.cache_data.clear()
    segment_view.clear()


def key() -> tuple[float, str]:
    """(stamp, path): the first two arguments of every cached call."""
    return store_stamp(), str(db_path())


def safely(func: Callable[[], T], what: str) -> T | None:
    """Call ``func``; show a user's problem as an error that says what to do."""
    try:
        return func()
    except AnomalystError as exc:
        st.error(safe.fmt("Could not {what}: {exc}", what=safe.Markdown(what), exc=str(exc)))
        return None


def label_sources(choice: str) -> tuple[str, ...]:
    return {"both": ("ground_truth", "analyst"), "ground truth": ("ground_truth",),
            "analysts": ("analyst",)}[choice]


def saved_thresholds(model_id: str) -> dict[str, float]:
    """segment -> threshold saved for ``model_id``."""
    saved = thresholds(*key(), model_id)
    return {str(s): float(t) for s, t in zip(saved["segment"], saved["threshold"], strict=True)}


def threshold_in_force(model_id: str, segment: str = "all") -> float | None:
    saved = thresholds(*key(), model_id)
    row = saved[saved["segment"] == segment]
    return None if row.empty else float(row["threshold"].iloc[0])


def default_model_ids(frame: pd.DataFrame) -> Sequence[str]:
    """The newest model of each detector."""
    if frame.empty:
        return []
    return frame.sort_values("created_at").groupby("detector")["model_id"].last().tolist()


@st.cache_data(show_spinner=False, max_entries=32)
def operating_point(_stamp: float, path: str, model_id: str) -> tuple[float, str]:
    """(default threshold, where it came from) of ``model_id`` (core.pipeline.operating_point)."""
    from core.pipeline.operating_point import operating_point as point_of

    point = with_store(lambda store: point_of(store, model_id))
    return point.threshold, point.source
