"""Entities: the values event columns share between users (a device, an IP, an item, a payment
instrument, a country, a merchant) and what touched them.

Every read takes ``(kind, value)``: ``kind`` must be one of :data:`ENTITY_COLUMNS` that the
``events`` table has (``merchant_id`` only where the store holds it) and is checked before any
SQL is built; the SQL names the column from the constant, never from the caller's text, and the
value is always a bound parameter. Every read is bounded (``LIMIT``): a country touches most
sessions of a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.store import Store

ENTITY_COLUMNS: tuple[str, ...] = ("device_id", "ip", "item_id", "payment_id", "country",
                                   "merchant_id")
"""Every event column whose values are entities; ``merchant_id`` counts where ``events`` has it."""

MAX_USERS = 500
MAX_CASES = 200
MAX_DAYS = 1_000
MAX_CASE_SESSIONS = 200
MAX_PER_KIND = 20

_COLUMNS = "SELECT column_name FROM (DESCRIBE events)"

# {col} below is always an element of ENTITY_COLUMNS (checked by ``Entities.column``).
_SUMMARY = """
    SELECT count(DISTINCT session_id) AS n_sessions, count(DISTINCT user_id) AS n_users,
           count(*) AS n_events, min(ts) AS first_seen, max(ts) AS last_seen,
           coalesce(sum(amount), 0) AS amount
    FROM events WHERE {col} = $value
"""
# Sessions and distinct users per day; new_users: users whose first session in the store
# (not only on this entity) starts that day (new accounts behind one device, say).
_VOLUME = """
    WITH touch AS (
        SELECT session_id, any_value(user_id) AS user_id, min(ts) AS ts
        FROM events WHERE {col} = $value GROUP BY session_id
    ),
    firsts AS (
        SELECT user_id, min(start_ts) AS first_ts FROM sessions
        WHERE user_id IN (SELECT user_id FROM touch) GROUP BY user_id
    )
    SELECT date_trunc('day', t.ts) AS day, count(*) AS sessions,
           count(DISTINCT t.user_id) AS users,
           count(DISTINCT t.user_id) FILTER (
               WHERE date_trunc('day', f.first_ts) = date_trunc('day', t.ts)) AS new_users
    FROM touch t LEFT JOIN firsts f USING (user_id)
    GROUP BY 1 ORDER BY 1 DESC LIMIT $limit
"""
_RISK = """
    WITH touch AS (SELECT DISTINCT session_id FROM events WHERE {col} = $value)
    SELECT date_trunc('day', se.start_ts) AS day, count(*) AS n_scored,
           max(sc.score) AS max_score, avg(sc.score) AS mean_score
    FROM touch
    JOIN scores sc ON sc.session_id = touch.session_id AND sc.model_id = $model_id
    JOIN sessions se ON se.session_id = touch.session_id
    GROUP BY 1 ORDER BY 1 DESC LIMIT $limit
"""
_USERS = """
    WITH touch AS (
        SELECT session_id, user_id, min(ts) AS first_ts, max(ts) AS last_ts
        FROM events WHERE {col} = $value GROUP BY session_id, user_id
    ),
    per_user AS (
        SELECT user_id, count(*) AS n_sessions, min(first_ts) AS first_seen,
               max(last_ts) AS last_seen
        FROM touch GROUP BY user_id
        ORDER BY n_sessions DESC, last_seen DESC, user_id LIMIT $limit
    ),
    decided AS (
        SELECT user_id, decision, scenario, case_id FROM cases
        WHERE status = 'closed' AND decision IS NOT NULL
          AND user_id IN (SELECT user_id FROM per_user)
        QUALIFY row_number() OVER (PARTITION BY user_id
                                   ORDER BY decided_at DESC, case_id DESC) = 1
    )
    SELECT p.user_id, p.n_sessions, p.first_seen, p.last_seen,
           d.decision AS latest_decision, d.scenario AS decided_scenario,
           d.case_id AS decided_case
    FROM per_user p LEFT JOIN decided d USING (user_id)
    ORDER BY p.n_sessions DESC, p.last_seen DESC, p.user_id
