"""A user's history for the User 360 view: the policy model's score of each of the user's
sessions with its segment and decision, the day's other candidates when a daily budget
ranks them, linked users' highest score and decisions, their cases, and amounts by currency.

Every read is scoped to the users asked for (a semi-join on ``sessions.user_id``) and
bounded (``LIMIT``): the page never reads the million-row score table.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from core.errors import ConfigError
from core.store.tenure import tenure_sql

if TYPE_CHECKING:
    from core.store import Store

CURRENCY_KEY = "display_currency"
"""``schema_meta`` key of the store's display currency (unset: amounts say no currency)."""
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")

# The event's own currency, when its source file had a ``currency`` column (kept in ``extra``).
_EVENT_CURRENCY = """
    nullif(upper(trim(coalesce(json_extract_string(e.extra, '$.currency'),
                               json_extract_string(e.extra, '$.Currency'),
                               json_extract_string(e.extra, '$.currency_code')))), '')
"""

# The user's newest $limit sessions with the policy model's score, the segment its thresholds
# read (country, tenure against the user's first session), the analyst label (a decision's
# rollup) and the latest decided / oldest open case holding it.
_SESSIONS = f"""
    WITH every AS MATERIALIZED (
        SELECT session_id, start_ts, end_ts, n_events, coalesce(country, 'unknown') AS country
        FROM sessions WHERE user_id = $user_id
    ),
    mine AS (SELECT * FROM every ORDER BY start_ts DESC, session_id DESC LIMIT $limit),
    f AS (SELECT min(start_ts) AS first_ts FROM every),
    sc AS (SELECT session_id, score FROM scores SEMI JOIN mine USING (session_id)
           WHERE model_id = $model_id),
    an AS (SELECT session_id, is_anomaly, scenario FROM session_label_rollup
           SEMI JOIN mine USING (session_id) WHERE source = 'analyst'),
    k AS (
        SELECT cs.session_id,
               arg_max(x.case_id, x.decided_at) FILTER (
                   WHERE x.status = 'closed' AND x.decision IS NOT NULL) AS decided_case,
               arg_max(x.decision, x.decided_at) FILTER (
                   WHERE x.status = 'closed' AND x.decision IS NOT NULL) AS case_decision,
               min(x.case_id) FILTER (WHERE x.status <> 'closed') AS open_case
        FROM case_sessions cs JOIN cases x USING (case_id) SEMI JOIN mine USING (session_id)
        GROUP BY cs.session_id
    )
    SELECT m.session_id, m.start_ts, m.end_ts, m.n_events, m.country,
           {tenure_sql("m.start_ts", "f.first_ts")} AS tenure, sc.score,
           an.is_anomaly AS analyst_is_anomaly, an.scenario AS analyst_scenario,
           k.decided_case, k.case_decision, k.open_case
    FROM mine m CROSS JOIN f LEFT JOIN sc USING (session_id) LEFT JOIN an USING (session_id)
    LEFT JOIN k USING (session_id)
    ORDER BY m.start_ts, m.session_id
"""
# Every session of the given days the model scores at or above $min_score (the policy's
# lowest threshold), with its segment: what a daily budget ranks, in score-table order.
_DAY_CANDIDATES = f"""
    WITH c AS (SELECT session_id, score FROM scores
               WHERE model_id = $model_id AND isfinite(score) AND score >= $min_score),
    cs AS (SELECT se.session_id, se.user_id, se.start_ts,
                  coalesce(se.country, 'unknown') AS country
           FROM sessions se SEMI JOIN c USING (session_id)
           WHERE list_contains($days, CAST(se.start_ts AS DATE))),
    f AS (SELECT user_id, min(start_ts) AS first_ts FROM sessions
          SEMI JOIN cs USING (user_id) GROUP BY user_id)
    SELECT cs.session_id, cs.user_id, cs.start_ts, cs.country,
           {tenure_sql("cs.start_ts", "f.first_ts")} AS tenure, c.score
    FROM cs JOIN f USING (user_id) JOIN c USING (session_id)
    ORDER BY cs.start_ts, cs.session_id
"""
# Per user of $user_ids: sessions, the model's highest score, analyst labels (sessions
# labelled fraud / not fraud, and a user-level analyst label) and the latest decided case
# naming the user or holding one of their sessions.
_USERS_SUMMARY = """
    WITH ids AS (SELECT DISTINCT unnest($user_ids) AS user_id),
    se AS (SELECT session_id, user_id FROM sessions SEMI JOIN ids USING (user_id)),
    n AS (SELECT user_id, count(*) AS n_sessions FROM se GROUP BY user_id),
    sc AS (SELECT se.user_id, max(s.score) AS max_score FROM scores s JOIN se USING (session_id)
           WHERE s.model_id = $model_id AND isfinite(s.score) GROUP BY se.user_id),
    an AS (SELECT se.user_id, count(*) FILTER (WHERE r.is_anomaly) AS fraud_labels,
                  count(*) FILTER (WHERE NOT r.is_anomaly) AS normal_labels
           FROM session_label_rollup r JOIN se USING (session_id)
           WHERE r.source = 'analyst' GROUP BY se.user_id),
    ul AS (SELECT entity_id AS user_id, bool_or(is_anomaly) AS user_label FROM labels
           WHERE level = 'user' AND source = 'analyst'
             AND list_contains($user_ids, entity_id) GROUP BY entity_id),
    kc AS (
        SELECT c.user_id, c.case_id, c.decision, c.decided_at FROM cases c
        SEMI JOIN ids USING (user_id) WHERE c.status = 'closed' AND c.decision IS NOT NULL
        UNION
        SELECT se.user_id, c.case_id, c.decision, c.decided_at
        FROM case_sessions cs JOIN se USING (session_id) JOIN cases c USING (case_id)
        WHERE c.status = 'closed' AND c.decision IS NOT NULL
    ),
    k AS (SELECT user_id, case_id, decision FROM kc
          QUALIFY row_number() OVER (PARTITION BY user_id
                                     ORDER BY decided_at DESC, case_id DESC) = 1)
    SELECT ids.user_id, coalesce(n.n_sessions, 0) AS n_sessions, sc.max_score,
           coalesce(an.fraud_labels, 0) AS fraud_labels,
           coalesce(an.normal_labels, 0) AS normal_labels, ul.user_label,
           k.decision AS latest_decision, k.case_id AS decided_case
    FROM ids LEFT JOIN n USING (user_id) LEFT JOIN sc USING (user_id)
    LEFT JOIN an USING (user_id) LEFT JOIN ul USING (user_id) LEFT JOIN k USING (user_id)
"""
# Cases naming one of $user_ids or holding one of their sessions, newest change first.
_CASES = """
    WITH ids AS (SELECT DISTINCT unnest($user_ids) AS user_id),
    hit AS (
        SELECT case_id FROM cases SEMI JOIN ids USING (user_id)
        UNION
        SELECT cs.case_id FROM case_sessions cs JOIN sessions se USING (session_id)
        SEMI JOIN ids ON ids.user_id = se.user_id
    )
    SELECT c.case_id, c.user_id, c.status, c.decision, c.scenario, c.updated_at,
           c.assignee, c.decided_by, c.title, c.entity_kind, c.entity_value,
           (SELECT count(*) FROM case_sessions x WHERE x.case_id = c.case_id) AS n_sessions
    FROM cases c SEMI JOIN hit USING (case_id)
    ORDER BY c.updated_at DESC, c.case_id DESC LIMIT $limit
"""
# The user's amounts per session (or per day) and currency, newest first, at most $limit.
_AMOUNTS = f"""
    SELECT {{unit}} AS {{name}}, min(e.ts) AS ts, {_EVENT_CURRENCY} AS currency,
           sum(e.amount) AS amount, count(*) AS n_amounts
    FROM events e WHERE e.user_id = $user_id AND e.amount IS NOT NULL
    GROUP BY ALL ORDER BY ts DESC LIMIT $limit
"""
_AMOUNT_TOTALS = f"""
    SELECT {_EVENT_CURRENCY} AS currency, sum(e.amount) AS amount, count(*) AS n_amounts
    FROM events e WHERE e.user_id = $user_id AND e.amount IS NOT NULL
    GROUP BY ALL ORDER BY amount DESC NULLS LAST
"""
_META_GET = "SELECT value FROM schema_meta WHERE key = $key"
_META_SET = "INSERT OR REPLACE INTO schema_meta VALUES ($key, $value)"
_META_DELETE = "DELETE FROM schema_meta WHERE key = $key"


