"""Named SQL for supervised training (merged into ``core.store.queries.QUERIES``)."""

from __future__ import annotations

QUERIES: dict[str, str] = {
    # One label per labelled event, from the given sources; an analyst's label overrides the
    # ground truth (the precedence of ``session_labels``).
    "training_event_labels": """
        SELECT e.session_id, l.entity_id AS event_id, l.is_anomaly
        FROM labels l JOIN events e ON e.event_id = l.entity_id
        WHERE l.level = 'event' AND list_contains($sources, l.source)
        QUALIFY row_number() OVER (
            PARTITION BY l.entity_id
            ORDER BY CASE l.source WHEN 'analyst' THEN 0 ELSE 1 END) = 1
    """,
}