"""
# Closed cases of the users or sessions touching the entity, and cases opened on it.
_CASES = """
    WITH touch AS (SELECT DISTINCT session_id, user_id FROM events WHERE {col} = $value),
    here AS (
        SELECT cs.case_id, count(*) AS n FROM case_sessions cs
        JOIN (SELECT DISTINCT session_id FROM touch) t USING (session_id) GROUP BY cs.case_id
    )
    SELECT c.case_id, c.user_id, c.decision, c.scenario, c.decided_by, c.decided_at,
           c.entity_kind, c.entity_value, coalesce(h.n, 0) AS sessions_on_entity
    FROM cases c LEFT JOIN here h USING (case_id)
    WHERE c.status = 'closed'
      AND (h.case_id IS NOT NULL
           OR c.user_id IN (SELECT user_id FROM touch)
           OR (c.entity_kind = $kind AND c.entity_value = $value))
    ORDER BY c.decided_at DESC, c.case_id DESC LIMIT $limit
"""
_LATEST_SESSIONS = """
    SELECT session_id FROM events WHERE {col} = $value
    GROUP BY session_id ORDER BY max(ts) DESC, session_id DESC LIMIT $limit
"""
# A user's (or a session's) entities, the most used first, at most $limit per kind.
_OF = """
    SELECT kind, value, count(DISTINCT session_id) AS n_sessions FROM (
        UNPIVOT (SELECT session_id, {casts} FROM events WHERE {where} = $id)
        ON {cols} INTO NAME kind VALUE value
    )
    GROUP BY kind, value
    QUALIFY row_number() OVER (PARTITION BY kind ORDER BY n_sessions DESC, value) <= $limit
    ORDER BY kind, n_sessions DESC, value
"""
_ACTIVE_CASE = """
    SELECT case_id FROM cases
    WHERE entity_kind = $kind AND entity_value = $value AND status <> 'closed'
    ORDER BY created_at, case_id LIMIT 1
"""
_SET_ENTITY = """
    UPDATE cases SET entity_kind = $kind, entity_value = $value WHERE case_id = $case_id
