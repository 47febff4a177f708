"""SQL of the point-in-time history features (core.features.history).

Every query returns numbers only: the session's row index (``sidx``, sessions in the order of
the hash of their id), dense codes of users and values, microseconds for times. DuckDB does
the joins, the distinct values and the previous use of each (user, value); the window
arithmetic runs in numpy over sorted arrays (core.features.history). Ids and values are
compared by DuckDB's 64-bit ``hash`` (a collision between two of a million values has
probability ~1e-7, as in core.features._arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np

from core.schema import LABEL_SOURCES
from core.store.features import TempTables, event_columns, fetch, used_params
from core.store.label_rollup import CHOSEN_LABELS

NO_PREVIOUS = -(2**60)
"""``prev`` of a value's first use by a user: long before any time."""


def present_columns(con: duckdb.DuckDBPyConnection, candidates: Sequence[str],
                    relation: str = "events", params: dict[str, Any] | None = None,
                    ) -> list[str]:
    """The ``candidates`` (canonical event columns) with at least one non-NULL value in
    ``relation`` (the training events, with their bound ``params``)."""
    exprs = event_columns(con)
    there = [c for c in candidates if not exprs[c].startswith("NULL::")]
    if not there:
        return []
    counts = ", ".join(f"count({c}) > 0" for c in there)
    row = con.execute(f"SELECT {counts} FROM {relation} e", used_params(relation, params)
                      ).fetchall()[0]
    return [c for c, ok in zip(there, row, strict=True) if ok]


class HistoryQueries:
    """The history builder's queries over one connection, with their temp tables (a session
    index and, per entity column, the value codes), dropped on exit."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.tables = TempTables(con, "history")
        self.timings = self.tables.timings
        self.c = event_columns(con)
        self._sessions = ""
        self._codes: dict[str, str] = {}
        self._amount_table = ""

    def __enter__(self) -> HistoryQueries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.tables.__exit__(*exc)

    def sessions(self) -> dict[str, np.ndarray]:
        """One row per session in ``sidx`` order: id, user code (dense), start and last event
        (µs), the sum and number of its amounts."""
        c = self.c
        self._sessions = self.tables.create("sessions", f"""
            SELECT hash(session_id) AS h_session, session_id,
                   dense_rank() OVER (ORDER BY hash(any_value(user_id))) - 1 AS user_code,
                   min(epoch_us(ts)) AS start_us, max(epoch_us(ts)) AS last_us,
                   coalesce(sum({c['amount']}), 0)::DOUBLE AS amount_sum,
                   count({c['amount']}) AS n_amounts,
                   row_number() OVER (ORDER BY hash(session_id)) - 1 AS sidx
            FROM events GROUP BY session_id""")
        return fetch(self.con, f"""
            SELECT session_id, user_code, start_us, last_us, amount_sum, n_amounts
            FROM {self._sessions} ORDER BY sidx""", {}, self.timings, "history_sessions")

    def _value_codes(self, column: str) -> str:
        if column not in self._codes:
            e = self.c[column]
            self._codes[column] = self.tables.create(f"codes_{column}", f"""
                SELECT h, row_number() OVER (ORDER BY h) - 1 AS code FROM (
                  SELECT DISTINCT hash({e}) AS h FROM events WHERE {e} IS NOT NULL)""")
        return self._codes[column]

    def value_counts(self, columns: Sequence[str]) -> dict[str, int]:
        """The number of distinct values (codes 0 .. count - 1) of each of ``columns``."""
        return {c: int(self.con.execute(f"SELECT count(*) FROM {self._value_codes(c)}")
                       .fetchall()[0][0]) for c in columns}

    def first_uses(self, column: str) -> dict[str, np.ndarray]:
        """Each (session, value) of ``column``, sorted by (value, session start): ``sidx``,
        value ``code``, the time (µs) of the session's first event with the value, and
        ``prev``: the previous such time of the same user and value (NO_PREVIOUS for the
        first)."""
        e = self.c[column]
        codes = self._value_codes(column)
        return fetch(self.con, f"""
            WITH u AS (
              SELECT hash(session_id) AS h_session, hash({e}) AS h, min(epoch_us(ts)) AS t
              FROM events WHERE {e} IS NOT NULL GROUP BY ALL)
            SELECT s.sidx::INTEGER AS sidx, v.code::INTEGER AS code, u.t,
                   coalesce(lag(u.t) OVER (PARTITION BY (s.user_code << 32) | v.code
                                           ORDER BY u.t), {NO_PREVIOUS}) AS prev
            FROM u JOIN {self._sessions} s USING (h_session) JOIN {codes} v USING (h)
            ORDER BY v.code, s.start_us""",
                     {}, self.timings, f"history_uses_{column}")

    def _amounts(self, columns: Sequence[str]) -> str:
        """Temp table of every event with a finite amount: user code, time (µs), amount and
        the value code of each of ``columns`` (-1 for NULL)."""
        if not self._amount_table:
            c = self.c
            joins, codes = [], []
            for i, col in enumerate(columns):
                table = self._value_codes(col)
                joins.append(f"LEFT JOIN {table} v{i} ON v{i}.h = hash(e.{col})")
                codes.append(f", coalesce(v{i}.code, -1)::INTEGER AS code_{col}")
            self._amount_table = self.tables.create("amounts", f"""
                SELECT s.user_code::INTEGER AS user_code, epoch_us(e.ts) AS t,
                       e.amount::DOUBLE AS amount{''.join(codes)}
                FROM (SELECT hash(session_id) AS h_session, ts, {c['amount']} AS amount,
                             {', '.join(f'{c[col]} AS {col}' for col in columns) or 'NULL AS _'}
                      FROM events WHERE isfinite({c['amount']})) e
                JOIN {self._sessions} s USING (h_session) {' '.join(joins)}""")
        return self._amount_table

    def user_amounts(self, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Every event with a finite amount, sorted by (user, time): ``key`` (the user code),
        time ``t`` (µs) and ``amount``. ``columns``: the entity columns whose value codes
        ``value_amounts`` will ask for."""
        table = self._amounts(columns)
        return fetch(self.con, f"""SELECT user_code AS key, t, amount FROM {table}
                                   ORDER BY user_code, t""", {}, self.timings,
                     "history_amounts_user")

    def value_amounts(self, column: str) -> dict[str, np.ndarray]:
        """The events with a finite amount and a value of ``column``, sorted by (value, time):
        ``key`` (the value code), ``t`` and ``amount`` (after ``user_amounts``)."""
        return fetch(self.con, f"""SELECT code_{column} AS key, t, amount
                                   FROM {self._amount_table} WHERE code_{column} >= 0
                                   ORDER BY code_{column}, t""", {}, self.timings,
                     f"history_amounts_{column}")

    def session_labels(self) -> dict[str, np.ndarray]:
        """Labelled sessions (ground truth and analyst; the analyst's label wins): ``sidx``
        and is_anomaly; empty when the connection has no label rollup (a hand-made events
        table)."""
        try:
            self.con.execute("SELECT 1 FROM session_label_rollup LIMIT 0").fetchall()
        except duckdb.Error:
            return {"sidx": np.zeros(0, np.int64), "is_anomaly": np.zeros(0, bool)}
        params: dict[str, Any] = {"sources": list(LABEL_SOURCES)}
        return fetch(self.con, f"""
            SELECT s.sidx::INTEGER AS sidx, l.is_anomaly FROM ({CHOSEN_LABELS}) l
            JOIN {self._sessions} s ON s.session_id = l.session_id""", params, self.timings,
                     "history_labels")
