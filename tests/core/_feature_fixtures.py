"""Tiny hand-written events tables in in-memory DuckDB, shaped like the store's ``events``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from core.schema import EVENT_COLUMNS

T0 = datetime(2026, 3, 2, 10, 0, 0)  # a Monday


def at(seconds: float = 0, *, days: float = 0) -> datetime:
    """A timestamp ``days`` + ``seconds`` after T0."""
    return T0 + timedelta(days=days, seconds=seconds)


def events_con(
    rows: Iterable[Mapping[str, Any]], *, columns: Iterable[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection whose ``events`` table holds ``rows``.

    With ``columns``, only those columns exist (to test tables without optional columns);
    otherwise every canonical column exists (NULL where a row does not set it), plus ``extra``
    and ``ingest_id``, as in the store. Rows get ``e<i>`` event ids unless they set one.
    """
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        r.setdefault("event_id", f"e{i:04d}")
    wanted = list(columns) if columns is not None else [c.name for c in EVENT_COLUMNS]
    frame = pd.DataFrame({name: [r.get(name) for r in rows] for name in wanted})
    types = {c.name: c.sql_type for c in EVENT_COLUMNS}
    con = duckdb.connect()
    con.register("df", frame)
    select = ", ".join(f"CAST({name} AS {types[name]}) AS {name}" for name in wanted)
    tail = ", NULL::VARCHAR AS extra, 1::BIGINT AS ingest_id" if columns is None else ""
    con.execute(f"CREATE TABLE events AS SELECT {select}{tail} FROM df")
    con.unregister("df")
    return con


def session_rows(
    session_id: str,
    user_id: str,
    event_types: Iterable[str],
    *,
    start: datetime = T0,
    step_s: float = 10.0,
    **common: Any,
) -> list[dict[str, Any]]:
    """One row per event type, ``step_s`` seconds apart, sharing ``common`` column values."""
    return [
        {
            "event_id": f"{session_id}-{i:03d}",
            "session_id": session_id,
            "user_id": user_id,
            "ts": start + timedelta(seconds=i * step_s),
            "event_type": t,
            **common,
        }
        for i, t in enumerate(event_types)
    ]
