"""Typing the common, well-formed request in Python, without DuckDB.

A scoring request usually holds a few events that carry their own ids, ISO 8601 timestamps
and plain numbers. Typing them with batch ingest's SQL (``events_in._validate``) costs ~25 ms
a request, most of it planning the query: at hundreds of requests a second that alone would
use a core. ``fast_rows`` types such a batch exactly as that SQL does, or answers None when
any event is outside the narrow shape it knows (no id, an epoch or zoned timestamp, an
unusual number, a character that JSON would escape in an extra field, an empty required
field, a time outside the window): the SQL then types the whole batch and words every
reason, so every message stays the ingest's own. ``tests/core/serve/test_events_fast.py``
checks both paths give the same rows on generated events.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from core.ingest.time_window import TimeWindow
from core.schema import EVENT_COLUMNS

_CANONICAL = tuple(c.name for c in EVENT_COLUMNS)
_OUT_ORDER = ("event_id", *(c for c in _CANONICAL if c != "event_id"))
_TYPED = {c.name: c.sql_type for c in EVENT_COLUMNS}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_DECIMAL = re.compile(r"-?\d{1,15}(\.\d{1,15})?")
_WHOLE = re.compile(r"-?\d{1,9}")
_PLAIN = re.compile(r"[A-Za-z0-9 !#$%&'()*+,\-./:;<=>?@\[\]^_`{|}~]*")
"""Printable ASCII but the quote and the backslash: the same in any JSON writer."""


def fast_rows(cells: Sequence[tuple[int, dict[str, str | None]]], window: TimeWindow
              ) -> list[dict[str, Any]] | None:
    """The typed rows of ``cells`` ((index, flattened fields) as ``events_in`` makes them),
    or None when any of them needs the SQL."""
    extras = sorted({k for _, flat in cells for k in flat if k not in _TYPED})
    if any(not _PLAIN.fullmatch(k) for k in extras):
        return None
    low, high = window.min_ts, window.max_ts
    rows: list[dict[str, Any]] = []
    for index, flat in cells:
        row: dict[str, Any] = {"index": index}
        for name in _OUT_ORDER:
            value = _typed(name, flat.get(name), low, high)
            if value is _DECLINE:
                return None
            row[name] = value
        if extras:
            values = {k: flat.get(k) for k in extras}
            if any(v is not None and not _PLAIN.fullmatch(v) for v in values.values()):
                return None
            row["extra"] = json.dumps(values, separators=(",", ":"))
        else:
            row["extra"] = None
        rows.append(row)
    return rows


_DECLINE = object()


def _typed(name: str, value: str | None, low: dt.datetime, high: dt.datetime) -> Any:
    """The value as the SQL types it, or ``_DECLINE``."""
    if name in ("event_id", "user_id", "event_type", "ts"):
        if not value:  # the SQL derives the id, or words the empty field
            return _DECLINE
    elif value is None:
        return None
    kind = _TYPED[name]
    if kind == "VARCHAR":
        return value or None  # '' is missing
    if kind == "TIMESTAMP":
        if not _ISO.fullmatch(value):
            return _DECLINE
        try:
            ts = dt.datetime.fromisoformat(value)
        except ValueError:
            return _DECLINE
        return ts.isoformat() if low <= ts < high else _DECLINE
    if kind == "DOUBLE":
        return float(value) if _DECIMAL.fullmatch(value) else _DECLINE
    if kind == "INTEGER":
        return int(value) if _WHOLE.fullmatch(value) else _DECLINE
    return _DECLINE  # pragma: no cover - a column type added later: the SQL knows it
