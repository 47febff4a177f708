"""Named SQL for text (merged into ``core.store.queries.QUERIES``).

Texts are keyed by DuckDB's ``md5`` of their UTF-8 bytes (the same hex digest as Python's
``hashlib.md5(text.encode()).hexdigest()``).
"""

from __future__ import annotations

QUERIES: dict[str, str] = {
    "text_cache_table_exists": """
        SELECT count(*) FROM duckdb_tables() WHERE table_name = 'text_embeddings'
    """,
    "text_store_is_read_only": """
        SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()
    """,
    "text_any": "SELECT count(*) FROM (SELECT 1 FROM events WHERE text <> '' LIMIT 1)",
    # Capped count: enough to tell "small" from "too many for the automatic default".
    "text_distinct_capped": """
        SELECT count(*) FROM (SELECT DISTINCT text FROM events WHERE length(text) > 0
                              LIMIT $cap)
    """,
    "text_cached_embeddings": """
        SELECT t.text_hash, t.embedding FROM text_embeddings t
        WHERE t.encoder = $encoder AND t.text_hash IN (SELECT unnest($hashes))
    """,
    "text_insert_embeddings": """
        INSERT OR IGNORE INTO text_embeddings
        SELECT $encoder, text_hash, embedding FROM _new_text_embeddings
    """,
    "text_cache_count": "SELECT count(*) FROM text_embeddings WHERE encoder = $encoder",
    # Every text event (empty strings are missing values), for all sessions or the given ones.
    "text_rows": """
        SELECT session_id, user_id, text FROM events WHERE text <> ''
    """,
    "text_rows_of_sessions": """
        SELECT session_id, user_id, text FROM events
        WHERE text <> '' AND session_id IN (SELECT unnest($session_ids))
    """,
    # Long-enough distinct texts over the whole table with how many users wrote each (and the
    # one user, when only one did): the comparison set of text_max_sim_other_users.
    "text_writers": """
        SELECT text, count(DISTINCT user_id) AS n_users, min(user_id) AS user_id
        FROM events WHERE length(text) >= $min_chars
        GROUP BY text
    """,
}