"""


class Entities:
    """Reads about one entity ``(kind, value)``, each bounded, and the entity of a case."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- which columns ----------------------------------------------------------------------
    def kinds(self) -> tuple[str, ...]:
        """The entity columns this store's ``events`` table has, in ``ENTITY_COLUMNS`` order."""
        present = {str(r[0]) for r in self._store._rows("entities.columns", _COLUMNS)}
        return tuple(c for c in ENTITY_COLUMNS if c in present)

    def column(self, kind: str) -> str:
        """``kind`` as the constant it names; ConfigError for anything else (no SQL is built
        from text that is not one of ``ENTITY_COLUMNS`` present in the store)."""
        if not isinstance(kind, str) or kind not in ENTITY_COLUMNS:
            raise ConfigError(f"entity kind must be one of {', '.join(ENTITY_COLUMNS)}, got "
                              f"{str(kind)[:80]!r}.")
        kinds = self.kinds()
        if kind not in kinds:
            raise ConfigError(f"entity kind must be a column of this store's events, one of "
                              f"{', '.join(kinds)}, got {kind!r}. Ingest data with that column.")
        return ENTITY_COLUMNS[ENTITY_COLUMNS.index(kind)]

    # --- reads ------------------------------------------------------------------------------
    def summary(self, kind: str, value: str) -> dict[str, Any]:
        """n_sessions, n_users, n_events, first_seen, last_seen, amount (zeros when unseen)."""
        col = self.column(kind)
        frame = self._store._frame("entities.summary", _SUMMARY.format(col=col),
                                   {"value": str(value)})
        return frame.iloc[0].to_dict()

    def volume(self, kind: str, value: str, *, limit: int = MAX_DAYS) -> pd.DataFrame:
        """day, sessions, users, new_users: the latest ``limit`` days, oldest first."""
        col = self.column(kind)
        frame = self._store._frame("entities.volume", _VOLUME.format(col=col),
                                   {"value": str(value), "limit": int(limit)})
        return frame.iloc[::-1].reset_index(drop=True)

    def risk(self, kind: str, value: str, model_id: str, *,
             limit: int = MAX_DAYS) -> pd.DataFrame:
        """day, n_scored, max_score, mean_score of ``model_id`` over the sessions touching the
        entity: the latest ``limit`` days, oldest first."""
        col = self.column(kind)
        frame = self._store._frame("entities.risk", _RISK.format(col=col), {
            "value": str(value), "model_id": str(model_id), "limit": int(limit)})
        return frame.iloc[::-1].reset_index(drop=True)

    def users(self, kind: str, value: str, *, limit: int = MAX_USERS) -> pd.DataFrame:
        """user_id, n_sessions, first_seen, last_seen (on the entity), latest_decision,
        decided_scenario, decided_case (the user's latest closed case): most sessions first."""
        col = self.column(kind)
        return self._store._frame("entities.users", _USERS.format(col=col),
                                  {"value": str(value), "limit": int(limit)})

    def decided_cases(self, kind: str, value: str, *, limit: int = MAX_CASES) -> pd.DataFrame:
        """Closed cases of the users or sessions touching the entity, or opened on it: newest
        decision first."""
        col = self.column(kind)
        return self._store._frame("entities.decided_cases", _CASES.format(col=col), {
            "value": str(value), "kind": col, "limit": int(limit)})

    def latest_sessions(self, kind: str, value: str, *,
                        limit: int = MAX_CASE_SESSIONS) -> list[str]:
        """The ids of the latest ``limit`` sessions touching the entity."""
        col = self.column(kind)
        rows = self._store._rows("entities.latest_sessions", _LATEST_SESSIONS.format(col=col),
                                 {"value": str(value), "limit": int(limit)})
        return [str(r[0]) for r in rows]

    def of_user(self, user_id: str, *, limit: int = MAX_PER_KIND) -> pd.DataFrame:
        """kind, value, n_sessions: the user's entities, at most ``limit`` per kind."""
        return self._of("user_id", user_id, limit)

    def of_session(self, session_id: str, *, limit: int = MAX_PER_KIND) -> pd.DataFrame:
        """kind, value, n_sessions: the session's entities, at most ``limit`` per kind."""
        return self._of("session_id", session_id, limit)

    def _of(self, where: str, ident: str, limit: int) -> pd.DataFrame:
        kinds = self.kinds()
        sql = _OF.format(cols=", ".join(kinds), where=where,
                         casts=", ".join(f"CAST({k} AS VARCHAR) AS {k}" for k in kinds))
        frame = self._store._frame(f"entities.of_{where}", sql,
                                   {"id": str(ident), "limit": int(limit)})
        order = {k: i for i, k in enumerate(ENTITY_COLUMNS)}
        return frame.sort_values(["kind", "n_sessions", "value"], ascending=[True, False, True],
                                 key=lambda s: s.map(order) if s.name == "kind" else s,
                                 kind="stable").reset_index(drop=True)

    # --- cases on an entity (inside the caller's transaction) --------------------------------
    def active_case(self, kind: str, value: str) -> str | None:
        """The oldest open or investigating case opened on the entity."""
        found = self._store._scalar("entities.active_case", _ACTIVE_CASE,
                                    {"kind": self.column(kind), "value": str(value)})
        return None if found is None else str(found)

    def set_case_entity(self, case_id: str, kind: str, value: str) -> None:
        self._store._execute("entities.set_case_entity", _SET_ENTITY, {
            "case_id": case_id, "kind": self.column(kind), "value": str(value)})