class UserHistory:
    """Reads behind the User 360 view (``core.app.user360``), each scoped and bounded."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def sessions(self, user_id: str, model_id: str | None, *, limit: int) -> pd.DataFrame:
        """session_id, start_ts, end_ts, n_events, country, tenure, score (``model_id``'s,
        NaN when unscored), analyst_is_anomaly, analyst_scenario, decided_case, case_decision,
        open_case of the user's newest ``limit`` sessions, in time order."""
        return self._store._large_frame("user_history.sessions", _SESSIONS, {
            "user_id": str(user_id), "model_id": model_id or "", "limit": int(limit)})

    def day_candidates(self, model_id: str, min_score: float,
                       days: Sequence[dt.date]) -> pd.DataFrame:
        """session_id, user_id, start_ts, country, tenure, score of every session of ``days``
        (UTC) scoring at least ``min_score``, in (start_ts, session_id) order."""
        return self._store._large_frame("user_history.day_candidates", _DAY_CANDIDATES, {
            "model_id": model_id, "min_score": float(min_score), "days": list(days)})

    def users_summary(self, user_ids: Sequence[str], model_id: str | None) -> pd.DataFrame:
        """user_id, n_sessions, max_score, fraud_labels, normal_labels, user_label,
        latest_decision, decided_case of each of ``user_ids``."""
        return self._store._large_frame("user_history.users_summary", _USERS_SUMMARY, {
            "user_ids": [str(u) for u in user_ids], "model_id": model_id or ""})

    def cases(self, user_ids: Sequence[str], *, limit: int) -> pd.DataFrame:
        """Cases naming one of ``user_ids`` or holding one of their sessions: case_id,
        user_id, status, decision, scenario, updated_at, assignee, decided_by, title,
        entity_kind, entity_value, n_sessions; newest change first, at most ``limit``."""
        return self._store._frame("user_history.cases", _CASES, {
            "user_ids": [str(u) for u in user_ids], "limit": int(limit)})

    def amounts(self, user_id: str, *, per: str, limit: int) -> pd.DataFrame:
        """session_id (``per='session'``) or day (``'day'``), ts, currency (the event's own,
        None without one), amount, n_amounts: newest first, at most ``limit`` rows."""
        unit, name = {"session": ("e.session_id", "session_id"),
                      "day": ("date_trunc('day', e.ts)", "day")}[per]
        return self._store._frame(f"user_history.amounts_{per}",
                                  _AMOUNTS.format(unit=unit, name=name),
                                  {"user_id": str(user_id), "limit": int(limit)})

    def amount_totals(self, user_id: str) -> pd.DataFrame:
        """currency (None without one), amount, n_amounts of the user's events."""
        return self._store._frame("user_history.amount_totals", _AMOUNT_TOTALS,
                                  {"user_id": str(user_id)})

    # --- the store's display currency -------------------------------------------------------
    def display_currency(self) -> str | None:
        """The currency amounts without their own are shown in; None when not set."""
        found = self._store._scalar("user_history.currency", _META_GET, {"key": CURRENCY_KEY})
        return None if found in (None, "") else str(found)

    def set_display_currency(self, code: str | None) -> None:
        """Set (an ISO 4217 code, e.g. 'EUR') or clear (None) the display currency."""
        if code is None or not str(code).strip():
            self._store._execute("user_history.currency_clear", _META_DELETE,
                                 {"key": CURRENCY_KEY})
            return
        text = str(code).strip().upper()
        if not _CURRENCY_CODE.fullmatch(text):
            raise ConfigError(f"currency must be a three-letter ISO 4217 code such as EUR or "
                              f"USD, got {str(code)[:20]!r}.")
        self._store._execute("user_history.currency_set", _META_SET,
                             {"key": CURRENCY_KEY, "value": text})
