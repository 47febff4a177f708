"""Session-level reads that are not scores: meta rows, details of a few, event-type filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
_EXISTING = """
    SELECT session_id FROM sessions
    SEMI JOIN (SELECT unnest($session_ids) AS session_id) ids USING (session_id)
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

    def meta(self) -> pd.DataFrame:
        """session_id, user_id, start_ts, end_ts, n_events of every session, in time order."""
        return self._store._frame("sessions.meta", _META)

    def meta_of(self, session_ids: Sequence[str]) -> pd.DataFrame:
        """session_id, start_ts, end_ts, n_events, country of ``session_ids`` (any order)."""
        return self._store._frame("sessions.meta_of", _META_OF, {"session_ids": list(session_ids)})

    def existing(self, session_ids: Sequence[str]) -> set[str]:
        """Those of ``session_ids`` the store holds."""
        rows = self._store._rows("sessions.existing", _EXISTING,
                                 {"session_ids": list(session_ids)})
        return {str(r[0]) for r in rows}

    def owner(self, session_id: str) -> str | None:
        """The user of the session, None when there is no such session."""
        owner = self._store._scalar("sessions.owner", _OWNER, {"session_id": session_id})
        return None if owner is None else str(owner)

    def details(self, session_ids: Sequence[str], sources: Sequence[str]) -> pd.DataFrame:
        """session_id, is_anomaly, scenario (NA when unlabelled; an analyst's label wins),
        amount (0 without any) of ``session_ids``."""
        return self._store._large_frame("sessions.details", _DETAILS, {
            "session_ids": list(session_ids), "sources": list(sources)})

    def with_event_types(self, event_types: Sequence[str]) -> list[str]:
        """Sessions holding at least one event of ``event_types``."""
        rows = self._store._rows("sessions.with_event_types", _WITH_EVENT_TYPES,
                                 {"event_types": list(event_types)})
        return [str(r[0]) for r in rows]

    def event_type_names(self) -> list[str]:
        return [str(r[0]) for r in self._store._rows("sessions.event_type_names",
                                                     _EVENT_TYPE_NAMES)]
