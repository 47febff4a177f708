"""SQL that turns a raw source (file or DataFrame) into validated canonical rows.

The only text from users that enters SQL here is column names, always through
``quote_ident``; every value is bound as a parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from core.schema import EVENT_COLUMNS, MAX_FIELD_CHARS, MAX_TEXT_CHARS, OPTIONAL_IN_SOURCE

_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")
_HASHED_WHEN_PRESENT = ("merchant_id",)
_SEP = "chr(31)"  # unit separator: cannot appear in CSV-ish ids, keeps hashed fields apart


def quote_ident(name: str) -> str:
    """A DuckDB identifier for any column name a user's file may carry."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _is_numeric(sql_type: str) -> bool:
    return sql_type.upper().startswith(_NUMERIC_TYPES)


EPOCH_UNITS: dict[str, float] = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3, "min": 60e6,
                                 "h": 3600e6, "d": 86400e6}
"""Microseconds per unit of a numeric time column, when the user names its unit
(``ingest --ts-unit h``: a simulation's step in hours); otherwise the magnitude decides."""


def epoch_to_timestamp(num: str, unit: str | None = None) -> str:
    """A TIMESTAMP (UTC) from an epoch number, its unit ``unit`` (``EPOCH_UNITS``) or, when
    None, read off its magnitude."""
    if unit is not None:
        micros = f"{num} * {EPOCH_UNITS[unit]!r}"
    else:  # below 1e11 seconds (until year 5138), then ms, µs, ns
        micros = (
            f"CASE WHEN abs({num}) >= 1e17 THEN {num} / 1000 "
            f"WHEN abs({num}) >= 1e14 THEN {num} "
            f"WHEN abs({num}) >= 1e11 THEN {num} * 1000 "
            f"ELSE {num} * 1000000 END"
        )
    return f"try(make_timestamp(CAST(round({micros}) AS BIGINT)))"


def timestamp_expr(src: str, src_type: str, unit: str | None = None) -> str:
    """A TIMESTAMP (UTC) from a source column of any type; NULL where it cannot be parsed.
    ``unit``: the unit of numbers in it (None: by magnitude)."""
    t = src_type.upper()
    if t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
        return f"CAST({src} AS TIMESTAMP)"  # the connection's time zone is UTC
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"CAST({src} AS TIMESTAMP)"
    if _is_numeric(t):
        return epoch_to_timestamp(f"CAST({src} AS DOUBLE)", unit)
    text = f"trim(CAST({src} AS VARCHAR))"
    return (
        f"CASE WHEN regexp_full_match({text}, '-?[0-9]+(\\.[0-9]+)?') "
        f"THEN {epoch_to_timestamp(f'CAST({text} AS DOUBLE)', unit)} "
        f"ELSE CAST(try_cast({text} AS TIMESTAMPTZ) AS TIMESTAMP) END"
    )


def row_order_timestamp(row_expr: str, base: dt.datetime, step_us: int) -> str:
    """A made-up TIMESTAMP for a source with no time: ``base`` plus ``step_us`` microseconds
    per row before it (``row_expr``: the row's 0-based number)."""
    return (f"({_ts_literal(base)} + to_microseconds(CAST({row_expr} AS BIGINT) * "
            f"{int(step_us)}))")


def _typed_expr(column: str, sql_type: str, src: str | None, src_type: str | None,
                ts_unit: str | None = None) -> str:
    if src is None or src_type is None:
        if column in OPTIONAL_IN_SOURCE:  # a required column the source may lack
            return f"CAST({quote_literal(OPTIONAL_IN_SOURCE[column])} AS {sql_type})"
        return f"CAST(NULL AS {sql_type})"
    if column == "ts":
        return timestamp_expr(src, src_type, ts_unit)
    if sql_type == "DOUBLE":
        value = (
            f"CAST({src} AS DOUBLE)" if _is_numeric(src_type)
            else f"try_cast(NULLIF(trim(CAST({src} AS VARCHAR)), '') AS DOUBLE)"
        )
        return f"CASE WHEN NOT isnan({value}) THEN {value} END"  # NaN means missing
    if sql_type == "INTEGER":
        as_double = (
            f"CAST({src} AS DOUBLE)" if _is_numeric(src_type)
            else f"try_cast(NULLIF(trim(CAST({src} AS VARCHAR)), '') AS DOUBLE)"
        )
        whole = f"{as_double} = round({as_double})"
        return f"CASE WHEN {whole} THEN try_cast({as_double} AS INTEGER) END"
    # Values are kept as given (no trim: it costs a third of ingest time); '' means missing.
    if src_type.upper() == "VARCHAR":
        return f"NULLIF({src}, '')"
    return f"NULLIF(CAST({src} AS VARCHAR), '')"


