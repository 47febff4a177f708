"""Named SQL for the store. Values are always bound as parameters, never formatted in.

A failing query's error carries its name (see ``Store.run``).
"""

from __future__ import annotations

from core.store.label_rollup import CHOSEN_LABELS
from core.store.tenure import tenure_sql

QUERIES: dict[str, str] = {
    # --- info -------------------------------------------------------------------------------
    "count_events": "SELECT count(*) FROM events",
    # What session features are a function of (core.pipeline.feature_cache): events change
    # only through ingests, and a recreated store has other ingest start times.
    "events_fingerprint": """
        SELECT (SELECT count(*) FROM events), max(ingest_id), arg_max(started_at, ingest_id)
        FROM ingests
    """,
    "count_sessions": "SELECT count(*) FROM sessions",
    "count_users": "SELECT count(DISTINCT user_id) FROM sessions",
    "time_range": "SELECT min(start_ts), max(end_ts) FROM sessions",
    # The data's span without far-out timestamps: sessions starting and ending inside Tukey's
    # far-out fences of the session starts (Q1 - 3 IQR, Q3 + 3 IQR; IQR at least a day), in
    # microseconds so no timestamp overflows, clamped to what Python's datetime holds.
    "robust_time_span": """
        WITH q AS (
            SELECT quantile_cont(epoch_us(start_ts)::DOUBLE, 0.25) AS q1,
                   quantile_cont(epoch_us(start_ts)::DOUBLE, 0.75) AS q3
            FROM sessions
        ),
        f AS (SELECT q1 - 3 * greatest(q3 - q1, 86400e6) AS lo,
                     q3 + 3 * greatest(q3 - q1, 86400e6) AS hi FROM q)
        SELECT greatest(min(start_ts), TIMESTAMP '0001-01-01'),
               least(max(end_ts), TIMESTAMP '9999-12-31 23:59:59')
        FROM sessions, f
        WHERE epoch_us(start_ts) >= f.lo AND epoch_us(end_ts) <= f.hi
    """,
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
               min(ts) AS start_ts, max(ts) AS end_ts, count(*) AS n_events,
               min(country) AS country
        FROM events WHERE ingest_id = ? GROUP BY session_id
    """,
    "session_clash": """
        SELECT a.session_id, [a.user_id, coalesce(s.user_id, a.other_user)]
        FROM _session_agg a LEFT JOIN sessions s USING (session_id)
        WHERE a.user_id <> a.other_user OR a.user_id <> coalesce(s.user_id, a.user_id)
        LIMIT 1
    """,
    "merge_sessions": """
        INSERT INTO sessions (session_id, user_id, start_ts, end_ts, n_events, country)
        SELECT session_id, user_id, start_ts, end_ts, n_events, country FROM _session_agg
        ON CONFLICT (session_id) DO UPDATE SET
            start_ts = least(sessions.start_ts, excluded.start_ts),
            end_ts = greatest(sessions.end_ts, excluded.end_ts),
            n_events = sessions.n_events + excluded.n_events,
            country = coalesce(least(sessions.country, excluded.country), sessions.country,
                               excluded.country)
    """,
    # Each user's distinct devices, IPs and payment methods: linked accounts read this small
    # table instead of scanning every event four times.
    "merge_user_entities": """
        INSERT INTO user_entities
        SELECT DISTINCT n.kind, n.value, n.user_id FROM (
            SELECT 'device' AS kind, device_id AS value, user_id FROM events
            WHERE ingest_id = $ingest_id AND device_id IS NOT NULL
            UNION ALL
            SELECT 'ip', ip, user_id FROM events WHERE ingest_id = $ingest_id AND ip IS NOT NULL
            UNION ALL
            SELECT 'payment', payment_id, user_id FROM events
            WHERE ingest_id = $ingest_id AND payment_id IS NOT NULL
        ) n
        ANTI JOIN user_entities u ON u.kind = n.kind AND u.value = n.value
                                    AND u.user_id = n.user_id
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
    # --- reads for the dashboard and CLI (core.lookups) ---------------------------------------
    # One label per session, read from the rollup that label and event writes keep
    # (core.store.label_rollup). With both sources, an analyst's decision overrides the
    # ground truth for that session.
    "session_labels": CHOSEN_LABELS,
    "model_scores": """
        SELECT s.session_id, se.user_id, se.start_ts, s.score
        FROM scores s JOIN sessions se USING (session_id)
        WHERE s.model_id = $model_id
        ORDER BY se.start_ts, s.session_id
    """,
    "all_scores_wide": """
        SELECT s.session_id, s.model_id, s.score,
               percent_rank() OVER (PARTITION BY s.model_id ORDER BY s.score) AS percentile
        FROM scores s
    """,
    "session_segments": f"""
        SELECT session_id,
               {tenure_sql("start_ts", "min(start_ts) OVER (PARTITION BY user_id)")} AS tenure,
               coalesce(country, 'unknown') AS country
        FROM sessions
    """,
    "thresholds_for_model": """
        SELECT segment, threshold, set_by, set_at FROM thresholds WHERE model_id = $model_id
        ORDER BY segment
    """,
    "save_threshold": """
        INSERT OR REPLACE INTO thresholds VALUES ($model_id, $segment, $threshold, $set_by,
                                                  $set_at)
    """,
    "delete_threshold": "DELETE FROM thresholds WHERE model_id = $model_id AND segment = $segment",
    # --- models and scores (core.pipeline) --------------------------------------------------
    "register_model": """
        INSERT INTO models (model_id, detector, created_at, config, feature_hash, feature_spec,
                            train_start, train_end, n_train, metrics, path, device,
                            origin_path, digest)
        VALUES ($model_id, $detector, $created_at, $config, $feature_hash, $feature_spec,
                $train_start, $train_end, $n_train, $metrics, $path, $device, $origin_path,
                $digest)
    """,
    "model_by_id": "SELECT * FROM models WHERE model_id = $model_id",
    "latest_model_of": """
        SELECT model_id FROM models WHERE detector = $detector ORDER BY created_at DESC LIMIT 1
    """,
    # input_kind: 'sequences' or 'features' (an ensemble counts as features), read from the
    # spec the model was trained on, so a page need not import the detectors (torch) to know.
    "scored_models": """
        SELECT m.model_id, m.detector, m.created_at, m.train_end, c.n_scores,
               CASE json_extract_string(m.feature_spec, '$.kind') WHEN 'sequences'
                    THEN 'sequences' ELSE 'features' END AS input_kind
        FROM models m
        JOIN (SELECT model_id, count(*) AS n_scores FROM scores GROUP BY model_id) c
            USING (model_id)
        ORDER BY m.created_at, m.model_id
    """,
    # A model's scores with the session's label (NULL when unlabelled), in time order.
    "labelled_scores": f"""
        WITH l AS ({CHOSEN_LABELS})
        SELECT s.session_id, se.user_id, se.start_ts, s.score, l.is_anomaly, l.scenario
        FROM scores s JOIN sessions se USING (session_id) LEFT JOIN l USING (session_id)
        WHERE s.model_id = $model_id
        ORDER BY se.start_ts, s.session_id
    """,
    "unscored_sessions": """
        SELECT session_id FROM sessions
        WHERE session_id NOT IN (SELECT session_id FROM scores WHERE model_id = $model_id)
    """,
    "delete_scores": "DELETE FROM scores WHERE model_id = $model_id",
    "delete_scores_of": """
        DELETE FROM scores WHERE model_id = $model_id
          AND session_id IN (SELECT session_id FROM _new_scores)
    """,
    "insert_scores": """
        INSERT INTO scores SELECT $model_id, session_id, score, $scored_at FROM _new_scores
    """,
    "delete_event_scores": "DELETE FROM event_scores WHERE model_id = $model_id",
    "delete_event_scores_of": """
        DELETE FROM event_scores WHERE model_id = $model_id
          AND session_id IN (SELECT session_id FROM _new_scores)
    """,
    "insert_event_scores": """
        INSERT INTO event_scores
        SELECT $model_id, session_id, event_id, position, score FROM _new_event_scores
    """,
    "export_scores": """
        SELECT s.model_id, s.session_id, se.user_id, s.score
        FROM scores s JOIN sessions se USING (session_id)
        ORDER BY s.model_id, se.start_ts, s.session_id
    """,
}



