"""Labels: staged upserts, one label per session, the event labels supervised training reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.store.label_rollup import (
    CHOSEN_LABELS,
    refresh_after_event_ingest,
    refresh_session_labels,
)

if TYPE_CHECKING:
    from core.store import Store

# Both read ``_label_stage`` (level, entity_id, is_anomaly, scenario, note), built by the
# label ingest.
_UPSERT_STAGED = """
    INSERT OR REPLACE INTO labels
    SELECT level, entity_id, is_anomaly, scenario, $source, $created_at, note, $ingest_id
    FROM _label_stage
"""
_UNKNOWN_STAGED = """
    SELECT count(*) FROM _label_stage l
    WHERE (l.level = 'session' AND l.entity_id NOT IN (SELECT session_id FROM sessions))
       OR (l.level = 'user' AND l.entity_id NOT IN (SELECT user_id FROM sessions))
       OR (l.level = 'event' AND l.entity_id NOT IN (SELECT event_id FROM events))
"""
# One label per labelled event, from the given sources; an analyst's label overrides the
# ground truth (the precedence of ``session_labels``).
_TRAINING_EVENT_LABELS = """
    SELECT e.session_id, l.entity_id AS event_id, l.is_anomaly
    FROM labels l JOIN events e ON e.event_id = l.entity_id
    WHERE l.level = 'event' AND list_contains($sources, l.source)
    QUALIFY row_number() OVER (
        PARTITION BY l.entity_id
        ORDER BY CASE l.source WHEN 'analyst' THEN 0 ELSE 1 END) = 1
"""

# A fingerprint of each source's session labels: changes whenever one is added, removed or
# changed (~20 ms at 708k labels, against ~1 s to read them).
_VERSIONS = """
    SELECT source, count(*), bit_xor(hash(session_id, is_anomaly, scenario))
    FROM session_label_rollup GROUP BY source ORDER BY source
"""


class Labels:
    """The ``labels`` table and its per-session rollup (core.store.label_rollup)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def session_labels(self, sources: Sequence[str]) -> pd.DataFrame:
        """session_id, is_anomaly, scenario, source: one label per session from ``sources``;
        with both sources an analyst's label wins."""
        return self._store._large_frame("session_labels", CHOSEN_LABELS,
                                        {"sources": list(sources)})

    def versions(self) -> dict[str, tuple[int, int]]:
        """source -> (labelled sessions, a hash of their labels): equal while they are."""
        rows = self._store._memoized(("label_versions",),
                                     lambda: self._store._rows("label_versions", _VERSIONS))
        return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}

    def training_event_labels(self, sources: Sequence[str]) -> pd.DataFrame:
        """session_id, event_id, is_anomaly of every labelled event (analyst first)."""
        return self._store._frame("training_event_labels", _TRAINING_EVENT_LABELS,
                                  {"sources": list(sources)})

    def unknown_staged_ids(self) -> int:
        """Staged labels whose id is not (yet) in the store."""
        return int(self._store._scalar("unknown_label_ids", _UNKNOWN_STAGED))

    def upsert_staged(self, *, source: str, created_at: Any, ingest_id: int) -> None:
        """Write the staged labels as ``source``'s, replacing earlier ones of the same ids,
        and refresh the rollup; call inside the writing transaction."""
        self._store._execute("upsert_labels", _UPSERT_STAGED, {
            "source": source, "created_at": created_at, "ingest_id": ingest_id})
        self.refresh_rollup([source])

    def refresh_rollup(self, sources: Sequence[str]) -> None:
        """Rebuild the rolled-up session labels of ``sources`` (inside the writing
        transaction, so readers never see labels and rollup disagree)."""
        refresh_session_labels(self._store, sources)

    def refresh_after_event_ingest(self, ingest_id: int) -> None:
        """Event labels that arrived before their events apply once the events do."""
        refresh_after_event_ingest(self._store, ingest_id)
