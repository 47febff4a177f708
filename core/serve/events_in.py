"""Request bodies -> canonical event rows, each bad event with its reason.

A body is a JSON array of objects or NDJSON (one object a line). Every event is typed and
checked by batch ingest's own rules and messages (``core.store.ingest_sql.stage_select``:
required columns, timestamps as ISO 8601 or epoch seconds/ms, numbers, field lengths, the
plausible time window of ``core.ingest.time_window``), in a private in-memory DuckDB, and an
event without an id gets batch ingest's content hash, so the same event posted twice, or
posted and later ingested from a file, is stored once.

Hostile input never raises anything but ``BodyError`` (the whole body is refused: too large,
not UTF-8, not JSON, too many events); everything else is a per-event reason.

    >>> parsed = parse_events(b'[{"user_id": "u1", "ts": "2026-01-01T10:00:00"}, {"ts": 1}]')
    >>> [r["event_type"] for r in parsed.rows], parsed.rejected
    (['event'], [(1, 'user_id is empty')])
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from core.errors import AnomalystError
from core.ingest.time_window import TimeWindow
from core.schema import (
    EVENT_COLUMNS,
    MAX_FIELD_CHARS,
    MAX_TEXT_CHARS,
    OPTIONAL_IN_SOURCE,
)
from core.serve import codec
from core.serve.events_fast import fast_rows
from core.store.ingest_sql import content_hash_expr, quote_ident, stage_select

MAX_BODY_BYTES = 8 << 20
MAX_EVENTS = 10_000
MAX_FIELDS = 64  # per event, canonical and extra together
MAX_NAME_CHARS = 64
_CANONICAL = tuple(c.name for c in EVENT_COLUMNS)
_ROW = "__index"
FAST_PATH = True
"""Type well-formed batches in Python (tests turn it off to compare with the SQL)."""


class BodyError(AnomalystError):
    """The whole request body is refused; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ParsedEvents:
    """Good events as canonical rows (with ``index``: their place in the body), and
    (index, reason) of each bad one."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    n_total: int = 0


def parse_events(body: bytes, *, max_bytes: int = MAX_BODY_BYTES,
                 max_events: int = MAX_EVENTS, window: TimeWindow | None = None,
                 fast_only: bool = False) -> ParsedEvents | None:
    """Parse and validate a body (a JSON array of objects, or NDJSON). ``fast_only``: None
    instead of running ingest's SQL (the caller runs the full parse elsewhere)."""
    items = decode_body(body, max_bytes=max_bytes, max_events=max_events)
    out = ParsedEvents(n_total=len(items))
    cells: list[tuple[int, dict[str, str | None]]] = []
    for index, item in enumerate(items):
        flat, problem = _flatten(item)
        if problem is not None:
            out.rejected.append((index, problem))
        else:
            cells.append((index, flat))
    if fast_only:
        rows = fast_rows(cells, window or TimeWindow.parse()) if cells else []
        if rows is None or out.rejected:
            return None
        out.rows = rows
        return out
    if cells:
        rows, rejected = _validate(cells, window or TimeWindow.parse())
        out.rows = rows
        out.rejected = sorted(out.rejected + rejected)
    return out


def decode_body(body: bytes, *, max_bytes: int = MAX_BODY_BYTES,
                max_events: int = MAX_EVENTS) -> list[Any]:
    """The body's items (any JSON values); ``BodyError`` for a body that is not one."""
    if len(body) > max_bytes:
        raise BodyError(f"the request body must be at most {max_bytes:,} bytes, got "
                        f"{len(body):,}. Send the events in smaller batches.", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the request body must be UTF-8, got an invalid byte at offset "
                        f"{exc.start}. Encode the events as UTF-8 JSON.") from None
    stripped = text.lstrip()
    if not stripped:
        raise BodyError("the request body must hold events, got an empty body. Send a JSON "
                        "array of events or NDJSON.")
    if stripped.startswith("["):
        items = _loads(stripped, "the body")
        if not isinstance(items, list):
            raise BodyError("the request body must be a JSON array of events, got another "
                            "JSON value. Send [{...}, {...}] or NDJSON.")
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > max_events:
            items = lines  # refused below without parsing
        else:
            items = [_loads(line, f"NDJSON line {i + 1}") for i, line in enumerate(lines)]
    if len(items) > max_events:
        raise BodyError(f"a request must hold at most {max_events:,} events, got "
                        f"{len(items):,}. Send them in smaller batches.", 413)
    return items


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str, what: str) -> Any:
    try:
        return codec.loads(text)
    except ValueError:
        pass  # the standard library words the reason (orjson's messages are terser)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BodyError(f"{what} must be flat JSON, got nesting too deep to read. Send an "
                        "array of flat event objects.") from None
    except ValueError as exc:  # JSONDecodeError, a NaN, an integer too long to convert
        raise BodyError(f"{what} must be valid JSON, got {str(exc)[:200]}. Send a JSON array "
                        "of events or NDJSON.") from None


