"""Session and event scores of the registered models."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.store.label_rollup import CHOSEN_LABELS
from core.store.tenure import tenure_sql

if TYPE_CHECKING:
    from core.store import Store

_OF_MODEL = """
    SELECT s.session_id, se.user_id, se.start_ts, s.score
    FROM scores s JOIN sessions se USING (session_id)
    WHERE s.model_id = $model_id
    ORDER BY se.start_ts, s.session_id
"""
# A model's scores with the session's label (NULL when unlabelled), in time order.
_LABELLED = f"""
    WITH l AS ({CHOSEN_LABELS})
    SELECT s.session_id, se.user_id, se.start_ts, s.score, l.is_anomaly, l.scenario
    FROM scores s JOIN sessions se USING (session_id) LEFT JOIN l USING (session_id)
    WHERE s.model_id = $model_id
    ORDER BY se.start_ts, s.session_id
"""
_UNSCORED = """
    SELECT session_id FROM sessions
    WHERE session_id NOT IN (SELECT session_id FROM scores WHERE model_id = $model_id)
"""
_UNSCORED_COUNT = """
    SELECT count(*) FROM sessions
    WHERE session_id NOT IN (SELECT session_id FROM scores WHERE model_id = $model_id)
"""
_TOP_USERS = """
    SELECT se.user_id, max(s.score) AS top FROM scores s JOIN sessions se USING (session_id)
    GROUP BY 1 ORDER BY top DESC LIMIT ?
"""
_EXPORT = """
    SELECT s.model_id, s.session_id, se.user_id, s.score
    FROM scores s JOIN sessions se USING (session_id)
    ORDER BY s.model_id, se.start_ts, s.session_id
"""
_SEGMENTS = f"""
    SELECT session_id,
           {tenure_sql("start_ts", "min(start_ts) OVER (PARTITION BY user_id)")} AS tenure,
           coalesce(country, 'unknown') AS country
    FROM sessions
"""
# Writes read the staged tables of ``Scores.staged``.
_DELETE = "DELETE FROM scores WHERE model_id = $model_id"
_DELETE_STAGED = """
    DELETE FROM scores WHERE model_id = $model_id
      AND session_id IN (SELECT session_id FROM _new_scores)
"""
_INSERT = "INSERT INTO scores SELECT $model_id, session_id, score, $scored_at FROM _new_scores"
_DELETE_EVENTS = "DELETE FROM event_scores WHERE model_id = $model_id"
_DELETE_EVENTS_STAGED = """
    DELETE FROM event_scores WHERE model_id = $model_id
      AND session_id IN (SELECT session_id FROM _new_scores)
"""
_INSERT_EVENTS = """
    INSERT INTO event_scores
    SELECT $model_id, session_id, event_id, position, score FROM _new_event_scores
"""


def score_table_sql(n_models: int) -> str:
    """One row per session with its segment and one score column per model (``$m0``,
    ``$m1``, ... bound to the model ids; columns ``s0``, ``s1``, ...), in (start_ts, session_id)
    order. One query, so DuckDB joins in parallel instead of pandas merging strings; the
    first session per user is a grouped join, not a window: faster at 1M sessions
    (docs/BENCHMARKS.md, 'Measurements behind design choices')."""
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


class Scores:
    """The ``scores`` and ``event_scores`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- reads ---------------------------------------------------------------------------
    def of_model(self, model_id: str) -> pd.DataFrame:
        """session_id, user_id, start_ts, score of ``model_id``, in time order."""
        return self._store._frame("model_scores", _OF_MODEL, {"model_id": model_id})

    def labelled(self, model_id: str, sources: Sequence[str]) -> pd.DataFrame:
        """session_id, user_id, start_ts, score, is_anomaly (NULL when unlabelled), scenario,
        in time order; labels from ``sources`` (an analyst's wins)."""
        return self._store._large_frame("labelled_scores", _LABELLED,
                                        {"model_id": model_id, "sources": list(sources)})

    def table(self, model_ids: Sequence[str]) -> pd.DataFrame:
        """session_id, user_id, start_ts, end_ts, n_events, tenure, country and ``s0``,
        ``s1``, ... (the scores of ``model_ids`` in order, NaN where unscored)."""
        params = {f"m{i}": m for i, m in enumerate(model_ids)}
        return self._store._large_frame("score_table", score_table_sql(len(model_ids)),
                                        params or None)

    def segments(self) -> pd.DataFrame:
        """session_id, tenure, country of every session."""
        return self._store._frame("session_segments", _SEGMENTS)

    def count(self, model_id: str) -> int:
        """How many sessions ``model_id`` has scored."""
        return int(self._store._scalar(
            "count_scores", "SELECT count(*) FROM scores WHERE model_id = $model_id",
            {"model_id": model_id}))

    def session_score(self, model_id: str, session_id: str) -> float | None:
        """``model_id``'s score of one session; None when it has not scored it."""
        rows = self._store._rows(
            "session_score", "SELECT score FROM scores WHERE model_id = $model_id "
            "AND session_id = $session_id", {"model_id": model_id, "session_id": session_id})
        return float(rows[0][0]) if rows else None

    def unscored_sessions(self, model_id: str) -> list[str]:
        """Sessions ``model_id`` has not scored."""
        rows = self._store._rows("unscored_sessions", _UNSCORED, {"model_id": model_id})
        return [str(r[0]) for r in rows]

    def unscored_count(self, model_id: str) -> int:
        return int(self._store._scalar("unscored_count", _UNSCORED_COUNT,
                                       {"model_id": model_id}))

    def top_users(self, limit: int) -> list[str]:
        """The users of the top-scored sessions (any model), highest first, distinct."""
        rows = self._store._rows("top_users", _TOP_USERS, [int(limit)])
        return [str(r[0]) for r in rows]

    def export(self) -> pd.DataFrame:
        """model_id, session_id, user_id, score of every model, in time order."""
        return self._store._frame("export_scores", _EXPORT)

    # --- writes --------------------------------------------------------------------------
    @contextmanager
    def staged(self, scores: pd.DataFrame, *, events: pd.DataFrame | None = None,
               contributions: pd.DataFrame | None = None) -> Iterator[None]:
        """Stage new rows for ``replace`` (and ``Ensembles.replace_contributions``):
        ``scores`` (session_id, score), ``events`` (session_id, event_id, position, score),
        ``contributions`` (session_id, member_id, contribution)."""
        con = self._store.con
        staged: dict[str, Any] = {"_new_scores": scores, "_new_event_scores": events,
                                  "_new_contributions": contributions}
        staged = {name: frame for name, frame in staged.items() if frame is not None}
        for name, frame in staged.items():
            con.register(name, frame)
        try:
            yield
        finally:
            for name in staged:
                con.unregister(name)

    def replace(self, model_id: str, *, scored_at: Any, only_new: bool,
                with_events: bool = False) -> None:
        """Replace ``model_id``'s scores (all, or ``only_new``: those of the staged sessions)
        with the staged ones; call inside a transaction, within ``staged``."""
        params = {"model_id": model_id}
        store = self._store
        store._execute("delete_scores", _DELETE_STAGED if only_new else _DELETE, params)
        store._execute("insert_scores", _INSERT, {**params, "scored_at": scored_at})
        if with_events:
            store._execute("delete_event_scores",
                           _DELETE_EVENTS_STAGED if only_new else _DELETE_EVENTS, params)
            store._execute("insert_event_scores", _INSERT_EVENTS, params)
