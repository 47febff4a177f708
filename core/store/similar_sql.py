"""Reads behind the typology guess and the similar past cases (core.explain.similar).

A *decided* session is one an analyst concluded on: it carries an analyst label (a case
decision, or an analyst labels file), or it belongs to a closed case with a decision
(inconclusive included: it writes no label, but it is a past case all the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

# One row per decided session: its latest decided case (decision, scenario, case id) when it
# has one, else its analyst label (decision 'labelled_fraud' / 'labelled_normal').
_DECIDED = """
    WITH latest_case AS (
        SELECT cs.session_id, c.case_id, c.decision, c.scenario, c.decided_at
        FROM case_sessions cs JOIN cases c USING (case_id)
        WHERE c.status = 'closed' AND c.decision IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY cs.session_id
                                   ORDER BY c.decided_at DESC, c.case_id DESC) = 1
    ),
    analyst AS (
        SELECT r.session_id, r.is_anomaly, r.scenario, l.created_at
        FROM session_label_rollup r
        LEFT JOIN labels l ON l.level = 'session' AND l.source = 'analyst'
                          AND l.entity_id = r.session_id
        WHERE r.source = 'analyst'
    ),
    decided AS (
        SELECT coalesce(d.session_id, a.session_id) AS session_id,
               coalesce(d.decision, CASE WHEN a.is_anomaly THEN 'labelled_fraud'
                                         ELSE 'labelled_normal' END) AS decision,
               CASE WHEN d.decision = 'fraud_confirmed' THEN coalesce(d.scenario, a.scenario)
                    WHEN d.decision IS NULL THEN a.scenario
                    ELSE coalesce(a.scenario, d.scenario) END AS scenario,
               d.case_id,
               coalesce(d.decided_at, a.created_at) AS decided_at
        FROM latest_case d FULL OUTER JOIN analyst a USING (session_id)
    )
    SELECT x.session_id, s.user_id, x.decision, x.scenario, x.case_id, x.decided_at
    FROM decided x JOIN sessions s USING (session_id)
    ORDER BY x.session_id
"""
_DECIDED_BREAKDOWN = f"""
    SELECT coalesce(scenario, 'unspecified') AS scenario, decision, count(*) AS n_sessions
    FROM ({_DECIDED}) GROUP BY ALL
"""
# Changes whenever a case is decided, reopened or re-decided (inconclusive too, which writes
# no label); the analyst labels' own version is ``store.labels.versions()``.
_DECIDED_CASES_VERSION = """
    SELECT count(*), coalesce(bit_xor(hash(case_id, decision, scenario, decided_at)), 0)
    FROM cases WHERE status = 'closed' AND decision IS NOT NULL
"""
# Decided cases by scenario and decision (a false positive: 'normal'; another case without a
# scenario: 'unspecified').
_CASE_BREAKDOWN = """
    SELECT coalesce(scenario, CASE decision WHEN 'false_positive' THEN 'normal'
                                            ELSE 'unspecified' END) AS scenario,
           decision, count(*) AS n_cases
    FROM cases WHERE status = 'closed' AND decision IS NOT NULL
    GROUP BY ALL ORDER BY n_cases DESC, scenario, decision
"""


class SimilarReads:
    """The decided sessions and their versions, for the similarity index."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def decided_sessions(self) -> pd.DataFrame:
        """session_id, user_id, decision, scenario, case_id (None without a case),
        decided_at: one row per decided session."""
        return self._store._large_frame("similar.decided_sessions", _DECIDED)

    def decided_breakdown(self) -> pd.DataFrame:
        """scenario ('unspecified' when none), decision, n_sessions of the decided sessions."""
        return self._store._frame("similar.decided_breakdown", _DECIDED_BREAKDOWN)

    def decided_cases_version(self) -> tuple[int, int]:
        """(decided cases, a hash of their decisions): equal while they are."""
        row: Any = self._store._rows("similar.decided_cases_version", _DECIDED_CASES_VERSION)[0]
        return int(row[0]), int(row[1])

    def case_breakdown(self) -> pd.DataFrame:
        """scenario, decision, n_cases of the decided cases."""
        return self._store._frame("similar.case_breakdown", _CASE_BREAKDOWN)