def score_table_sql(n_models: int) -> str:
    """One row per session with its segment and one score column per model (``$m0``,
    ``$m1``, ... bound to the model ids; columns ``s0``, ``s1``, ...), in (start_ts, session_id)
    order. One query, so DuckDB joins in parallel instead of pandas merging strings; the
    first session per user is a grouped join, not a window (0.58 -> 0.45 s at 1M sessions)."""
    joins = "".join(
        f"\n        LEFT JOIN (SELECT session_id, score FROM scores WHERE model_id = $m{i}) s{i}"
        f" USING (session_id)" for i in range(n_models))
    columns = "".join(f", s{i}.score AS s{i}" for i in range(n_models))
    return f"""
        SELECT se.session_id, se.user_id, se.start_ts, se.end_ts, se.n_events,
               {tenure_sql("se.start_ts", "f.first_ts")} AS tenure,
               coalesce(se.country, 'unknown') AS country{columns}
        FROM sessions se
        JOIN (SELECT user_id, min(start_ts) AS first_ts FROM sessions GROUP BY user_id) f
            ON f.user_id = se.user_id{joins}
        ORDER BY se.start_ts, se.session_id
    """

def _merge_feature_queries() -> None:
    """Each feature keeps its SQL in its own module; names must not collide."""
    import core.store.queries_ensemble as queries_ensemble
    import core.store.queries_training as queries_training

    for module in (queries_ensemble, queries_training):
        clash = set(QUERIES) & set(module.QUERIES)
        if clash:
            raise RuntimeError(f"query names must be unique, got {sorted(clash)} twice")
        QUERIES.update(module.QUERIES)


_merge_feature_queries()
