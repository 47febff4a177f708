"""Session-level reads that are not scores: meta rows, details of a few, event-type filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.store.label_rollup import CHOSEN_LABELS

if TYPE_CHECKING:
    from core.store import Store

_META = """
    SELECT session_id, user_id, start_ts, end_ts, n_events FROM sessions
    ORDER BY start_ts, session_id
"""
_META_OF = """
    SELECT session_id, start_ts, end_ts, n_events, country FROM sessions
    WHERE list_contains($session_ids, session_id)
"""
_OWNER = "SELECT user_id FROM sessions WHERE session_id = $session_id"
# Label (from the chosen sources, analysts first) and amount of a few sessions.
_DETAILS = f"""
    WITH ids AS (SELECT DISTINCT unnest($session_ids) AS session_id),
    l AS (SELECT r.* FROM ({CHOSEN_LABELS}) r SEMI JOIN ids USING (session_id)),
    a AS (
        SELECT e.session_id, sum(e.amount) AS amount FROM events e
        SEMI JOIN ids USING (session_id) GROUP BY e.session_id
    )
    SELECT ids.session_id, l.is_anomaly, l.scenario, coalesce(a.amount, 0) AS amount
    FROM ids LEFT JOIN l USING (session_id) LEFT JOIN a USING (session_id)
"""
_WITH_EVENT_TYPES = """
    SELECT DISTINCT session_id FROM events WHERE list_contains($event_types, event_type)
"""
_EVENT_TYPE_NAMES = "SELECT DISTINCT event_type FROM events ORDER BY 1"


class Sessions:
    """Reads of the ``sessions`` table and of sessions through their events."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _frame(self, name: str, sql: str, params: dict[str, Any] | None = None
               ) -> pd.DataFrame:
        return self._store._execute(f"sessions.{name}", sql, params).df()

    def meta(self) -> pd.DataFrame:
        """session_id, user_id, start_ts, end_ts, n_events of every session, in time order."""
        return self._frame("meta", _META)

    def meta_of(self, session_ids: Sequence[str]) -> pd.DataFrame:
        """session_id, start_ts, end_ts, n_events, country of ``session_ids`` (any order)."""
        return self._frame("meta_of", _META_OF, {"session_ids": list(session_ids)})

    def owner(self, session_id: str) -> str | None:
        """The user of the session, None when there is no such session."""
        rows = self._store._execute("sessions.owner", _OWNER,
                                       {"session_id": session_id}).fetchall()
        return str(rows[0][0]) if rows else None

    def details(self, session_ids: Sequence[str], sources: Sequence[str]) -> pd.DataFrame:
        """session_id, is_anomaly, scenario (NA when unlabelled; an analyst's label wins),
        amount (0 without any) of ``session_ids``."""
        return self._store._large_frame("sessions.details", _DETAILS, {
            "session_ids": list(session_ids), "sources": list(sources)})

    def with_event_types(self, event_types: Sequence[str]) -> list[str]:
        """Sessions holding at least one event of ``event_types``."""
        return self._frame("with_event_types", _WITH_EVENT_TYPES,
                           {"event_types": list(event_types)})["session_id"].tolist()

    def event_type_names(self) -> list[str]:
        return self._frame("event_type_names", _EVENT_TYPE_NAMES)["event_type"].tolist()
