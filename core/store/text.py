"""Review texts and their cached embeddings (``text_embeddings``: encoder, md5, vector).

Texts are keyed by DuckDB's ``md5`` of their UTF-8 bytes (the same hex digest as Python's
``hashlib.md5(text.encode()).hexdigest()``). Feature builds hold a bare connection, not a
``Store``, and may run on one without the cache table: the repository takes a connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from core.errors import StoreError

_CACHE_TABLE_EXISTS = """
    SELECT count(*) FROM duckdb_tables() WHERE table_name = 'text_embeddings'
"""
_IS_READ_ONLY = """
    SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()
"""
_ANY_TEXT = "SELECT count(*) FROM (SELECT 1 FROM events WHERE text <> '' LIMIT 1)"
# Capped count: enough to tell "small" from "too many for the automatic default".
_DISTINCT_CAPPED = """
    SELECT count(*) FROM (SELECT DISTINCT text FROM events WHERE length(text) > 0 LIMIT $cap)
"""
_CACHED_EMBEDDINGS = """
    SELECT t.text_hash, t.embedding FROM text_embeddings t
    WHERE t.encoder = $encoder AND t.text_hash IN (SELECT unnest($hashes))
"""
_INSERT_EMBEDDINGS = """
    INSERT OR IGNORE INTO text_embeddings
    SELECT $encoder, text_hash, embedding FROM _new_text_embeddings
"""
_CACHE_COUNT = "SELECT count(*) FROM text_embeddings WHERE encoder = $encoder"
# Every text event (empty strings are missing values), for all sessions or the given ones.
_ROWS = "SELECT session_id, user_id, text FROM events WHERE text <> ''"
_ROWS_OF_SESSIONS = """
    SELECT session_id, user_id, text FROM events
    WHERE text <> '' AND session_id IN (SELECT unnest($session_ids))
"""
# Long-enough distinct texts over the whole table with how many users wrote each (and the one
# user, when only one did): the comparison set of text_max_sim_other_users.
_WRITERS = """
    SELECT text, count(DISTINCT user_id) AS n_users, min(user_id) AS user_id
    FROM events WHERE length(text) >= $min_chars
    GROUP BY text
"""
# The same texts with their two earliest writers (user, first use in epoch microseconds; NULL
# when only one user wrote it): point-in-time comparison sets (a session sees a text only once
# another user had written it).
_FIRST_WRITERS = """
    SELECT text, users[1] AS user1, times[1] AS t1, users[2] AS user2,
      coalesce(times[2], 9223372036854775807) AS t2
    FROM (
      SELECT text, min_by(user_id, t0, 2) AS users, min_by(t0, t0, 2) AS times FROM (
        SELECT text, user_id, epoch_us(min(ts)) AS t0 FROM events
        WHERE length(text) >= $min_chars GROUP BY text, user_id)
      GROUP BY text)
"""
_DISTINCT_TEXTS = "SELECT DISTINCT text FROM events WHERE text <> '' ORDER BY text"
_N_TEXT_EVENTS = "SELECT count(*) FROM events WHERE text <> ''"


class Texts:
    """The text reads of feature builds and the embedding cache, on one connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def _exec(self, name: str, sql: str, params: dict[str, Any] | None = None
              ) -> duckdb.DuckDBPyConnection:
        try:
            return self._con.execute(sql, params) if params else self._con.execute(sql)
        except duckdb.Error as exc:
            raise StoreError(f"Store query 'text.{name}' failed: "
                             f"{str(exc).splitlines()[0]}") from exc

    def _first(self, name: str, sql: str, params: dict[str, Any] | None = None) -> Any:
        rows = self._exec(name, sql, params).fetchall()
        return rows[0][0] if rows else None

    # --- the store --------------------------------------------------------------------------
    def has_cache_table(self) -> bool:
        return bool(self._first("has_cache_table", _CACHE_TABLE_EXISTS))

    def is_read_only(self) -> bool:
        return bool(self._first("is_read_only", _IS_READ_ONLY))

    # --- texts ------------------------------------------------------------------------------
    def any_text(self) -> bool:
        return bool(self._first("any_text", _ANY_TEXT))

    def n_distinct_capped(self, cap: int) -> int:
        """Distinct non-empty texts, counted up to ``cap``."""
        return int(self._first("n_distinct_capped", _DISTINCT_CAPPED, {"cap": int(cap)}))

    def rows(self, session_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """session_id, user_id, text of every text event (of ``session_ids`` when given)."""
        if session_ids is None:
            return self._exec("rows", _ROWS).df()
        return self._exec("rows_of_sessions", _ROWS_OF_SESSIONS,
                          {"session_ids": [str(s) for s in session_ids]}).df()

    def writers(self, min_chars: int) -> pd.DataFrame:
        """text, n_users, user_id of the distinct texts of at least ``min_chars`` characters."""
        return self._exec("writers", _WRITERS, {"min_chars": int(min_chars)}).df()

    def first_writers(self, min_chars: int) -> pd.DataFrame:
        """text, user1, t1, user2, t2 of the distinct texts of at least ``min_chars``
        characters: the two earliest writers and their first use (epoch microseconds;
        user2 None and t2 the largest int64 when one user wrote it)."""
        return self._exec("first_writers", _FIRST_WRITERS, {"min_chars": int(min_chars)}).df()

    def distinct_texts(self) -> list[str]:
        """Every distinct non-empty text, in order."""
        return [t for (t,) in self._exec("distinct_texts", _DISTINCT_TEXTS).fetchall()]

    def n_text_events(self) -> int:
        return int(self._first("n_text_events", _N_TEXT_EVENTS))

    # --- the embedding cache ----------------------------------------------------------------
    def cached_embeddings(self, encoder: str, hashes: Sequence[str]) -> pa.Table:
        """text_hash, embedding (fixed-size list) of the cached ``hashes`` of ``encoder``."""
        try:
            return self._con.sql(_CACHED_EMBEDDINGS, params={
                "encoder": encoder, "hashes": list(hashes)}).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"Store query 'text.cached_embeddings' failed: "
                             f"{str(exc).splitlines()[0]}") from exc

    def insert_embeddings(self, encoder: str, table: pa.Table) -> None:
        """Cache ``table`` (text_hash, embedding) under ``encoder``; known hashes are kept."""
        self._con.register("_new_text_embeddings", table)
        try:
            self._exec("insert_embeddings", _INSERT_EMBEDDINGS, {"encoder": encoder})
        finally:
            self._con.unregister("_new_text_embeddings")

    def cache_count(self, encoder: str) -> int:
        """Embeddings cached for ``encoder``."""
        return int(self._first("cache_count", _CACHE_COUNT, {"encoder": encoder}))
