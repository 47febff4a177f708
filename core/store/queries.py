"""Named SQL for the store. Values are always bound as parameters, never formatted in.

A failing query's error carries its name (see ``Store.run``).
"""

from __future__ import annotations

QUERIES: dict[str, str] = {
    # --- info -------------------------------------------------------------------------------
    "count_events": "SELECT count(*) FROM events",
    "count_sessions": "SELECT count(*) FROM sessions",
    "count_users": "SELECT count(DISTINCT user_id) FROM sessions",
    "time_range": "SELECT min(start_ts), max(end_ts) FROM sessions",
    "event_type_counts": """
        SELECT event_type, count(*) AS n FROM events GROUP BY event_type ORDER BY n DESC, event_type
    """,
    "label_counts": """
        SELECT source, level, coalesce(scenario, 'unspecified') AS scenario,
               count(*) FILTER (WHERE is_anomaly) AS n_anomalous,
               count(*) FILTER (WHERE NOT is_anomaly) AS n_normal
        FROM labels GROUP BY ALL ORDER BY source, level, scenario
    """,
    "model_list": """
        SELECT m.model_id, m.detector, m.created_at, m.n_train, m.train_end, m.device,
               (SELECT count(*) FROM scores s WHERE s.model_id = m.model_id) AS n_scores
        FROM models m ORDER BY m.created_at
    """,
    "ingest_log": "SELECT * FROM ingests ORDER BY ingest_id",
    # --- ingest bookkeeping -----------------------------------------------------------------
    "next_ingest_id": "SELECT nextval('ingest_id_seq')",
    "record_ingest": "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    # Session rows are merged from this ingest's events alone: min/max/count combine, so
    # existing events need not be re-read.
    "session_aggregates": """
        CREATE OR REPLACE TEMP TABLE _session_agg AS
        SELECT session_id, min(user_id) AS user_id, max(user_id) AS other_user,
               min(ts) AS start_ts, max(ts) AS end_ts, count(*) AS n_events
        FROM events WHERE ingest_id = ? GROUP BY session_id
    """,
    "session_clash": """
        SELECT a.session_id, [a.user_id, coalesce(s.user_id, a.other_user)]
        FROM _session_agg a LEFT JOIN sessions s USING (session_id)
        WHERE a.user_id <> a.other_user OR a.user_id <> coalesce(s.user_id, a.user_id)
        LIMIT 1
    """,
    "merge_sessions": """
        INSERT INTO sessions
        SELECT session_id, user_id, start_ts, end_ts, n_events FROM _session_agg
        ON CONFLICT (session_id) DO UPDATE SET
            start_ts = least(sessions.start_ts, excluded.start_ts),
            end_ts = greatest(sessions.end_ts, excluded.end_ts),
            n_events = sessions.n_events + excluded.n_events
    """,
    # --- labels -----------------------------------------------------------------------------
    "upsert_labels": """
        INSERT OR REPLACE INTO labels
        SELECT level, entity_id, is_anomaly, scenario, ?, ?, note, ?
        FROM _label_stage
    """,
    "unknown_label_ids": """
        SELECT count(*) FROM _label_stage l
        WHERE (l.level = 'session' AND l.entity_id NOT IN (SELECT session_id FROM sessions))
           OR (l.level = 'user' AND l.entity_id NOT IN (SELECT user_id FROM sessions))
           OR (l.level = 'event' AND l.entity_id NOT IN (SELECT event_id FROM events))
    """,
}
