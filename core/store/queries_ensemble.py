"""Named SQL for ensemble (merged into ``core.store.queries.QUERIES``)."""

from __future__ import annotations

QUERIES: dict[str, str] = {
    # The default members: the newest scored model of each detector kind, ensembles excluded.
    "ensemble_default_members": """
        SELECT m.model_id, m.detector FROM models m
        WHERE m.detector <> $ensemble
          AND EXISTS (SELECT 1 FROM scores s WHERE s.model_id = m.model_id)
        QUALIFY row_number() OVER (PARTITION BY m.detector
                                   ORDER BY m.created_at DESC, m.model_id DESC) = 1
        ORDER BY m.detector
    """,
    "ensemble_count_scores": "SELECT count(*) FROM scores WHERE model_id = $model_id",
    # One member's scores on sessions that start before $before (its training window).
    "ensemble_reference_scores": """
        SELECT s.score FROM scores s JOIN sessions se USING (session_id)
        WHERE s.model_id = $model_id AND se.start_ts < $before
    """,
    # Sessions every member has scored, with the members' scores in $members order.
    "ensemble_member_scores": """
        SELECT s.session_id, any_value(se.start_ts) AS start_ts,
               list(s.score ORDER BY list_position($members, s.model_id)) AS scores
        FROM scores s JOIN sessions se USING (session_id)
        WHERE list_contains($members, s.model_id)
        GROUP BY s.session_id
        HAVING count(DISTINCT s.model_id) = len($members) AND count(*) = len($members)
        ORDER BY start_ts, s.session_id
    """,
    "ensemble_member_scores_new": """
        SELECT s.session_id, any_value(se.start_ts) AS start_ts,
               list(s.score ORDER BY list_position($members, s.model_id)) AS scores
        FROM scores s JOIN sessions se USING (session_id)
        WHERE list_contains($members, s.model_id)
          AND s.session_id NOT IN (SELECT session_id FROM scores WHERE model_id = $model_id)
        GROUP BY s.session_id
        HAVING count(DISTINCT s.model_id) = len($members) AND count(*) = len($members)
        ORDER BY start_ts, s.session_id
    """,
    "ensemble_unscored_count": """
        SELECT count(*) FROM sessions
        WHERE session_id NOT IN (SELECT session_id FROM scores WHERE model_id = $model_id)
    """,
    "ensemble_delete_contributions": "DELETE FROM score_contributions WHERE model_id = $model_id",
    "ensemble_delete_contributions_of": """
        DELETE FROM score_contributions WHERE model_id = $model_id
          AND session_id IN (SELECT session_id FROM _new_scores)
    """,
    "ensemble_insert_contributions": """
        INSERT INTO score_contributions
        SELECT $model_id, session_id, member_id, contribution FROM _new_contributions
    """,
    "ensemble_contributions": """
        SELECT c.member_id, m.detector, c.contribution
        FROM score_contributions c LEFT JOIN models m ON m.model_id = c.member_id
        WHERE c.model_id = $model_id AND c.session_id = $session_id
        ORDER BY c.contribution DESC, c.member_id
    """,
}
