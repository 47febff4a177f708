"""Data: open the store, what it holds, ingest events and labels, column mappings.

The front end opens the store (``open_store``) and passes it to each use case; parsing of
options (a mapping, a time window) happens before, so a bad option never touches the store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.app._lazy import lazy_exports
from core.schema import EVENT_COLUMN_NAMES, OPTIONAL_IN_SOURCE, REQUIRED_EVENT_COLUMNS
from core.store import Store, resolve_db_path
from core.store.connection import DEFAULT_WAIT_S

if TYPE_CHECKING:
    from core.ingest import ColumnMapping, IngestReport
    from core.ingest.time_window import TimeWindow

REQUIRED_IN_SOURCE: tuple[str, ...] = tuple(
    c for c in REQUIRED_EVENT_COLUMNS if c not in OPTIONAL_IN_SOURCE)
"""The columns a file must have (event_type may be absent: every row is then 'event'; by
event, user_id may be absent too: each row is then its own user)."""


def required_columns(*, by_event: bool, by_sequence: bool = False) -> tuple[str, ...]:
    """The columns a file ingested by session must map; none by event (a row with no user is
    its own user, and with no time column the rows' order stands for time) or for a file of
    sequences (times and types come from the sequence).

        >>> required_columns(by_event=False), required_columns(by_event=True)
        (('user_id', 'ts'), ())
    """
    if by_sequence or by_event:
        return ()
    return REQUIRED_IN_SOURCE


SEQUENCE_CELL = re.compile(r"^\s*\[[^\[\]]*[^\s,;|\[\]'\"][^\[\]]*\]\s*$")
"""A cell that lists a session's events: one bracketed list of at least one token."""


def sequence_like_columns(frame: Any) -> list[str]:
    """Text columns of a preview whose every filled cell is a bracketed list of tokens
    (``[E5,E22,E11]``): the events of one session each, as log traces ship them.

        >>> import pandas as pd
        >>> sequence_like_columns(pd.DataFrame({"BlockId": ["b1"], "Features": ["[E5,E22]"]}))
        ['Features']
    """
    out = []
    for column in frame.columns:
        cells = [str(v) for v in frame[column].tolist() if v is not None and str(v).strip()]
        if cells and all(SEQUENCE_CELL.match(c) for c in cells):
            out.append(str(column))
    # a column named for events first (HDFS traces: Features before TimeInterval)
    return sorted(out, key=lambda c: not re.search(r"event|sequence|trace|feature", c, re.I))


def label_like_columns(columns: Sequence[str]) -> list[str]:
    """The columns named like labels (``Class``, ``isFraud``), in file order."""
    from core.schema import looks_like_label

    return [c for c in columns if looks_like_label(str(c))]

__all__ = [
    "DEFAULT_WAIT_S", "EVENT_COLUMN_NAMES", "REQUIRED_EVENT_COLUMNS", "REQUIRED_IN_SOURCE",
    "Store", "holds_scores",
    "ingest_event_files", "ingest_label_file", "label_like_columns", "open_store",
    "parse_mapping", "parse_time_window", "required_columns", "resolve_db_path",
    "sequence_like_columns", "store_info",
]

# Also here, imported on first use: the ingest package loads pyarrow, which `--help` skips.
_LAZY = {
    "ColumnMapping": "core.ingest", "IngestReport": "core.ingest",
    "ingest_events": "core.ingest", "preview_file": "core.ingest",
    "suggest_mapping": "core.ingest", "ingest_labels": "core.ingest.labels",
    "CSV_SUFFIXES": "core.ingest.sources", "PARQUET_SUFFIXES": "core.ingest.sources",
}

__getattr__ = lazy_exports(__name__, _LAZY)


def open_store(path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
               wait_s: float = DEFAULT_WAIT_S) -> Store:
    """The store at ``path`` (default ``$ANOMALYST_DB`` or data/anomalyst.duckdb), created and
    migrated for a writer; waits up to ``wait_s`` while another process holds it."""
    return Store.open(path, read_only=read_only, wait_s=wait_s)


def store_info(store: Store) -> dict[str, Any]:
    """What the store holds: counts, time range, event types, labels, models."""
    return store.info()


def holds_scores(path: Path) -> bool:
    """Whether the store at ``path`` has sessions and at least one scored model (any failure
    to read it counts as no: the demo rebuilds it)."""
    if not path.exists():
        return False
    try:
        with open_store(path, read_only=True, wait_s=5) as store:
            return bool(store.summary.count_sessions()) and not store.models.scored().empty
    except Exception:  # noqa: BLE001  (an unreadable store is rebuilt by `demo --rebuild`)
        return False


def parse_mapping(pairs: Iterable[str] = (), map_file: str | Path | None = None) -> ColumnMapping:
    """A column mapping from ``canonical=source`` strings and/or a JSON file."""
    from core.ingest import ColumnMapping

    return ColumnMapping.parse(pairs, map_file)


def parse_time_window(min_ts: str | None = None, max_ts: str | None = None) -> TimeWindow:
    """The plausible event-time window from option values, else the environment."""
    from core.ingest.time_window import TimeWindow

    return TimeWindow.parse(min_ts, max_ts)


def ingest_event_files(store: Store, files: Sequence[str | Path], **options: Any) -> IngestReport:
    """Ingest event files (all or nothing); ``options`` as ``core.ingest.ingest_events``."""
    from core.ingest import ingest_events

    return ingest_events(store, [str(f) for f in files], **options)


def ingest_label_file(store: Store, path: str | Path, **options: Any) -> IngestReport:
    """Store ground-truth labels from ``path``; ``options`` as ``core.ingest.labels``."""
    from core.ingest.labels import ingest_labels

    return ingest_labels(store, str(path), **options)
