"""Bounded reads of one user's data, for pages and reports that must stay small whatever the
user did (a bot with a million events, a user with 100k sessions: issue #20, item 10).

Run with ``Store.execute_sql(name, SQL, params)``; the callers are in ``core.lookups``.
"""

from __future__ import annotations

USER_COUNTS = """
    SELECT (SELECT count(*) FROM events WHERE user_id = $user_id) AS n_events,
           (SELECT count(*) FROM sessions WHERE user_id = $user_id) AS n_sessions
"""

_EVENT_COLUMNS = """
    e.event_id, e.session_id, e.ts, e.event_type, e.item_id, e.category, e.amount,
    e.quantity, e.device_id, e.ip, e.country, e.payment_id, e.text, es.score AS event_score
"""

# The events of the given sessions first, then the newest others, at most $limit.
USER_EVENTS_PREFERRING = f"""
    SELECT {_EVENT_COLUMNS}
    FROM events e
    LEFT JOIN event_scores es ON es.event_id = e.event_id AND es.model_id = $model_id
    WHERE e.user_id = $user_id
    ORDER BY list_contains($sessions, e.session_id) DESC, e.ts DESC, e.event_id DESC
    LIMIT $limit
"""

# One row per (time bucket, event type): the count, the amount's sum, the highest per-event
# score, and the bucket's first session, device, IP, country and payment method.
USER_EVENTS_BUCKETED = """
    SELECT time_bucket(to_seconds($seconds), e.ts) AS ts, e.event_type,
           count(*) AS n_events, sum(e.amount) AS amount, max(es.score) AS event_score,
           arg_min(e.session_id, e.ts) AS session_id, arg_min(e.device_id, e.ts) AS device_id,
           arg_min(e.ip, e.ts) AS ip, arg_min(e.country, e.ts) AS country,
           arg_min(e.payment_id, e.ts) AS payment_id
    FROM events e
    LEFT JOIN event_scores es ON es.event_id = e.event_id AND es.model_id = $model_id
    WHERE e.user_id = $user_id
    GROUP BY ALL
    ORDER BY ts, e.event_type
    LIMIT $limit
"""

USER_EVENT_SPAN = """
    SELECT epoch(max(ts)) - epoch(min(ts)) FROM events WHERE user_id = $user_id
"""

# A page of the user's sessions, newest first, with every model's score (long form).
USER_SESSIONS_PAGE = """
    WITH page AS (
        SELECT session_id FROM sessions WHERE user_id = $user_id
        ORDER BY start_ts DESC, session_id DESC LIMIT $limit OFFSET $offset
    )
    SELECT se.session_id, se.start_ts, se.end_ts, se.n_events, s.model_id, s.score
    FROM sessions se JOIN page USING (session_id) LEFT JOIN scores s USING (session_id)
    ORDER BY se.start_ts
"""