def _raw_present(src: str, src_type: str, numeric: bool = False) -> str:
    """The source cell holds something (an empty or blank string counts as nothing; in a
    numeric column so does NaN, the way pandas and most exports write a missing number)."""
    if src_type.upper() != "VARCHAR":
        if numeric and _is_numeric(src_type):
            return f"({src} IS NOT NULL AND NOT isnan(CAST({src} AS DOUBLE)))"
        return f"({src} IS NOT NULL)"
    nan = f" AND lower(trim({src})) NOT IN ('nan', '+nan', '-nan')" if numeric else ""
    return f"({src} IS NOT NULL AND trim({src}) <> ''{nan})"


def _ts_literal(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"  # built from a datetime, never user text


def _window_problem(raw: str, window: tuple[dt.datetime, dt.datetime]) -> str:
    """A reason for a parsed timestamp outside ``[low, high)``, naming how it was read."""
    low, high = window
    shown = " .. ".join(v.isoformat(sep=" ").removesuffix(" 00:00:00") for v in window)
    return (
        f"CASE WHEN __ts < {_ts_literal(low)} OR __ts >= {_ts_literal(high)} "
        f"THEN 'ts ' || left(CAST({raw} AS VARCHAR), 40) || ' (read as ' || "
        f"CAST(__ts AS VARCHAR) || ') is outside the plausible time window {shown}; "
        "fix the value, or widen the window with --min-ts/--max-ts' END"
    )


def _problem_exprs(
    mapped: Mapping[str, tuple[str, str]],
    ts_window: tuple[dt.datetime, dt.datetime] | None = None,
) -> list[str]:
    """One CASE per rule over the inner stage columns; each yields a short reason or NULL."""
    problems: list[str] = []
    for col in EVENT_COLUMNS:
        if col.name not in mapped:
            continue
        typed, raw = f"__{col.name}", f"__raw_{col.name}"
        present = _raw_present(raw, mapped[col.name][1],
                               numeric=col.sql_type in ("DOUBLE", "INTEGER"))
        name = col.name
        if col.required:
            problems.append(
                f"CASE WHEN {typed} IS NULL AND NOT {present} THEN '{name} is empty' END"
            )
        src_type = mapped[col.name][1].upper()
        native = src_type == col.sql_type or (col.sql_type == "DOUBLE" and _is_numeric(src_type))
        if col.sql_type in ("TIMESTAMP", "DOUBLE", "INTEGER") and not native:
            rule = {
                "TIMESTAMP": "is not a timestamp (use ISO 8601, epoch seconds or milliseconds)",
                "DOUBLE": "is not a number",
                "INTEGER": "is not a whole number",
            }[col.sql_type]
            if col.sql_type == "INTEGER":  # a whole number too large is out of range
                as_double = f"try_cast(trim(CAST({raw} AS VARCHAR)) AS DOUBLE)"
                rule_sql = (
                    f"CASE WHEN {as_double} = round({as_double}) AND isfinite({as_double}) "
                    f"THEN ' is out of range (a whole number from {-2**31:,} to {2**31 - 1:,})' "
                    f"ELSE ' {rule}' END"
                )
            elif col.sql_type == "TIMESTAMP":  # digits that no epoch unit can hold
                text = f"trim(CAST({raw} AS VARCHAR))"
                digits = f"regexp_full_match({text}, '-?[0-9]+(\\.[0-9]+)?')"
                rule_sql = (
                    f"CASE WHEN {digits} THEN ' is out of range as an epoch time (seconds, "
                    f"milliseconds, microseconds or nanoseconds since 1970)' ELSE ' {rule}' END"
                )
            else:
                rule_sql = f"' {rule}'"
            problems.append(
                f"CASE WHEN {present} AND {typed} IS NULL "
                f"THEN '{name} ' || left(CAST({raw} AS VARCHAR), 40) || {rule_sql} END"
            )
        if name == "ts" and ts_window is not None:
            problems.append(_window_problem(raw, ts_window))
        if col.sql_type == "DOUBLE":
            problems.append(
                f"CASE WHEN {typed} IS NOT NULL AND NOT isfinite({typed}) "
                f"THEN '{name} is not finite' END"
            )
        elif col.sql_type == "VARCHAR":
            limit = MAX_TEXT_CHARS if name == "text" else MAX_FIELD_CHARS
            problems.append(
                f"CASE WHEN length({typed}) > {limit} THEN '{name} is ' || length({typed}) || "
                f"' characters long (at most {limit})' END"
            )
    return problems


def stage_select(
    source: str,
    row_expr: str,
    mapped: Mapping[str, tuple[str, str]],
    extra_columns: Sequence[str],
    file_index: int,
    ts_window: tuple[dt.datetime, dt.datetime] | None = None,
    ts_unit: str | None = None,
) -> str:
    """SELECT that types every canonical column and explains each bad row in ``_reason``.

    ``mapped`` maps canonical name -> (quoted source column, source type). Columns that are
    not mapped are NULL (``event_id`` and ``session_id`` are derived later when absent).
    ``ts_window`` (low, high): timestamps outside ``[low, high)`` are bad rows. ``ts_unit``:
    the unit of a numeric ``ts`` (``EPOCH_UNITS``; None: by magnitude).
    """
    inner_cols = [f"{row_expr} AS _row"]
    for c in EVENT_COLUMNS:
        src, src_type = mapped.get(c.name, (None, None))
        inner_cols.append(f"{_typed_expr(c.name, c.sql_type, src, src_type, ts_unit)} "
                          f"AS __{c.name}")
        if src is not None:
            inner_cols.append(f"{src} AS __raw_{c.name}")
    if extra_columns:
        pairs = ", ".join(f"{quote_literal(c)}, {quote_ident(c)}" for c in extra_columns)
        inner_cols.append(f"CAST(json_object({pairs}) AS VARCHAR) AS __extra")
    else:
        inner_cols.append("CAST(NULL AS VARCHAR) AS __extra")
    inner = f"SELECT {', '.join(inner_cols)} FROM {source}"
    problems = _problem_exprs(mapped, ts_window)
    reason = f"concat_ws('; ', {', '.join(problems)})" if problems else "''"
    canonical = ", ".join(f"__{c.name} AS {c.name}" for c in EVENT_COLUMNS)
    return (
        f"SELECT {file_index} AS _file, _row, {canonical}, __extra AS extra, "
        f"NULLIF({reason}, '') AS _reason FROM ({inner})"
    )


def content_hash_expr(prefix: str = "") -> str:
    """md5 over every canonical field but the id: a stable id for rows that carry none.
    ``prefix`` qualifies the columns (``"d."``)."""
    parts = ", ".join(
        f"coalesce(CAST({prefix}{c.name} AS VARCHAR), '')"
        for c in EVENT_COLUMNS if c.name != "event_id" and c.name not in _HASHED_WHEN_PRESENT
    )
    # Columns added after ids were first derived join the hash only when not NULL, so a row
    # without them keeps the id it always had (re-ingesting an old file stays a no-op).
    later = "".join(
        f", CASE WHEN {prefix}{name} IS NOT NULL THEN {quote_literal(name + '=')} || "
        f"CAST({prefix}{name} AS VARCHAR) END"
        for name in _HASHED_WHEN_PRESENT
    )
    # A row without a user (``--unit event`` on a file of payments with no user column) is
    # told apart by its extra columns too: two payments at the same second of the same amount
    # are two payments when their other columns differ. Rows with a user hash as before.
    later += (f", CASE WHEN {prefix}user_id IS NULL THEN 'extra=' || "
              f"coalesce({prefix}extra, '') END")
    return f"md5(concat_ws({_SEP}, {parts}{later}))"


def derive_ids_sql(*, gap_minutes: float, per_event: bool = False) -> str:
    """SELECT over the good rows of ``_stage`` that fills event_id and session_id where NULL.

    A row without an id gets the md5 of its content, so re-ingesting it is a no-op. Rows without
    a session are sessionized per user: a new session starts after ``gap_minutes`` of
    inactivity, and its id is the user and the session's first timestamp, so the same events
    always give the same id. ``per_event``: every row's session is its own event id (payment
    data, where one event is one payment and the unit an analyst acts on), and a row without a
    user (a file of payments with no user column) is its own user too.
    """
    canonical = [c.name for c in EVENT_COLUMNS]
    base_cols = ", ".join(
        f"coalesce(event_id, {content_hash_expr()}) AS event_id" if c == "event_id" else c
        for c in canonical
    )
    cols = ", ".join(c for c in canonical if c != "session_id")
    if per_event:  # the scoring unit is the event: each one is its own session (and, in
        # a file without users, its own user)
        own = ", ".join("coalesce(user_id, event_id) AS user_id" if c == "user_id" else c
                        for c in canonical if c != "session_id")
        return f"""
        WITH b AS (SELECT _file, _row, {base_cols}, extra FROM _stage WHERE _reason IS NULL)
        SELECT _file, _row, {own}, event_id AS session_id, extra FROM b
        """
    gap_us = int(gap_minutes * 60 * 1_000_000)
    return f"""
        WITH b AS (SELECT _file, _row, {base_cols}, extra FROM _stage WHERE _reason IS NULL),
        marked AS (
            SELECT *, CASE WHEN lag(ts) OVER w IS NULL
                            OR epoch_us(ts) - epoch_us(lag(ts) OVER w) > {gap_us}
                      THEN 1 ELSE 0 END AS _new
            FROM b WHERE session_id IS NULL
            WINDOW w AS (PARTITION BY user_id ORDER BY ts, event_id)
        ),
        numbered AS (
            SELECT *, sum(_new) OVER (PARTITION BY user_id ORDER BY ts, event_id
                                      ROWS UNBOUNDED PRECEDING) AS _sess
            FROM marked
        )
        SELECT _file, _row, {', '.join(canonical)}, extra FROM b WHERE session_id IS NOT NULL
        UNION ALL BY NAME
        SELECT _file, _row, {cols},
               user_id || '@' || strftime(min(ts) OVER (PARTITION BY user_id, _sess),
                                          '%Y-%m-%dT%H:%M:%S') AS session_id,
               extra
        FROM numbered
    """


# Repeated ids are found after the insert, inside its transaction: grouping the stored rows
# by a 64-bit hash of the id is cheaper than grouping the staged strings, and a hash
# collision only costs an exact comparison in the window below.
DUPLICATES_IN_INGEST = f"""
    CREATE OR REPLACE TEMP TABLE _dup_rows AS
    SELECT rowid AS rid, event_id, {content_hash_expr()} AS content,
           row_number() OVER (PARTITION BY event_id ORDER BY rowid) AS k
    FROM events
    WHERE ingest_id = $1 AND hash(event_id) IN (
        SELECT hash(event_id) FROM events WHERE ingest_id = $1 GROUP BY 1 HAVING count(*) > 1)
"""

CONFLICTING_EVENT_IDS = """
    SELECT event_id FROM _dup_rows GROUP BY event_id HAVING count(DISTINCT content) > 1
    ORDER BY event_id LIMIT 5
"""

CONFLICT_ROWS = """
    SELECT _file, list(_row ORDER BY _row)[1:5] FROM _derived WHERE event_id = ? GROUP BY _file
    ORDER BY _file LIMIT 1
"""

DELETE_REPEATED_IDS = """
    DELETE FROM events WHERE ingest_id = ? AND rowid IN (SELECT rid FROM _dup_rows WHERE k > 1)
"""

# Rows whose event_id is already stored (by an earlier ingest) with other contents: a
# conflict, not a duplicate. Run only when the insert skipped rows as already present.
STORED_CONFLICTS = f"""
    CREATE OR REPLACE TEMP TABLE _conflicts AS
    SELECT d._file, d._row,
           'event_id ' || left(d.event_id, 40) || ' is already stored (ingest ' || e.ingest_id
           || ') with different contents' AS _reason
    FROM _derived d JOIN events e ON e.event_id = d.event_id AND e.ingest_id <> $1
    WHERE {content_hash_expr("d.")} <> {content_hash_expr("e.")}
"""

NO_CONFLICTS = (
    "CREATE OR REPLACE TEMP TABLE _conflicts (_file INTEGER, _row BIGINT, _reason VARCHAR)"
)

_CANONICAL = ", ".join(c.name for c in EVENT_COLUMNS)

# Columns named: a store migrated by ALTER TABLE holds them in another order.
INSERT_NEW_EVENTS = f"""
    INSERT INTO events ({_CANONICAL}, extra, ingest_id)
    SELECT {_CANONICAL}, extra, ?
    FROM _derived d
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = d.event_id)
"""
