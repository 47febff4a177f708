"""Named SQL for explain (merged into ``core.store.queries.QUERIES``)."""

from __future__ import annotations

from core.store.tenure import tenure_sql

_FIRST_START = "(SELECT min(f.start_ts) FROM sessions f WHERE f.user_id = s.user_id)"

QUERIES: dict[str, str] = {
    "explain_session_row": f"""
        SELECT s.session_id, s.user_id, s.start_ts, s.end_ts, s.n_events,
               coalesce(s.country, 'unknown') AS country,
               {tenure_sql("s.start_ts", _FIRST_START)} AS tenure
        FROM sessions s WHERE s.session_id = $session_id
    """,
    # Every model that scored the session, with where the session ranks among its scores.
    "explain_session_models": """
        WITH mine AS (SELECT model_id, score FROM scores WHERE session_id = $session_id)
        SELECT m.model_id, mo.detector, mo.created_at, m.score,
               count(*) FILTER (WHERE s.score < m.score) AS n_lower, count(*) AS n_scores
        FROM mine m JOIN scores s USING (model_id) JOIN models mo USING (model_id)
        GROUP BY ALL ORDER BY mo.created_at, m.model_id
    """,
    "explain_user_other_sessions": """
        SELECT session_id, start_ts FROM sessions
        WHERE user_id = $user_id AND session_id <> $session_id
        ORDER BY start_ts DESC, session_id LIMIT $limit
    """,
    # A stable pseudo-random sample: ordered by the hash of the id, so the same store gives
    # the same sample in every process.
    "explain_population_sample": """
        SELECT session_id FROM sessions ORDER BY hash(session_id), session_id LIMIT $limit
    """,
    # Normal sessions of the training window: no anomalous label of any level or source.
    "explain_background_sample": """
        SELECT s.session_id FROM sessions s
        WHERE ($train_end IS NULL OR s.start_ts < $train_end)
          AND s.session_id NOT IN (SELECT entity_id FROM labels
                                   WHERE level = 'session' AND is_anomaly)
          AND s.session_id NOT IN (SELECT e.session_id FROM labels l
                                   JOIN events e ON e.event_id = l.entity_id
                                   WHERE l.level = 'event' AND l.is_anomaly)
        ORDER BY hash(s.session_id), s.session_id LIMIT $limit
    """,
    "explain_session_events": """
        SELECT event_id, ts, event_type, amount, quantity, item_id, category, device_id, ip,
               country, payment_id, text
        FROM events WHERE session_id = $session_id ORDER BY ts, event_id
    """,
    "explain_members": """
        SELECT c.member_id, coalesce(m.detector, c.member_id) AS detector, c.contribution
        FROM score_contributions c LEFT JOIN models m ON m.model_id = c.member_id
        WHERE c.model_id = $model_id AND c.session_id = $session_id
        ORDER BY c.contribution DESC, c.member_id
    """,
    # --- the explanations cache -------------------------------------------------------------
    "explain_cache_rows": """
        SELECT method, computed_at, payload FROM explanations
        WHERE model_id = $model_id AND session_id = $session_id ORDER BY method
    """,
    "explain_cache_delete": """
        DELETE FROM explanations WHERE model_id = $model_id AND session_id = $session_id
    """,
    "explain_cache_insert": """
        INSERT INTO explanations VALUES ($model_id, $session_id, $method, $computed_at, $payload)
    """,
    "explain_cache_count": "SELECT count(*) FROM explanations WHERE model_id = $model_id",
    # --- ground truth for the fidelity benchmark --------------------------------------------
    "explain_event_labels": """
        SELECT e.session_id, l.entity_id AS event_id, l.is_anomaly, l.scenario
        FROM labels l JOIN events e ON e.event_id = l.entity_id
        WHERE l.level = 'event' AND l.source = 'ground_truth'
        ORDER BY e.session_id, l.entity_id
    """,
}
