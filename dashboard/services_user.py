"""The User 360 page's door to ``core.app.user360``: cached reads keyed on the store's stamp.

The page's risk is read for the user's (and linked users') sessions only, under the policy
in force (``services.policy``, cached): no store-wide risk table is built for the page (it
cost ~1.1 s of a 1.6-1.8 s first render at 1M sessions). See ``core.app.user360`` for the
decisions (focus, decisions, currency, bounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from core.app import entities as core_entities
from core.app import investigate, queue
from core.app import user360 as core_user360
from core.app.data import Store
from core.app.investigate import UserView
from core.app.user360 import User360
from dashboard import services

__all__ = ["CURRENCY_NOT_SET", "MAX_LINKED_GRAPH", "MAX_POINTS", "User360", "currency_label",
           "UserPage", "detector_percentiles", "event_percentiles", "focus_window",
           "thin_points", "user_page"]

CURRENCY_NOT_SET = core_user360.CURRENCY_NOT_SET
MAX_LINKED_GRAPH = 30  # linked accounts drawn in the graph (the table lists up to 200)
currency_label = core_user360.currency_label
focus_window = core_user360.focus_window
MAX_POINTS = core_user360.MAX_POINTS  # session points a chart draws one by one


def thin_points(sessions: pd.DataFrame, *, focus: str | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """``core.app.user360.thin_points`` at ``MAX_POINTS``: (points, buckets, bucket name)."""
    return core_user360.thin_points(sessions, focus=focus, max_points=MAX_POINTS,
                                    max_kept=min(core_user360.MAX_KEPT, MAX_POINTS))


class UserPage(NamedTuple):
    """Everything the User page reads, in one store opening (each opening costs time)."""

    view: UserView
    """A page of sessions with every model's score, events, linked accounts, counts."""
    full: User360
    """Risk, flags and decisions of the user's sessions; linked users; cases; amounts."""
    entities: pd.DataFrame
    """kind, value, n_sessions of the user's entities (bounded per kind)."""


@st.cache_data(show_spinner="Reading the user's history…", max_entries=64)
def user_page(stamp: str, path: str, user_id: str, event_model: str | None,
              page: int = 0) -> UserPage:
    """The User page's reads on one connection, bounded whatever the user did: at most
    ``services.MAX_USER_EVENTS`` event rows and ``services.SESSIONS_PER_PAGE`` sessions a
    page (``core.app.investigate.user_view``), risk of at most
    ``core.app.user360.MAX_SESSIONS``."""
    found = services.policy(stamp, path)

    def read(store: Store) -> UserPage:
        view = investigate.user_view(store, user_id, event_model, page,
                                     max_events=services.MAX_USER_EVENTS,
                                     per_page=services.SESSIONS_PER_PAGE)
        full = core_user360.user360(store, user_id, found, linked_ids=linked_ids(view.linked))
        return UserPage(view, full, core_entities.user_entities(store, user_id))

    return services.with_store(read)


def detector_percentiles(stamp: str, path: str, sessions: pd.DataFrame) -> pd.DataFrame:
    """session_id and one ``<detector> %ile`` column per scored model: each raw score of
    ``sessions`` (the User page's wide session rows) as its percentile among that model's
    scored sessions (one sorted column per model, kept on the scores' version)."""
    names = services.detectors(stamp, path)
    scored = [c for c in sessions.columns if c in names]
    out = sessions[["session_id"]].copy()
    if not scored:
        return out
    references = services.sorted_scores(path, tuple(scored),
                                        services.scores_version(stamp, path, tuple(scored)))
    for m in scored:
        out[f"{names[m]} %ile"] = np.round(queue.percentile_among(
            sessions[m].to_numpy(dtype="float64", na_value=float("nan")), references[m]), 0)
    return out


def event_percentiles(scores: pd.Series | None) -> pd.Series | None:
    """Per-event scores as their percentile (0-100) among the drawn events of this user:
    the page shows how unusual an event is for the user, never a raw detector score."""
    if scores is None:
        return None
    values = pd.to_numeric(scores, errors="coerce")
    if not values.notna().any():
        return None
    return (values.rank(pct=True) * 100).round(0)


def decided_count(sessions: pd.DataFrame) -> int:
    return int(sessions["decision"].notna().sum())


def linked_ids(linked: pd.DataFrame) -> tuple[str, ...]:
    """The linked users' ids (at most 200: ``store.users.linked_accounts`` bounds them)."""
    if linked.empty:
        return ()
    return tuple(str(u) for u in linked["user_id"])


def with_focus_first(table: pd.DataFrame, focus: str | None,
                     column: str = "session_id") -> pd.DataFrame:
    """``table`` with a ``focus`` column (True on the focus session), that row first."""
    out = table.copy()
    is_focus = out[column].astype(str) == str(focus) if focus else pd.Series(False,
                                                                            index=out.index)
    out.insert(0, "focus", is_focus.to_numpy())
    return pd.concat([out[is_focus], out[~is_focus]]).reset_index(drop=True)


def page_rows(page: pd.DataFrame, risk: pd.DataFrame,
              extra: Sequence[pd.DataFrame] = (), focus: str | None = None) -> pd.DataFrame:
    """The page's sessions (session_id, start_ts, end_ts, n_events) led by risk, flagged and
    decision from ``risk`` (``User360.sessions``), then any ``extra`` columns by session;
    the ``focus`` session is added when it is on another page."""
    base = page[["session_id", "start_ts", "end_ts", "n_events"]]
    if focus and not (base["session_id"].astype(str) == str(focus)).any():
        found = risk.loc[risk["session_id"].astype(str) == str(focus), list(base.columns)]
        base = pd.concat([found, base], ignore_index=True)
    cols = ["session_id", "risk", "flagged", "decision", "decided_case", "open_case"]
    out = base.merge(risk[cols], on="session_id", how="left")
    out["flagged"] = out["flagged"].fillna(False).astype(bool)
    out["risk"] = pd.to_numeric(out["risk"], errors="coerce").round(0)
    for frame in extra:
        out = out.merge(frame, on="session_id", how="left")
    first = ["session_id", "risk", "flagged", "decision"]
    return out[first + [c for c in out.columns if c not in first]]


def linked_rows(linked: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The linked accounts (``UserView.linked``: user_id, shared, n_shared) with their
    highest risk (rounded), decision, decided case and sessions (``User360.linked``)."""
    out = linked.merge(summary, on="user_id", how="left")
    out["max_risk"] = pd.to_numeric(out["max_risk"], errors="coerce").round(0)
    return out


def graph_users(summary: pd.DataFrame, people: pd.DataFrame, user_id: str,
                limit: int) -> pd.DataFrame:
    """The user's own row (``User360.linked``) then the ``limit`` most linked accounts."""
    me = summary[summary["user_id"].astype(str) == str(user_id)]
    return pd.concat([me, people.head(limit)], ignore_index=True)
