"""What an ensemble reads of its members' scores, and its per-member contributions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

# The default members: the newest scored model of each detector kind, ensembles excluded.
_DEFAULT_MEMBERS = """
    SELECT m.model_id, m.detector FROM models m
    WHERE m.detector <> $ensemble
      AND EXISTS (SELECT 1 FROM scores s WHERE s.model_id = m.model_id)
    QUALIFY row_number() OVER (PARTITION BY m.detector
                               ORDER BY m.created_at DESC, m.model_id DESC) = 1
    ORDER BY m.detector
"""
# One member's scores on sessions that start before $before (its training window).
_REFERENCE_SCORES = """
    SELECT s.score FROM scores s JOIN sessions se USING (session_id)
    WHERE s.model_id = $model_id AND se.start_ts < $before
"""
# Sessions every member has scored, with the members' scores in $members order.
_MEMBER_SCORES = """
    SELECT s.session_id, any_value(se.start_ts) AS start_ts,
           list(s.score ORDER BY list_position($members, s.model_id)) AS scores
    FROM scores s JOIN sessions se USING (session_id)
    WHERE list_contains($members, s.model_id){only_new}
    GROUP BY s.session_id
    HAVING count(DISTINCT s.model_id) = len($members) AND count(*) = len($members)
    ORDER BY start_ts, s.session_id
"""
_NOT_SCORED_BY = """
      AND s.session_id NOT IN (SELECT session_id FROM scores WHERE model_id = $model_id)"""
_DELETE = "DELETE FROM score_contributions WHERE model_id = $model_id"
_DELETE_STAGED = """
    DELETE FROM score_contributions WHERE model_id = $model_id
      AND session_id IN (SELECT session_id FROM _new_scores)
"""
_INSERT = """
    INSERT INTO score_contributions
    SELECT $model_id, session_id, member_id, contribution FROM _new_contributions
"""
_CONTRIBUTIONS = """
    SELECT c.member_id, m.detector, c.contribution
    FROM score_contributions c LEFT JOIN models m ON m.model_id = c.member_id
    WHERE c.model_id = $model_id AND c.session_id = $session_id
    ORDER BY c.contribution DESC, c.member_id
"""


class Ensembles:
    """Members' scores as an ensemble reads them, and ``score_contributions``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def default_members(self, ensemble: str) -> list[str]:
        """The newest scored model of each detector but ``ensemble``, by detector name."""
        rows = self._store._rows("ensemble_default_members", _DEFAULT_MEMBERS,
                                 {"ensemble": ensemble})
        return [str(r[0]) for r in rows]

    def reference_scores(self, model_id: str, before: Any) -> np.ndarray:
        """``model_id``'s scores of the sessions starting before ``before``."""
        frame = self._store._frame("ensemble_reference_scores", _REFERENCE_SCORES,
                                   {"model_id": model_id, "before": before})
        return frame["score"].to_numpy(np.float64)

    def member_scores(self, members: Sequence[str], *,
                      not_scored_by: str | None = None) -> pd.DataFrame:
        """session_id, start_ts, scores (a list in ``members`` order) of the sessions every
        member scored (and, given ``not_scored_by``, that model has not), in time order."""
        params: dict[str, Any] = {"members": list(members)}
        only_new = ""
        if not_scored_by is not None:
            params["model_id"], only_new = not_scored_by, _NOT_SCORED_BY
        return self._store._frame("ensemble_member_scores",
                                  _MEMBER_SCORES.format(only_new=only_new), params)

    def replace_contributions(self, model_id: str, *, only_new: bool) -> None:
        """Replace ``model_id``'s contributions with the staged ones (``Scores.staged``);
        call inside a transaction."""
        params = {"model_id": model_id}
        self._store._execute("ensemble_delete_contributions",
                             _DELETE_STAGED if only_new else _DELETE, params)
        self._store._execute("ensemble_insert_contributions", _INSERT, params)

    def contributions(self, model_id: str, session_id: str) -> pd.DataFrame:
        """member_id, detector, contribution for one session, largest first."""
        return self._store._frame("ensemble_contributions", _CONTRIBUTIONS,
                                  {"model_id": model_id, "session_id": session_id})
