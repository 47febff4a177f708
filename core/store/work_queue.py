"""What the work queue needs to know about a few flagged sessions, in one read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.store.tenure import tenure_sql

if TYPE_CHECKING:
    from core.store import Store

def _fact_ctes(ids: str) -> str:
    """CTEs an, gt, k, a over the sessions of relation ``ids``: whether an analyst labelled
    each, its ground-truth label, whether a closed (decided) or an open case holds it, and
    its amount. One text for both reads below."""
    return f"""
    an AS (SELECT DISTINCT session_id FROM session_label_rollup SEMI JOIN {ids} USING (session_id)
           WHERE source = 'analyst'),
    gt AS (SELECT session_id, is_anomaly, scenario FROM session_label_rollup
           SEMI JOIN {ids} USING (session_id) WHERE source = 'ground_truth'),
    k AS (
        SELECT cs.session_id, bool_or(x.status = 'closed') AS in_decided_case,
               min(x.case_id) FILTER (WHERE x.status <> 'closed') AS open_case_id
        FROM case_sessions cs JOIN cases x USING (case_id) SEMI JOIN {ids} USING (session_id)
        GROUP BY cs.session_id
    ),
    a AS (SELECT e.session_id, sum(e.amount) AS amount FROM events e
          SEMI JOIN {ids} USING (session_id) GROUP BY e.session_id)"""


_FACT_COLUMNS = """an.session_id IS NOT NULL AS analyst_labelled,
           coalesce(k.in_decided_case, false) AS in_decided_case, k.open_case_id,
           coalesce(a.amount, 0) AS amount, gt.is_anomaly AS truth_is_anomaly,
           gt.scenario AS truth_scenario"""
_FACT_JOINS = """LEFT JOIN an USING (session_id) LEFT JOIN k USING (session_id)
    LEFT JOIN a USING (session_id) LEFT JOIN gt USING (session_id)"""

# Per session of ``$session_ids``: when the policy's model scored it, and the facts above.
_FACTS = f"""
    WITH ids AS (SELECT DISTINCT unnest($session_ids) AS session_id),
    sc AS (SELECT session_id, scored_at FROM scores SEMI JOIN ids USING (session_id)
           WHERE model_id = $model_id),{_fact_ctes("ids")}
    SELECT ids.session_id, sc.scored_at, {_FACT_COLUMNS}
    FROM ids LEFT JOIN sc USING (session_id) {_FACT_JOINS}
"""
# The sessions the policy's model scores at or above ``$min_score`` (the policy's lowest
# threshold: a superset of its flags), with the segment columns its thresholds read and the
# facts above, in one read and in score-table order: the queue's first render needs neither
# the million-row score table nor a list of ids sent back to DuckDB.
_CANDIDATES = f"""
    WITH c AS (SELECT session_id, score, scored_at FROM scores
               WHERE model_id = $model_id AND isfinite(score) AND score >= $min_score),
    cs AS (SELECT se.session_id, se.user_id, se.start_ts, coalesce(se.country, 'unknown')
                  AS country FROM sessions se SEMI JOIN c USING (session_id)),
    f AS (SELECT user_id, min(start_ts) AS first_ts FROM sessions
          SEMI JOIN cs USING (user_id) GROUP BY user_id),{_fact_ctes("c")}
    SELECT cs.session_id, cs.user_id, cs.start_ts, cs.country,
           {tenure_sql("cs.start_ts", "f.first_ts")} AS tenure, c.score, c.scored_at,
           {_FACT_COLUMNS}
    FROM cs JOIN f USING (user_id) JOIN c USING (session_id) {_FACT_JOINS}
    ORDER BY cs.start_ts, cs.session_id
"""
_DETECTOR_SCORES = """
    WITH ids AS (SELECT DISTINCT unnest($session_ids) AS session_id)
    SELECT model_id, session_id, score FROM scores SEMI JOIN ids USING (session_id)
    WHERE list_contains($model_ids, model_id)
"""
_ALL_SCORES = "SELECT score FROM scores WHERE model_id = $model_id AND isfinite(score)"
_HAS_TRUTH = "SELECT count(*) > 0 FROM session_label_rollup WHERE source = 'ground_truth'"


class WorkQueue:
    """Reads behind the work queue (``core.app.queue``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def facts(self, session_ids: Sequence[str], model_id: str) -> pd.DataFrame:
        """session_id, scored_at (by ``model_id``), analyst_labelled, in_decided_case,
        open_case_id (None outside an open case), amount, truth_is_anomaly, truth_scenario
        (NA without a ground-truth label) of ``session_ids``."""
        return self._store._large_frame("work_queue.facts", _FACTS, {
            "session_ids": list(session_ids), "model_id": model_id})

    def candidates(self, model_id: str, min_score: float) -> pd.DataFrame:
        """session_id, user_id, start_ts, country, tenure, score, then the columns of
        :meth:`facts`, of every session ``model_id`` scores finite and >= ``min_score``, in
        (start_ts, session_id) order (a score table's)."""
        return self._store._large_frame("work_queue.candidates", _CANDIDATES, {
            "model_id": model_id, "min_score": float(min_score)})

    def detector_scores(self, session_ids: Sequence[str], model_ids: Sequence[str]
                        ) -> pd.DataFrame:
        """model_id, session_id, score of ``session_ids`` by each of ``model_ids``."""
        return self._store._large_frame("work_queue.detector_scores", _DETECTOR_SCORES, {
            "session_ids": list(session_ids), "model_ids": list(model_ids)})

    def all_scores(self, model_id: str) -> np.ndarray:
        """Every finite score of ``model_id``, sorted (the reference for percentiles)."""
        frame = self._store._large_frame("work_queue.all_scores", _ALL_SCORES,
                                         {"model_id": model_id})
        return np.sort(frame["score"].to_numpy(np.float64))

    def has_ground_truth(self) -> bool:
        return bool(self._store._scalar("work_queue.has_truth", _HAS_TRUTH))