def _flatten(item: Any) -> tuple[dict[str, str | None], str | None]:
    """One event's fields as text (None: missing); or a reason it cannot be an event."""
    if not isinstance(item, dict):
        return {}, f"an event must be a JSON object, got {_kind(item)}"
    if len(item) > MAX_FIELDS:
        return {}, f"an event must have at most {MAX_FIELDS} fields, got {len(item)}"
    flat: dict[str, str | None] = {}
    for name, value in item.items():
        if not name or len(name) > MAX_NAME_CHARS or name.startswith("_"):
            return {}, (f"field name {name[:40]!r} must be 1-{MAX_NAME_CHARS} characters, "
                        "not starting with '_'")
        if value is None or isinstance(value, str):
            text = value
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return {}, f"{name} must be a string or a number, got {_kind(value)}"
        elif isinstance(value, float) and not math.isfinite(value):
            return {}, f"{name} is not finite"
        else:
            text = repr(value) if isinstance(value, float) else str(value)
        limit = MAX_TEXT_CHARS if name == "text" else MAX_FIELD_CHARS
        if text is not None and len(text) > limit:
            return {}, f"{name} is {len(text)} characters long (at most {limit})"
        flat[name] = text
    for column, default in OPTIONAL_IN_SOURCE.items():
        if flat.get(column) is None:
            flat[column] = default
    return flat, None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", str: "a string"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


_LOCAL = threading.local()


def _validator() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB for validation, opened once (opening one costs more
    than validating a small batch: ~70% of a one-event request's time before)."""
    con = getattr(_LOCAL, "con", None)
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        _LOCAL.con = con
    return con


def _validate(cells: list[tuple[int, dict[str, str | None]]], window: TimeWindow
              ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Batch ingest's typing and rules over the events: in Python for a well-formed batch
    (``core.serve.events_fast``), else in this thread's in-memory DuckDB (it holds no table:
    the batch is registered for the one query)."""
    fast = fast_rows(cells, window) if FAST_PATH else None
    if fast is not None:
        return fast, []
    extras = sorted({k for _, flat in cells for k in flat if k not in _CANONICAL})
    names = [*_CANONICAL, *extras]
    columns = {_ROW: pa.array([i for i, _ in cells], pa.int64())}
    for name in names:
        columns[name] = pa.array([flat.get(name) for _, flat in cells], pa.string())
    table = pa.table(columns)
    mapped = {c: (quote_ident(c), "VARCHAR") for c in _CANONICAL}
    select = stage_select("_incoming", quote_ident(_ROW), mapped, extras, 0,
                          (window.min_ts, window.max_ts))
    canonical = ", ".join(quote_ident(c) for c in _CANONICAL if c != "event_id")
    sql = (f"SELECT _row, _reason, coalesce(event_id, {content_hash_expr()}) AS event_id, "
           f"{canonical}, extra FROM ({select}) ORDER BY _row")
    con = _validator()
    con.register("_incoming", table)
    try:
        result = con.execute(sql)
        names_out = [d[0] for d in result.description]
        fetched = result.fetchall()
    finally:
        con.unregister("_incoming")
    rows: list[dict[str, Any]] = []
    rejected: list[tuple[int, str]] = []
    for values in fetched:
        row = dict(zip(names_out, values, strict=True))
        index, reason = int(row.pop("_row")), row.pop("_reason")
        if reason:
            rejected.append((index, str(reason)))
            continue
        rows.append({"index": index, **{k: _json_value(v) for k, v in row.items()}})
    return rows, rejected


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def event_ts(row: dict[str, Any]) -> dt.datetime:
    """The (naive UTC) timestamp of a parsed row."""
    return dt.datetime.fromisoformat(row["ts"])
