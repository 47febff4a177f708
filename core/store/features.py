"""Running the feature builders' SQL: the events relation, per-build temp tables, params.

The builders in core.features write their SQL; it runs through here. The store's ``events``
table always has every canonical column, but tables built by hand (tests, notebooks) may lack
the optional ones; :func:`events_relation` substitutes typed NULLs so every feature query can
name every column, and features of an absent column come out as 0.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.errors import ConfigError, StoreError
from core.schema import EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS
from core.threads import in_background

log = logging.getLogger(__name__)

EVENTS_TABLE = "events"
ALWAYS_PRESENT = (*REQUIRED_EVENT_COLUMNS, "session_id")


def events_relation(con: duckdb.DuckDBPyConnection) -> str:
    """SQL text of a relation with every canonical event column (absent ones as typed NULLs)."""
    exprs = event_columns(con)
    if all(exprs[c.name] == c.name for c in EVENT_COLUMNS):
        return EVENTS_TABLE
    cols = ", ".join(f"{e} AS {name}" if e != name else name for name, e in exprs.items())
    return f"(SELECT {cols} FROM {EVENTS_TABLE})"


def event_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Canonical column -> SQL expression over the ``events`` table (typed NULL when absent).

    Queries written as ``SELECT ... FROM events`` with these expressions can also read
    ``rowid``, which a subquery cannot.
    """
    try:
        rows = con.execute(f"DESCRIBE {EVENTS_TABLE}").fetchall()
    except duckdb.Error as exc:
        raise StoreError(
            f"table {EVENTS_TABLE!r} must exist in the store, got {exc}. Ingest events first "
            "(anomalyst ingest)."
        ) from exc
    present = {str(r[0]) for r in rows}
    missing_required = [c for c in ALWAYS_PRESENT if c not in present]
    if missing_required:
        raise StoreError(
            f"table {EVENTS_TABLE!r} must have columns {list(ALWAYS_PRESENT)}, got "
            f"{sorted(present)}. Ingest events through core.ingest, which derives them."
        )
    return {c.name: c.name if c.name in present else f"NULL::{c.sql_type}" for c in EVENT_COLUMNS}


def top_event_types(
    con: duckdb.DuckDBPyConnection, k: int, *, relation: str | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[str, ...]:
    """The ``k`` most frequent event types (ties broken by name, so the choice is stable)."""
    if k < 0:
        raise ConfigError(f"max_event_types must be >= 0, got {k}.")
    relation = relation or events_relation(con)
    rows = con.execute(
        f"SELECT event_type FROM {relation} GROUP BY event_type "
        "ORDER BY count(*) DESC, event_type LIMIT $k",
        {**(params or {}), "k": k},
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


class TempTables:
    """Uniquely named temp tables for one build, dropped on exit (even after an error).

    Temp tables live in the connection's private in-memory catalog, so they work on read-only
    stores and do not clash between cursors. Steps run one by one, which keeps DuckDB's plans
    simple (one CTE feeding many consumers was several times slower) and lets each step's time
    be logged.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, prefix: str) -> None:
        self.con = con
        self.prefix = f"_{prefix}_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self.timings: dict[str, float] = {}

    def name(self, step: str) -> str:
        return f"{self.prefix}_{step}"

    def create(self, step: str, sql: str, params: dict[str, Any] | None = None) -> str:
        """``CREATE TEMP TABLE <name> AS <sql>`` and return the table name."""
        table = self.name(step)
        started = time.perf_counter()
        try:
            self.con.execute(f"CREATE TEMP TABLE {table} AS {sql}", used_params(sql, params))
        except duckdb.Error as exc:
            raise StoreError(f"query '{step}' failed: {exc}") from exc
        self.created.append(table)
        self.timings[step] = time.perf_counter() - started
        return table

    def query(self, step: str, sql: str, params: dict[str, Any] | None = None) -> Any:
        """Run ``sql`` and return ``fetchnumpy()`` of its result."""
        started = time.perf_counter()
        try:
            out = self.con.execute(sql, used_params(sql, params)).fetchnumpy()
        except duckdb.Error as exc:
            raise StoreError(f"query '{step}' failed: {exc}") from exc
        self.timings[step] = time.perf_counter() - started
        return out

    def stream(
        self, step: str, sql: str, params: dict[str, Any] | None = None,
        batch_rows: int = 1 << 20,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Run ``sql`` and yield its rows in batches of numpy columns (strings as objects).

        Consuming the result batch by batch keeps neither DuckDB's whole result nor a second
        full copy of it in memory.
        """
        started = time.perf_counter()
        try:
            reader = self.con.sql(sql, params=used_params(sql, params) or None).to_arrow_reader(
                batch_rows
            )
            for batch in reader:
                yield {
                    name: batch.column(i).to_numpy(zero_copy_only=False)
                    for i, name in enumerate(batch.schema.names)
                }
        except duckdb.Error as exc:
            raise StoreError(f"query '{step}' failed: {exc}") from exc
        finally:
            self.timings[step] = time.perf_counter() - started

    def __enter__(self) -> TempTables:
        return self

    def __exit__(self, *exc: object) -> None:
        for table in reversed(self.created):
            try:
                self.con.execute(f"DROP TABLE IF EXISTS {table}")
            except duckdb.Error:  # pragma: no cover - best effort on a broken connection
                log.warning("could not drop temp table %s", table)
        log.debug("%s steps: %s", self.prefix, {k: round(v, 3) for k, v in self.timings.items()})


def used_params(sql: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Only the parameters that ``sql`` names (DuckDB refuses unused named parameters)."""
    if not params:
        return {}
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows of a feature builder's query; DuckDB's own errors pass through (the builders
    handle some, e.g. a hand-made events table without ``extra``)."""
    result = con.execute(sql, params) if params is not None else con.execute(sql)
    return result.fetchall()


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pd.DataFrame:
    """``rows`` as a DataFrame."""
    result = con.execute(sql, params) if params is not None else con.execute(sql)
    return result.df()


def fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], timings: dict[str, float],
    step: str,
) -> dict[str, np.ndarray]:
    """Columns of ``sql`` as numpy arrays (Arrow export is parallel and zero-copy per chunk).

    Columns must not contain NULLs (coalesce them in the query).
    """
    started = time.perf_counter()
    try:
        table = con.sql(sql, params=used_params(sql, params) or None).to_arrow_table(1 << 20)
    except duckdb.Error as exc:
        raise StoreError(f"query '{step}' failed: {exc}") from exc
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table.column(name)
        chunks = [c.to_numpy(zero_copy_only=False) for c in column.chunks]
        out[name] = np.concatenate(chunks) if chunks else column.to_numpy()
    del table
    timings[step] = time.perf_counter() - started
    return out


def fetch_in_background(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any],
    timings: dict[str, float], step: str,
) -> Callable[[], dict[str, np.ndarray]]:
    """Start ``fetch`` of ``sql`` on a cursor of its own, on a thread; the returned function
    waits for its columns.

    DuckDB leaves part of 2 cores idle on the sessions query, so the caller's numpy work fits
    beside it. When a cursor cannot see the events (a temporary table or a registered frame
    is only visible to ``con``), the query runs on ``con`` when its result is asked for.
    """
    cursor = con.cursor()
    try:
        cursor.execute(f"SELECT 1 FROM {EVENTS_TABLE} LIMIT 0").fetchall()
    except duckdb.Error:
        cursor.close()
        return functools.partial(fetch, con, sql, params, timings, step)

    def run() -> dict[str, np.ndarray]:
        try:
            return fetch(cursor, sql, params, timings, step)
        finally:
            cursor.close()

    return in_background(run, f"features-{step}")
