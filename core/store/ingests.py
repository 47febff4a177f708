"""The store side of an ingest: staging, checks, the all-or-nothing write and the log.

core.ingest decides what a row means and words the errors; the SQL it needs runs here, over
temp tables and views of this connection (``_stage``, ``_derived``, ``_label_stage``, ...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.schema import EVENT_COLUMNS
from core.store.ingest_sql import (
    CONFLICT_ROWS,
    CONFLICTING_EVENT_IDS,
    DELETE_REPEATED_IDS,
    DUPLICATES_IN_INGEST,
    INSERT_NEW_EVENTS,
    NO_CONFLICTS,
    STORED_CONFLICTS,
    derive_ids_sql,
    quote_ident,
    quote_literal,
)

if TYPE_CHECKING:
    from core.store import Store

_CANONICAL = ", ".join(c.name for c in EVENT_COLUMNS)

_RECORD = "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Session rows are merged from this ingest's events alone: min/max/count combine, so existing
# events need not be re-read.
_CANONICAL_EVENTS = f"""
    SELECT {", ".join(f"e.{c.name}" for c in EVENT_COLUMNS)}, e.extra,
           s.start_ts = f.first_start AS _first
    FROM events e JOIN sessions s USING (session_id)
    JOIN (SELECT user_id, min(start_ts) AS first_start FROM sessions GROUP BY user_id) f
        ON f.user_id = s.user_id
    ORDER BY e.user_id, e.ts, e.event_id
"""
_ADD_CANONICAL = f"""
    INSERT INTO events ({_CANONICAL}, extra, ingest_id)
    SELECT DISTINCT ON (event_id) {_CANONICAL}, extra, ? FROM _canonical_frame
    ORDER BY event_id
"""
_SESSION_AGGREGATES = """
    CREATE OR REPLACE TEMP TABLE _session_agg AS
    SELECT session_id, min(user_id) AS user_id, max(user_id) AS other_user,
           min(ts) AS start_ts, max(ts) AS end_ts, count(*) AS n_events,
           min(country) AS country
    FROM events WHERE ingest_id = ? GROUP BY session_id
"""
_SESSION_CLASH = """
    SELECT a.session_id, [a.user_id, coalesce(s.user_id, a.other_user)]
    FROM _session_agg a LEFT JOIN sessions s USING (session_id)
    WHERE a.user_id <> a.other_user OR a.user_id <> coalesce(s.user_id, a.user_id)
    LIMIT 1
"""
_MERGE_SESSIONS = """
    INSERT INTO sessions (session_id, user_id, start_ts, end_ts, n_events, country)
    SELECT session_id, user_id, start_ts, end_ts, n_events, country FROM _session_agg
    ON CONFLICT (session_id) DO UPDATE SET
        start_ts = least(sessions.start_ts, excluded.start_ts),
        end_ts = greatest(sessions.end_ts, excluded.end_ts),
        n_events = sessions.n_events + excluded.n_events,
        country = coalesce(least(sessions.country, excluded.country), sessions.country,
                           excluded.country)
"""
# Each user's distinct devices, IPs and payment methods: linked accounts read this small table
# instead of scanning every event four times.
_MERGE_USER_ENTITIES = """
    INSERT INTO user_entities
    SELECT DISTINCT n.kind, n.value, n.user_id FROM (
        SELECT 'device' AS kind, device_id AS value, user_id FROM events
        WHERE ingest_id = $ingest_id AND device_id IS NOT NULL
        UNION ALL
        SELECT 'ip', ip, user_id FROM events WHERE ingest_id = $ingest_id AND ip IS NOT NULL
        UNION ALL
        SELECT 'payment', payment_id, user_id FROM events
        WHERE ingest_id = $ingest_id AND payment_id IS NOT NULL
    ) n
    ANTI JOIN user_entities u ON u.kind = n.kind AND u.value = n.value
                                AND u.user_id = n.user_id
