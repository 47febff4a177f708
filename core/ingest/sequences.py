"""Files with one row per session, its events in one cell (``ingest --sequence COLUMN``).

Public log-anomaly data ship sessions this way: loghub's HDFS traces hold a block id, its
label and the block's log templates in order (``blk_-16...,Success,,"[E5,E22,E5,E11]"``), and
DeepLog-style files hold ``5 5 22 11``. Such a source is exploded here into one event per
token, in the cell's order, before the usual mapping and validation
(``core.ingest.events``):

* the token is the event type (a run of characters other than spaces, commas, semicolons,
  ``|``, brackets and quotes: ``[E5,E22]``, ``E5 E22``, ``['E5', 'E22']`` all read the same);
* the row is one session: its session column when the file has one (mapped, or named
  ``session_id``, ``BlockId``, ...), else ``seq-<file>-<row>``; its user column, else the
  session is its own user;
* the events' times are made up, since such files hold the order only: every event of the
  file, row after row, one step apart from ``SEQUENCE_BASE`` (at most 1 ms, less for large
  files), so the whole file spans less than a day. Features of time within a session (gaps,
  duration) then count events, and the training pipeline leaves the time-of-day and weekend
  columns out (``core.pipeline.calendar``: a window shorter than their cycle);
* the other columns repeat on each event of their row; a ``--labels`` column labels the
  row's session (``core.ingest.inline_labels``); a row with no token holds no event and is
  left out, with a note.

    >>> import pandas as pd
    >>> from core.store import Store
    >>> from core.ingest.events import ingest_events
    >>> frame = pd.DataFrame({"BlockId": ["b1", "b2"], "Features": ["[E5,E22,E5]", "E5 E9"]})
    >>> with Store.open(":memory:") as store:
    ...     ingest_events(store, frame, sequence_column="Features").n_added
    5
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

from core.errors import IngestError
from core.ingest.mapping import ColumnMapping
from core.ingest.report import IngestReport
from core.ingest.sources import RawSource
from core.ingest.time_window import TimeWindow
from core.store import Store
from core.store.ingest_sql import quote_ident

TOKEN_PATTERN = r"[^\s,;|\[\](){}'\"]+"
"""One event type in a sequence cell."""
SEQUENCE_BASE = dt.datetime(2000, 1, 3)
"""Where the made-up clock of a sequence file starts (a Monday, at midnight)."""
SEQUENCE_SPAN_US = 12 * 3_600 * 1_000_000
"""Every made-up time of a file lies within this span of the base (half a day)."""
MAX_STEP_US = 1_000
MADE_UP = ("ts", "event_type")
"""Canonical columns a sequence file's events get from the sequence itself."""


@dataclass(frozen=True)
class SequenceSource(RawSource):
    """A source exploded to one row per event; its row labels name the source row."""

    inner: RawSource | None = None
    rows: tuple[int, ...] = field(default=(), compare=False)  # source row of each session
    firsts: tuple[int, ...] = field(default=(), compare=False)  # its first event's row here

    def row_label(self, row: int) -> str:
        at = bisect.bisect_right(self.firsts, row) - 1
        if self.inner is None or at < 0:
            return super().row_label(row)
        return (f"{self.inner.row_label(self.rows[at])}, event {row - self.firsts[at] + 1} of "
                "its sequence")


def made_up_clock(n_events: int, window: TimeWindow, label: str) -> tuple[dt.datetime, int]:
    """(first time, microseconds between events) of a made-up clock for ``n_events`` events
    in order: at most 1 ms apart, all within ``SEQUENCE_SPAN_US``, from ``SEQUENCE_BASE`` (or
    the first midnight of ``window``); raises when they cannot fit ``window``."""
    step = max(1, min(MAX_STEP_US, SEQUENCE_SPAN_US // max(n_events, 1)))
    midnight = dt.datetime.combine(window.min_ts.date(), dt.time())
    base = max(SEQUENCE_BASE, midnight + dt.timedelta(days=1 if midnight < window.min_ts else 0))
    if base + dt.timedelta(microseconds=step * n_events) >= window.max_ts:
        raise IngestError(
            f"{label}: the made-up event times start at {base:%Y-%m-%d} and need to lie before "
            f"the latest plausible time, {window.max_ts:%Y-%m-%d}. Nothing was written. Widen "
            "the window (--max-ts).")
    return base, step


def explode(store: Store, raw: RawSource, column: str, index: int, mapping: ColumnMapping,
            window: TimeWindow, report: IngestReport) -> SequenceSource:
    """``raw`` as one row per event of its ``column`` (temp table ``_seq_{index}``)."""
    names = raw.column_names
    if column not in names:
        raise IngestError(
            f"{raw.label}: --sequence names column {column!r}, which the file does not have. "
            f"Its columns are: {', '.join(names)}. Nothing was written.")
    given = sorted(c for c in MADE_UP if c in mapping.explicit)
    if given:
        raise IngestError(
            f"{raw.label}: with --sequence the events' {' and '.join(given)} come from the "
            f"sequence, so --map {given[0]}=... cannot be used. Nothing was written. Drop that "
            "mapping.")
    clash = [c for c in names if c.lower() in MADE_UP and c != column]
    if clash:
        raise IngestError(
            f"{raw.label}: the file has a column {clash[0]!r}, and with --sequence each "
            f"event's {clash[0].lower()} comes from the sequence {column!r}. Nothing was "
            "written. Rename or drop that column.")
    rows, lengths = store.ingests.sequence_lengths(raw.table, column, TOKEN_PATTERN)
    n_events = sum(lengths)
    if not n_events:
        raise IngestError(
            f"{raw.label}: the sequence column {column!r} holds no event in any row. Nothing "
            "was written. Name the column that lists each session's events, e.g. "
            "\"[E5,E22,E11]\" or \"E5 E22 E11\".")
    if len(rows) < raw.n_rows:
        report.notes.append(
            f"{raw.label}: {raw.n_rows - len(rows):,} row(s) have an empty sequence and hold "
            "no event; they were left out (with their labels).")
    base, step = made_up_clock(n_events, window, raw.label)
    session = mapping.source_of("session_id", names)
    user = mapping.source_of("user_id", names)
    row_id = f"'seq-{index}-' || CAST(_seq_row + 1 AS VARCHAR)"
    added: dict[str, str] = {}
    if session is None:
        added["session_id"] = row_id
    if user is None:
        added["user_id"] = (row_id if session is None
                            else f"CAST({quote_ident(session)} AS VARCHAR)")
    report.notes.append(
        f"{raw.label}: {n_events:,} events from the sequences of column {column!r}, one "
        f"session per row ({'its ' + repr(session) if session else 'no session column: ids '}"
        f"{'' if session else 'seq-' + str(index) + '-<row>'}), "
        f"{'each its own user' if user is None else 'users from ' + repr(user)}. The file "
        "holds the order of events only: their times are made up, one step apart, and "
        "time-of-day features mean nothing here.")
    table = f"_seq_{index}"
    store.ingests.explode_sequences(table, raw.table, column, pattern=TOKEN_PATTERN,
                                    drop=("rowid",) if raw.kind == "VIEW" else (),
                                    added=added, base=base, step_us=step)
    columns = store.ingests.columns_of(table)
    firsts, at = [], 0
    for n in lengths:
        firsts.append(at)
        at += n
    return SequenceSource(raw.label, table, columns, n_events, False, "TABLE",
                          inner=raw, rows=tuple(rows), firsts=tuple(firsts))
