"""Named SQL for cases, the audit log and suppressions (merged into ``core.store.queries``).

The audit log is append-only: the only statement touching ``audit_log`` here is an INSERT,
and a test scans the code base for any UPDATE or DELETE of it.
"""

from __future__ import annotations

QUERIES: dict[str, str] = {
    # --- cases ------------------------------------------------------------------------------
    # Case ids are C-00001, C-00002, ...: the next number is read inside the opening transaction
    # (DuckDB has one writer per file, and the primary key refuses a clash).
    "case_next_id": """
        SELECT coalesce(max(TRY_CAST(substr(case_id, 3) AS BIGINT)), 0) + 1 FROM cases
        WHERE case_id LIKE 'C-%'
    """,
    "case_insert": """
        INSERT INTO cases (case_id, user_id, status, assignee, title, created_by, created_at,
                           updated_at)
        VALUES ($case_id, $user_id, 'open', NULL, $title, $created_by, $now, $now)
    """,
    "case_add_sessions": """
        INSERT OR IGNORE INTO case_sessions
        SELECT $case_id, s.session_id FROM unnest($session_ids) AS s(session_id)
    """,
    "case_by_id": "SELECT * FROM cases WHERE case_id = $case_id",
    "case_session_ids": """
        SELECT cs.session_id FROM case_sessions cs JOIN sessions se USING (session_id)
        WHERE cs.case_id = $case_id ORDER BY se.start_ts, cs.session_id
    """,
    "case_sessions_meta_by_ids": """
        SELECT session_id, start_ts, end_ts, n_events, country FROM sessions
        WHERE list_contains($session_ids, session_id)
    """,
    "active_case_of_user": """
        SELECT case_id FROM cases WHERE user_id = $user_id AND status <> 'closed'
        ORDER BY created_at, case_id LIMIT 1
    """,
    "case_set_assignee": """
        UPDATE cases SET assignee = $assignee, status = $status, updated_at = $now
        WHERE case_id = $case_id
    """,
    "case_touch": "UPDATE cases SET updated_at = $now WHERE case_id = $case_id",
    "case_set_decision": """
        UPDATE cases SET status = 'closed', decision = $decision, scenario = $scenario,
                         decided_by = $analyst, decided_at = $now, updated_at = $now,
                         snapshot = $snapshot
        WHERE case_id = $case_id
    """,
    "case_clear_decision": """
        UPDATE cases SET status = $status, decision = NULL, scenario = NULL, decided_by = NULL,
                         decided_at = NULL, snapshot = NULL, updated_at = $now
        WHERE case_id = $case_id
    """,
    "case_list": """
        SELECT c.case_id, c.user_id, c.status, c.assignee, c.decision, c.scenario, c.title,
               c.created_by, c.created_at, c.updated_at, c.decided_by, c.decided_at,
               (SELECT count(*) FROM case_sessions cs WHERE cs.case_id = c.case_id)
                   AS n_sessions,
               (SELECT count(*) FROM case_notes n WHERE n.case_id = c.case_id) AS n_notes
        FROM cases c
        WHERE list_contains($statuses, c.status)
          AND (coalesce($assignee, '') = '' OR c.assignee = $assignee)
        ORDER BY c.created_at, c.case_id
    """,
    "case_next_open": """
        SELECT case_id FROM cases WHERE status = 'open' AND assignee IS NULL
        ORDER BY created_at, case_id LIMIT 1
    """,
    "case_mine_investigating": """
        SELECT case_id FROM cases WHERE status = 'investigating' AND assignee = $assignee
        ORDER BY updated_at, case_id LIMIT 1
    """,
    # --- notes ------------------------------------------------------------------------------
    "case_note_insert": """
        INSERT INTO case_notes VALUES (nextval('case_note_id_seq'), $case_id, $author, $now,
                                       $text)
        RETURNING note_id
    """,
    "case_notes_of": """
        SELECT note_id, author, created_at, text FROM case_notes WHERE case_id = $case_id
        ORDER BY created_at, note_id
    """,
    # --- audit log: INSERT and SELECT only ----------------------------------------------------
    "audit_insert": """
        INSERT INTO audit_log VALUES (nextval('audit_id_seq'), $now, $actor, $action, $case_id,
                                      $entity, $detail)
    """,
    "audit_of_case": """
        SELECT audit_id, logged_at, actor, action, case_id, entity, detail FROM audit_log
        WHERE case_id = $case_id ORDER BY audit_id
    """,
    "audit_recent": """
        SELECT audit_id, logged_at, actor, action, case_id, entity, detail FROM audit_log
        ORDER BY audit_id DESC LIMIT $limit
    """,
    # --- analyst labels (one per session; the note names the case that wrote it) -------------
    "analyst_labels_of_case": """
        SELECT entity_id AS session_id, is_anomaly, scenario, created_at, note FROM labels
        WHERE level = 'session' AND source = 'analyst' AND note = $note
        ORDER BY entity_id
    """,
    # A session's analyst label is the latest conclusive decision of any closed case holding
    # it (inconclusive adds none): rebuilt for the touched sessions after a decide or reopen.
    "analyst_case_labels_clear": """
        DELETE FROM labels
        WHERE level = 'session' AND source = 'analyst' AND starts_with(note, 'case:')
          AND list_contains($session_ids, entity_id)
    """,
    "analyst_case_labels_rebuild": """
        INSERT OR REPLACE INTO labels (level, entity_id, is_anomaly, scenario, source,
                                       created_at, note, ingest_id)
        SELECT 'session', cs.session_id, c.decision = 'fraud_confirmed',
               CASE WHEN c.decision = 'fraud_confirmed' THEN c.scenario ELSE $normal END,
               'analyst', c.decided_at, 'case:' || c.case_id, NULL
        FROM case_sessions cs JOIN cases c ON c.case_id = cs.case_id
        WHERE list_contains($session_ids, cs.session_id) AND c.status = 'closed'
          AND c.decision IN ('fraud_confirmed', 'false_positive')
        QUALIFY row_number() OVER (PARTITION BY cs.session_id
                                   ORDER BY c.decided_at DESC, c.case_id DESC) = 1
    """,
    "analyst_label_count": """
        SELECT count(*) FROM labels WHERE source = 'analyst' AND level = 'session'
    """,
    # --- lookups for opening and reporting ----------------------------------------------------
    "session_owner": "SELECT user_id FROM sessions WHERE session_id = $session_id",
    "user_session_ids": """
        SELECT session_id FROM sessions WHERE user_id = $user_id ORDER BY start_ts, session_id
    """,
    "user_profile": """
        SELECT count(DISTINCT session_id) AS n_sessions, count(*) AS n_events,
               min(ts) AS first_seen, max(ts) AS last_seen,
               count(DISTINCT device_id) AS n_devices, count(DISTINCT ip) AS n_ips,
               count(DISTINCT payment_id) AS n_payment_methods,
               string_agg(DISTINCT country, ', ' ORDER BY country) AS countries,
               coalesce(sum(amount), 0) AS total_amount,
               count(*) FILTER (WHERE event_type = 'purchase') AS n_purchases
        FROM events WHERE user_id = $user_id
    """,
    "event_score_models": """
        SELECT m.model_id FROM models m
        WHERE m.model_id IN (SELECT DISTINCT model_id FROM event_scores
                             WHERE list_contains($session_ids, session_id))
        ORDER BY m.created_at DESC, m.model_id
    """,
    "user_label_rows": """
        SELECT level, is_anomaly, scenario, source FROM labels
        WHERE level = 'user' AND entity_id = $user_id ORDER BY source
    """,
    # --- suppressions -------------------------------------------------------------------------
    "suppression_insert": """
        INSERT INTO suppressions VALUES (nextval('suppression_id_seq'), $kind, $value, $reason,
                                         $actor, $now, $expires_at, NULL, NULL)
        RETURNING suppression_id
    """,
    "suppression_by_id": "SELECT * FROM suppressions WHERE suppression_id = $suppression_id",
    "suppression_lift": """
        UPDATE suppressions SET lifted_by = $actor, lifted_at = $now
        WHERE suppression_id = $suppression_id
    """,
    "suppressions_active": """
        SELECT suppression_id, kind, value, reason, created_by, created_at, expires_at
        FROM suppressions
        WHERE lifted_at IS NULL AND created_at <= $at AND expires_at > $at
        ORDER BY expires_at, suppression_id
    """,
    "suppressions_all": "SELECT * FROM suppressions ORDER BY suppression_id DESC",
    # A session is suppressed when its user is, or when any of its events used a suppressed
    # device or IP.
    "suppressed_sessions": """
        WITH active AS (
            SELECT kind, value FROM suppressions
            WHERE lifted_at IS NULL AND created_at <= $at AND expires_at > $at
        )
        SELECT session_id FROM sessions
        WHERE user_id IN (SELECT value FROM active WHERE kind = 'user')
        UNION
        SELECT session_id FROM events
        WHERE device_id IN (SELECT value FROM active WHERE kind = 'device')
        UNION
        SELECT session_id FROM events
        WHERE ip IN (SELECT value FROM active WHERE kind = 'ip')
    """,
}