"""
_STAGE_COUNTS = (
    "SELECT count(*) FILTER (WHERE _reason IS NOT NULL), "
    "count(*) FILTER (WHERE _reason IS NULL AND (event_id IS NULL OR session_id IS NULL)) "
    "FROM _stage"
)
_REJECTS = (
    "(SELECT _file, _row, _reason FROM _stage WHERE _reason IS NOT NULL "
    "UNION ALL SELECT _file, _row, _reason FROM _conflicts)"
)


class Ingests:
    """Ingest bookkeeping (``ingests``), event staging and writing, label staging."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # Staging SQL lets DuckDB's own errors through unwrapped (``name`` is for reading only):
    # the ingest turns one met while reading a damaged source into a message naming the file.
    # Bookkeeping and merges go through the store's wrapper, as before.
    def _run(self, name: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        con = self._store.con
        return (con.execute(sql, params) if params is not None else con.execute(sql)).fetchall()

    def _do(self, name: str, sql: str, params: Any = None) -> None:
        con = self._store.con
        con.execute(sql, params) if params is not None else con.execute(sql)

    # --- bookkeeping ---------------------------------------------------------------------
    def unit(self) -> str | None:
        """What a session is in this store: 'session' or 'event' (None: nothing recorded
        yet; a store with events and no record was ingested by sessions)."""
        rows = self._run("scoring_unit",
                         "SELECT value FROM schema_meta WHERE key = 'scoring_unit'")
        return str(rows[0][0]) if rows else None

    def set_unit(self, unit: str) -> None:
        self._do("set_scoring_unit",
                 "INSERT OR REPLACE INTO schema_meta VALUES ('scoring_unit', $unit)",
                 {"unit": unit})

    def has_events(self) -> bool:
        return bool(self._run("has_events", "SELECT EXISTS (SELECT 1 FROM events)")[0][0])

    def next_id(self) -> int:
        return int(self._store._scalar("next_ingest_id", "SELECT nextval('ingest_id_seq')"))

    def record(self, ingest_id: int, *, kind: str, source: str, started_at: dt.datetime,
               n_rows: int, n_added: int, n_duplicates: int, n_rejected: int,
               notes: str) -> None:
        """One row of the ingest log (source and notes cut to 2,000 characters)."""
        self._store._execute("record_ingest", _RECORD, [
            ingest_id, kind, source[:2000], started_at, n_rows, n_added, n_duplicates,
            n_rejected, notes[:2000]])

    def drop_temp(self, *names: str) -> None:
        """Drop temp tables or views of this connection, whichever each is (one lookup for
        all of them: the live writer drops six after every micro-batch)."""
        if not names:
            return
        found = self._run(
            "temp_kind", "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_name IN (SELECT unnest(?))", [list(names)],
        )
        for name, kind in found:
            self._do("drop_temp",
                     f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {quote_ident(name)}")

    # --- canonical rows: the partitions of a distributed run (core.scale) ---------------------
    def canonical_events(self) -> Any:
        """Every stored event in canonical columns (``extra`` as stored), with ``_first``:
        whether its session starts at its user's earliest session start."""
        return self._store._frame("canonical_events", _CANONICAL_EVENTS)

    def add_canonical(self, frame: Any, *, unit: str) -> int:
        """Insert canonical rows (as ``canonical_events`` gives them, event ids not stored
        yet) and their sessions, in one transaction; how many events were added."""
        ingest_id = self.next_id()
        con = self._store.con
        con.register("_canonical_frame", frame)
        try:
            with self._store.transaction():
                if self.unit() is None:
                    self.set_unit(unit)
                self._do("add_canonical", _ADD_CANONICAL, [ingest_id])
                self.aggregate_sessions(ingest_id)
                self.merge_sessions(ingest_id)
        finally:
            con.unregister("_canonical_frame")
        return self.count_added(ingest_id)

    # --- sources: raw tables, DuckDB's errors unwrapped (core.ingest.sources words them) ---
    def load_frame(self, table: str, frame: Any) -> None:
        """Copy a DataFrame into temp table ``table``."""
        con = self._store.con
        con.register("_incoming_frame", frame)
        try:
            self._do("load_frame",
                     f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM _incoming_frame")
        finally:
            con.unregister("_incoming_frame")

    def load_csv(self, table: str, path: str, *, delimiter: str, encoding: str) -> None:
        """Copy a CSV file, every column as text, into temp table ``table``."""
        reader = (f"read_csv({quote_literal(path)}, all_varchar = true, header = true, "
                  f"delim = {quote_literal(delimiter)}, skip = 0, "
                  f"encoding = {quote_literal(encoding)})")
        self._do("load_csv", f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {reader}")

    def view_parquet(self, table: str, path: str) -> None:
        """Temp view ``table`` reading a Parquet file in place (no copy); its own row numbers
        stand for ``rowid``. Reads the file through once, so a bad footer fails here."""
        reader = f"read_parquet({quote_literal(path)}, file_row_number = true)"
        self._do("view_parquet", f"CREATE OR REPLACE TEMP VIEW {table} AS "
                 f"SELECT * EXCLUDE (file_row_number), file_row_number AS rowid FROM {reader}")
        self._run("count_parquet", f"SELECT count(*) FROM {table}")

    def columns_of(self, table: str) -> tuple[tuple[str, str], ...]:
        """(name, DuckDB type) of a raw table's columns, ``rowid`` left out."""
        rows = self._run("describe_raw", f"DESCRIBE {quote_ident(table)}")
        return tuple((str(name), str(sql_type)) for name, sql_type, *_ in rows
                     if name != "rowid")

    def count_rows(self, table: str) -> int:
        return int(self._run("count_raw", f"SELECT count(*) FROM {quote_ident(table)}")[0][0])

    def read_whole(self, table: str) -> None:
        """Decode every page of every column of ``table`` (raises where one is damaged)."""
        self._run("read_whole", f"SELECT min(hash(COLUMNS(*))) FROM {quote_ident(table)}")

    # --- events: staging -----------------------------------------------------------------
    def stage_events(self, selects: Sequence[str]) -> None:
        """``_stage``: the union of the sources' typed selects (core.store.ingest_sql
        ``stage_select``). A view: validation reads only what it needs, and the insert streams
        from the source without a staged copy (writing every row twice would slow ingest
        down)."""
        self._do("stage_events",
                 f"CREATE OR REPLACE TEMP VIEW _stage AS {' UNION ALL BY NAME '.join(selects)}")

    def stage_counts(self) -> tuple[int, int]:
        """(bad staged rows, good rows lacking an event or session id)."""
        n_bad, n_missing = self._run("stage_counts", _STAGE_COUNTS)[0]
        return int(n_bad), int(n_missing)

    def bad_rows(self, limit: int) -> list[tuple[int, int, str]]:
        """(file index, row, reason) of the first ``limit`` bad staged rows."""
        return self._run(
            "bad_rows", "SELECT _file, _row, _reason FROM _stage WHERE _reason IS NOT NULL "
            "ORDER BY _file, _row LIMIT ?", [int(limit)])

    def derive_ids(self, gap_minutes: float, *, n_missing: int, all_good: bool,
                   per_event: bool = False) -> None:
        """``_derived``: the good staged rows with missing ids filled; a plain view when
        every row has both ids. ``per_event``: every event is its own session."""
        if n_missing or per_event:
            self._do("derive_ids", "CREATE OR REPLACE TEMP TABLE _derived AS "
                     + derive_ids_sql(gap_minutes=gap_minutes, per_event=per_event))
            return
        # Without bad rows the filter is dropped, so the insert never evaluates _reason.
        where = "" if all_good else " WHERE _reason IS NULL"
        self._do("derive_ids", "CREATE OR REPLACE TEMP VIEW _derived AS "
                 f"SELECT * EXCLUDE (_reason) FROM _stage{where}")

    # --- events: the write (inside one transaction) ---------------------------------------
    def insert_new_events(self, ingest_id: int) -> int:
        """Insert the derived rows whose event id is not stored yet; how many were."""
        return int(self._run("insert_new_events", INSERT_NEW_EVENTS, [ingest_id])[0][0])

    def check_stored_conflicts(self, ingest_id: int, *, any_stored: bool) -> int:
        """``_conflicts``: rows whose event id an earlier ingest stored with other contents
        (only looked for when ``any_stored``); how many."""
        if not any_stored:  # nothing was skipped as present: no join needed
            self._do("no_conflicts", NO_CONFLICTS)
            return 0
        self._do("stored_conflicts", STORED_CONFLICTS, [ingest_id])
        return int(self._run("count_conflicts", "SELECT count(*) FROM _conflicts")[0][0])

    def first_conflict(self) -> tuple[int, int, str]:
        """(file index, row, reason) of the first stored conflict."""
        return self._run("first_conflict", "SELECT _file, _row, _reason FROM _conflicts "
                         "ORDER BY _file, _row LIMIT 1")[0]

    def repeated_ids_with_other_contents(self, ingest_id: int) -> list[str]:
        """Mark ids this ingest repeats (``_dup_rows``); those repeated with other contents
        (at most 5)."""
        self._do("duplicates_in_ingest", DUPLICATES_IN_INGEST, [ingest_id])
        return [str(r[0]) for r in self._run("conflicting_event_ids", CONFLICTING_EVENT_IDS)]

    def rows_of_event_id(self, event_id: str) -> tuple[int, list[int]]:
        """(file index, first rows) of a repeated event id."""
        file_index, rows = self._run("conflict_rows", CONFLICT_ROWS, [event_id])[0]
        return int(file_index), list(rows)

    def delete_repeated_ids(self, ingest_id: int) -> None:
        """Keep the first row of each id this ingest repeats."""
        self._do("delete_repeated_ids", DELETE_REPEATED_IDS, [ingest_id])

    def count_added(self, ingest_id: int) -> int:
        return int(self._run("count_added", "SELECT count(*) FROM events WHERE ingest_id = ?",
                             [ingest_id])[0][0])

    def aggregate_sessions(self, ingest_id: int) -> tuple[str, list[str]] | None:
        """Stage this ingest's sessions (``_session_agg``); the first session id that would
        belong to several users, with them, or None."""
        self._store._execute("session_aggregates", _SESSION_AGGREGATES, [ingest_id])
        clash = self._store._rows("session_clash", _SESSION_CLASH)
        return (str(clash[0][0]), [str(u) for u in clash[0][1]]) if clash else None

    def merge_sessions(self, ingest_id: int) -> int:
        """Merge the staged sessions and the users' devices, IPs and payment methods;
        how many sessions were touched."""
        self._store._execute("merge_sessions", _MERGE_SESSIONS)
        self._store._execute("merge_user_entities", _MERGE_USER_ENTITIES,
                             {"ingest_id": ingest_id})
        return int(self._run("count_session_agg", "SELECT count(*) FROM _session_agg")[0][0])

    # --- events: rejected rows ------------------------------------------------------------
    def count_rejected(self, file_index: int) -> int:
        return int(self._run("count_rejected",
                             f"SELECT count(*) FROM {_REJECTS} WHERE _file = ?",
                             [file_index])[0][0])

    def copy_rejected(self, *, table: str, file_index: int, first_row: int, cells: str,
                      reason: str, target: str) -> None:
        """Write the rejected rows of source ``table`` to CSV ``target``: ``cells`` and
        ``reason`` are the (already neutralised) select expressions over ``r`` and ``s``."""
        self._do("copy_rejected",
                 f"COPY (SELECT s._row + {int(first_row)} AS source_row, {reason} AS reason, "
                 f"{cells} FROM {quote_ident(table)} r JOIN {_REJECTS} s "
                 f"ON s._file = {int(file_index)} AND s._row = r.rowid ORDER BY s._row) "
                 f"TO {quote_literal(target)} (HEADER, DELIMITER ',')")

    # --- one row per session, its events in one cell (``ingest --sequence COLUMN``) --------
    def sequence_lengths(self, table: str, column: str, pattern: str) -> tuple[
            list[int], list[int]]:
        """(rowid, number of tokens) of the rows of ``table`` whose ``column`` holds at least
        one token (``pattern``, a regular expression), in row order."""
        rows = self._run("sequence_lengths",
                         f"SELECT rowid, n FROM (SELECT rowid, len(regexp_extract_all(CAST("
                         f"{quote_ident(column)} AS VARCHAR), $pattern)) AS n FROM "
                         f"{quote_ident(table)}) WHERE n > 0 ORDER BY rowid",
                         {"pattern": pattern})
        return [int(r) for r, _ in rows], [int(n) for _, n in rows]

    def explode_sequences(self, target: str, source: str, column: str, *, pattern: str,
                          drop: Sequence[str], added: dict[str, str], base: dt.datetime,
                          step_us: int) -> None:
        """Temp table ``target``: one row per token of ``column`` of ``source`` (``pattern``),
        in row then token order, the token as ``event_type``, the other columns but ``drop``
        repeated, each ``added`` name = expression over the source row (``_seq_row`` its row
        number), and ``ts`` = ``base`` + ``step_us`` microseconds per event before it."""
        excluded = ", ".join(quote_ident(c) for c in (column, *drop))
        extra = "".join(f", {expr} AS {quote_ident(name)}" for name, expr in added.items())
        self._do("explode_sequences", f"""
            CREATE OR REPLACE TEMP TABLE {quote_ident(target)} AS
            WITH src AS (
                SELECT rowid AS _seq_row, * EXCLUDE ({excluded}),
                       regexp_extract_all(CAST({quote_ident(column)} AS VARCHAR), $pattern)
                           AS _seq_tokens
                FROM {quote_ident(source)}),
            ex AS (
                SELECT * EXCLUDE (_seq_tokens), unnest(_seq_tokens) AS event_type,
                       unnest(range(len(_seq_tokens))) AS _seq_pos
                FROM src)
            SELECT * EXCLUDE (_seq_row, _seq_pos){extra},
                   $base + to_microseconds(CAST((row_number() OVER (ORDER BY _seq_row, _seq_pos)
                                                 - 1) * $step AS BIGINT)) AS ts
            FROM ex ORDER BY _seq_row, _seq_pos""",
                 {"pattern": pattern, "base": base, "step": int(step_us)})

    def separating_columns(self, table: str, label: str, columns: Sequence[str],
                           anomalous: Sequence[str], normal: Sequence[str]
                           ) -> list[tuple[str, int, int, int, int, float | None,
                                           float | None, float | None, float | None]]:
        """Per column of ``table``: (name, rows with a value labelled anomalous, labelled
        normal, rows without one labelled anomalous, normal, min and max of its numeric
        values among the anomalous rows, the same among the normal); ``label`` read with the
        ``anomalous`` / ``normal`` vocabularies (lower-cased, trimmed)."""
        if not columns:
            return []
        text = f"lower(trim(CAST({quote_ident(label)} AS VARCHAR)))"
        pos = f"{text} IN ({', '.join(quote_literal(v) for v in anomalous)})"
        neg = f"{text} IN ({', '.join(quote_literal(v) for v in normal)})"
        parts = []
        for c in columns:
            has = f"coalesce(trim(CAST({quote_ident(c)} AS VARCHAR)), '') <> ''"
            num = f"TRY_CAST({quote_ident(c)} AS DOUBLE)"
            parts += [f"count(*) FILTER ({has} AND {pos})", f"count(*) FILTER ({has} AND {neg})",
                      f"count(*) FILTER (NOT {has} AND {pos})",
                      f"count(*) FILTER (NOT {has} AND {neg})",
                      f"CASE WHEN count({num}) FILTER ({pos}) = count(*) FILTER ({has} AND {pos}) "
                      f"THEN min({num}) FILTER ({pos}) END",
                      f"CASE WHEN count({num}) FILTER ({pos}) = count(*) FILTER ({has} AND {pos}) "
                      f"THEN max({num}) FILTER ({pos}) END",
                      f"CASE WHEN count({num}) FILTER ({neg}) = count(*) FILTER ({has} AND {neg}) "
                      f"THEN min({num}) FILTER ({neg}) END",
                      f"CASE WHEN count({num}) FILTER ({neg}) = count(*) FILTER ({has} AND {neg}) "
                      f"THEN max({num}) FILTER ({neg}) END"]
        row = self._run("separating_columns",
                        f"SELECT {', '.join(parts)} FROM {quote_ident(table)}")[0]
        out = []
        for i, c in enumerate(columns):
            v = row[8 * i: 8 * i + 8]
            out.append((c, int(v[0]), int(v[1]), int(v[2]), int(v[3]),
                        *(None if x is None else float(x) for x in v[4:])))
        return out

    # --- labels given in an events file (``ingest --labels COLUMN``) ----------------------
    def unreadable_labels(self, table: str, column: str, readable: Sequence[str], limit: int
                          ) -> tuple[list[tuple[int, str]], int]:
        """((row, value) of the first ``limit`` rows whose ``column`` of ``table``, trimmed and
        lower-cased, is none of ``readable``; how many there are). Empty cells pass: such rows
        are left unlabelled."""
        text = f"lower(trim(CAST({quote_ident(column)} AS VARCHAR)))"
        allowed = ", ".join(quote_literal(v) for v in readable)
        where = f"WHERE coalesce({text}, '') <> '' AND {text} NOT IN ({allowed})"
        rows = self._run("unreadable_labels", f"SELECT rowid, CAST({quote_ident(column)} AS "
                         f"VARCHAR) FROM {quote_ident(table)} {where} ORDER BY rowid LIMIT ?",
                         [int(limit)])
        if not rows:
            return [], 0
        n_bad = self._run("count_unreadable_labels",
                          f"SELECT count(*) FROM {quote_ident(table)} {where}")[0][0]
        return [(int(r), str(v)) for r, v in rows], int(n_bad)

    def derived_labels(self, file_index: int, table: str, column: str) -> Any:
        """DataFrame (event_id, label) of the rows of ``table`` (source ``file_index``) that
        this ingest derived an event from, their ``column`` as text; empty cells left out."""
        return self._store._large_frame(
            "derived_labels",
            f"SELECT d.event_id, trim(CAST(r.{quote_ident(column)} AS VARCHAR)) AS label "
            f"FROM _derived d JOIN {quote_ident(table)} r ON d._row = r.rowid "
            f"WHERE d._file = $file AND coalesce(trim(CAST(r.{quote_ident(column)} AS "
            f"VARCHAR)), '') <> ''", {"file": int(file_index)})

    def derived_session_labels(self, file_index: int, table: str, column: str,
                               anomalous: Sequence[str]) -> Any:
        """DataFrame (session_id, label) of the sessions this ingest derived from rows of
        ``table`` (source ``file_index``) with a label in ``column``: one per session, an
        ``anomalous`` one where any of its rows has one."""
        text = f"trim(CAST(r.{quote_ident(column)} AS VARCHAR))"
        bad = ", ".join(quote_literal(v) for v in anomalous)
        return self._store._large_frame(
            "derived_session_labels",
            f"SELECT d.session_id, arg_max({text}, lower({text}) IN ({bad})) AS label "
            f"FROM _derived d JOIN {quote_ident(table)} r ON d._row = r.rowid "
            f"WHERE d._file = $file AND coalesce({text}, '') <> '' GROUP BY d.session_id",
            {"file": int(file_index)})

    # --- labels: staging -----------------------------------------------------------------
    def stage_labels(self, select: str) -> None:
        """``_label_stage`` (_row, level, entity_id, is_anomaly, scenario, note, _reason)."""
        self._do("stage_labels", f"CREATE OR REPLACE TEMP TABLE _label_stage AS {select}")

    def bad_labels(self, limit: int) -> tuple[list[tuple[int, str]], int]:
        """((row, reason) of the first ``limit`` bad staged labels, how many are bad)."""
        rows = self._run("bad_labels", "SELECT _row, _reason FROM _label_stage "
                         "WHERE _reason IS NOT NULL ORDER BY _row LIMIT ?", [int(limit)])
        if not rows:
            return [], 0
        n_bad = self._run("count_bad_labels",
                          "SELECT count(*) FROM _label_stage WHERE _reason IS NOT NULL")[0][0]
        return rows, int(n_bad)

    def label_clash(self) -> tuple[str, str] | None:
        """(level, id) of a staged id labelled both anomalous and normal, or None."""
        rows = self._run("label_clash", "SELECT level, entity_id FROM _label_stage GROUP BY ALL "
                         "HAVING count(DISTINCT is_anomaly) > 1 LIMIT 1")
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def dedupe_staged_labels(self) -> int:
        """Keep each staged (level, id) once, its first row; how many remain."""
        self._do("dedupe_labels", "CREATE OR REPLACE TEMP TABLE _label_stage AS "
                 "SELECT DISTINCT ON (level, entity_id) * FROM _label_stage "
                 "ORDER BY level, entity_id, _row")
        return int(self._run("count_labels", "SELECT count(*) FROM _label_stage")[0][0])
