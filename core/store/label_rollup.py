"""One label per (session, source), kept next to the raw labels.

Labels arrive per session, per event or per user. The pages need one label per session, and
deriving it from event labels joins the labels with every event: seconds at a million
sessions (docs/BENCHMARKS.md, 'Measurements behind design choices'), paid on every page's first
render. So the derivation runs when labels or events are written
(in the same transaction) and the reads take ``session_label_rollup`` as it is.

Rule: an explicit session label wins; otherwise a session with event labels is anomalous when
any of its labelled events is (scenario: the first anomalous event's, by name). User-level
labels do not make session labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.store import Store

ROLLUP_SELECT = """
    WITH explicit AS (
        SELECT entity_id AS session_id, source, is_anomaly, scenario
        FROM labels WHERE level = 'session' AND list_contains({sources}, source)
    ),
    from_events AS (
        SELECT e.session_id, l.source, bool_or(l.is_anomaly) AS is_anomaly,
               min(l.scenario) FILTER (WHERE l.is_anomaly) AS scenario
        FROM labels l JOIN events e ON e.event_id = l.entity_id
        WHERE l.level = 'event' AND list_contains({sources}, l.source)
        GROUP BY e.session_id, l.source
    )
    SELECT session_id, source, is_anomaly, coalesce(scenario, 'unspecified') AS scenario
    FROM explicit
    UNION ALL
    SELECT f.session_id, f.source, f.is_anomaly, coalesce(f.scenario, 'unspecified')
    FROM from_events f
    ANTI JOIN explicit x ON x.session_id = f.session_id AND x.source = f.source
"""

CHOSEN_LABELS = """
    SELECT session_id, is_anomaly, scenario, source FROM session_label_rollup
    WHERE list_contains($sources, source)
      AND (source = 'analyst' OR NOT list_contains($sources, 'analyst')
           OR session_id NOT IN (SELECT session_id FROM session_label_rollup
                                 WHERE source = 'analyst'))
"""
"""SQL: one label per session from ``$sources``; with both sources an analyst's label wins."""

CREATE_TABLE = """
    CREATE TABLE IF NOT EXISTS session_label_rollup (
        session_id VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        is_anomaly BOOLEAN NOT NULL,
        scenario VARCHAR NOT NULL
    )
"""

_CLEAR = "DELETE FROM session_label_rollup WHERE list_contains($sources, source)"
_FILL = "INSERT INTO session_label_rollup " + ROLLUP_SELECT.format(sources="$sources")
_SOURCES_OF_INGEST = """
    SELECT DISTINCT l.source FROM labels l JOIN events e ON e.event_id = l.entity_id
    WHERE l.level = 'event' AND e.ingest_id = $ingest_id
"""


def refresh_session_labels(store: Store, sources: Sequence[str]) -> None:
    """Rebuild the rolled-up session labels of ``sources``; call inside the writing
    transaction, so readers never see labels and rollup disagree."""
    if sources:
        params = {"sources": list(sources)}
        store._execute("session_label_rollup_clear", _CLEAR, params)
        store._execute("session_label_rollup_fill", _FILL, params)


def refresh_after_event_ingest(store: Store, ingest_id: int) -> None:
    """Event labels that arrived before their events apply once the events do."""
    rows = store._rows("event_labels_of_ingest", _SOURCES_OF_INGEST, {"ingest_id": ingest_id})
    refresh_session_labels(store, [str(r[0]) for r in rows])
