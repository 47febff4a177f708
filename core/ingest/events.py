"""Event ingest: map columns → validate → sessionize → dedupe → write, all or nothing.

    >>> import pandas as pd
    >>> from core.store import Store
    >>> frame = pd.DataFrame({"user_id": ["u1", "u1"], "ts": ["2026-01-01T10:00:00",
    ...     "2026-01-01T10:05:00"], "event_type": ["login", "view"]})
    >>> with Store.open(":memory:") as store:
    ...     ingest_events(store, frame).n_added
    2
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from core.csv_safe import neutralise_cell, sql_neutralise
from core.errors import IngestError
from core.faults import crash_point
from core.files import make_private, private_umask
from core.ingest.inline_labels import answer_columns, store_labels
from core.ingest.inline_labels import check_column as check_labels_column
from core.ingest.inline_labels import collect as collect_labels
from core.ingest.mapping import ColumnMapping
from core.ingest.report import IngestReport
from core.ingest.sequences import SequenceSource, made_up_clock
from core.ingest.sequences import explode as explode_sequences
from core.ingest.sources import (
    EventSource,
    RawSource,
    load_source,
    source_label,
    unreadable_source_message,
)
from core.ingest.time_window import TimeWindow
from core.schema import (
    DEFAULT_SESSION_GAP_MINUTES,
    EVENT_COLUMN_NAMES,
    OPTIONAL_IN_SOURCE,
    looks_like_label,
)
from core.store import Store
from core.store.ingest_sql import EPOCH_UNITS, quote_ident, row_order_timestamp, stage_select

log = logging.getLogger(__name__)
MAX_LISTED_ROWS = 5


def ingest_events(
    store: Store,
    sources: EventSource | Sequence[EventSource],
    *,
    mapping: ColumnMapping | None = None,
    session_gap_minutes: float = DEFAULT_SESSION_GAP_MINUTES,
    skip_bad_rows: bool = False,
    rejected_dir: str | Path | None = None,
    keep_extra: bool = True,
    encoding: str = "utf-8",
    time_window: TimeWindow | None = None,
    unit: str = "session",
    labels_column: str | None = None,
    ts_unit: str | None = None,
    sequence_column: str | None = None,
) -> IngestReport:
    """Ingest events from CSV/Parquet files or DataFrames into ``store``.

    Every source is validated before anything is written; then all of them are written in one
    transaction. A bad row raises IngestError naming the source, the rows and the columns,
    unless ``skip_bad_rows``, which loads the good rows and writes the rejected ones, with a
    reason each, next to the source (or into ``rejected_dir``). Timestamps outside
    ``time_window`` (default ``TimeWindow.parse()``: the documented window or the
    environment's) are bad rows.

    ``unit`` is what the store scores: ``session`` (the source's sessions, else inactivity
    gaps) or ``event`` (each event its own session, its id the event id: for payment data,
    where one event is one payment and the unit an analyst acts on; any session_id column
    is then ignored). A store keeps the unit of its first ingest; another is refused.

    ``labels_column``: a column of every source that holds each row's label (``Class``,
    ``isFraud``): checked before anything is written, kept out of the events' extras, and
    stored as ground truth for the rows' events once they are (``core.ingest.inline_labels``).

    ``ts_unit``: the unit of a numeric time column (``s``, ``ms``, ``us``, ``ns``, ``min``,
    ``h``, ``d``: a simulation's step in hours is ``h``); None reads it off the magnitude.

    ``sequence_column``: each row is one session whose events are listed, in order, in this
    column (``[E5,E22,E11]``; ``core.ingest.sequences``); their times are made up.
    """
    if isinstance(sources, (str, os.PathLike, pd.DataFrame)):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise IngestError("No sources given. Pass at least one CSV or Parquet file.")
    if session_gap_minutes <= 0:
        raise IngestError(
            f"session gap must be > 0 minutes, got {session_gap_minutes}. Use e.g. 30m."
        )
    _check_unit(store, unit)
    if sequence_column is not None and unit == "event":
        raise IngestError("--sequence makes each row one session of several events, and "
                          "--unit event scores each event on its own. Pick one.")
    if ts_unit is not None and ts_unit not in EPOCH_UNITS:
        raise IngestError(f"ts unit must be one of {', '.join(EPOCH_UNITS)}, got {ts_unit!r}.")
    mapping = mapping or ColumnMapping()
    window = time_window or TimeWindow.parse()
    report = IngestReport("events", [source_label(s) for s in sources])
    raws: list[RawSource] = []
    labels = None
    try:
        selects = []
        for index, source in enumerate(sources):
            raw = load_source(store, source, index, encoding=encoding)
            raws.append(raw)
            if sequence_column is not None:
                raw = explode_sequences(store, raw, sequence_column, index, mapping, window,
                                        report)
                raws[-1] = raw
            if labels_column is not None:
                check_labels_column(store, raw, labels_column)
            selects.append(_stage_select(store, raw, index, mapping, keep_extra, report,
                                         window, unit, labels_column, ts_unit))
        try:
            _stage_and_write(store, raws, selects, report, skip_bad_rows, session_gap_minutes,
                             rejected_dir, unit)
            if labels_column is not None:
                labels = collect_labels(store, raws, labels_column)
        except duckdb.Error as exc:  # a damaged page read in place, after loading
            raise IngestError(unreadable_source_message(store, raws, exc)) from exc
    finally:
        temps = ("_derived", "_dup_rows", "_stage", "_session_agg", "_conflicts")
        store.ingests.drop_temp(*temps, *(r.table for r in raws),
                                *(r.inner.table for r in raws
                                  if isinstance(r, SequenceSource) and r.inner is not None))
    if sequence_column is not None:
        report.n_source_rows = sum(r.inner.n_rows if isinstance(r, SequenceSource)
                                   and r.inner is not None else r.n_rows for r in raws)
    if labels is not None and labels_column is not None:
        store_labels(store, labels, labels_column, report)
    log.info(report.summary())
    return report


def _stage_and_write(
    store: Store, raws: list[RawSource], selects: list[str], report: IngestReport, skip: bool,
    gap_minutes: float, rejected_dir: str | Path | None, unit: str = "session",
) -> None:
    store.ingests.stage_events(selects)
    report.n_rows = sum(r.n_rows for r in raws)
    rejected, n_missing_ids = _check_rows(store, raws, skip, report)
    store.ingests.derive_ids(gap_minutes, n_missing=n_missing_ids, all_good=not rejected,
                             per_event=unit == "event")
    _write(store, report, raws, skip, unit)
    if report.n_rejected:
        report.rejected_files = _write_rejected(store, raws, rejected_dir)


def _stage_select(
    store: Store, raw: RawSource, index: int, mapping: ColumnMapping, keep_extra: bool,
    report: IngestReport, window: TimeWindow, unit: str = "session",
    labels_column: str | None = None, ts_unit: str | None = None,
) -> str:
    per_event = unit == "event"
    resolved = mapping.resolve(raw.column_names, raw.label,
                               optional=("user_id", "ts") if per_event else ())
    mapped_as = {src: canon for canon, src in resolved.items()}
    if labels_column is not None and labels_column in mapped_as:
        canonical = mapped_as[labels_column]
        raise IngestError(
            f"{raw.label}: --labels names column {labels_column!r}, which is also mapped as "
            f"{canonical}. Nothing was written. A column is either the answer or an input: "
            f"name another labels column, or map {canonical} to another column.")
    if "user_id" not in resolved:  # --unit event: each row is its own payment and user
        report.notes.append(
            f"{raw.label}: no user_id column; each row is its own user (its user id is its "
            f"event id), so there is no per-user history, only what its entity columns "
            f"(device, IP, merchant, card) share. Map one with --map user_id=<column>.")
    for column, value in OPTIONAL_IN_SOURCE.items():
        if column not in resolved:
            report.notes.append(f"{raw.label}: no {column} column; every row's {column} is "
                                f"{value!r} (map one with --map {column}=<column>).")
    types = dict(raw.columns)
    mapped = {canon: (quote_ident(src), types[src]) for canon, src in resolved.items()}
    if "ts" not in resolved:  # --unit event: the rows' order stands for time
        base, step = made_up_clock(raw.n_rows, window, raw.label)
        mapped["ts"] = (row_order_timestamp("rowid", base, step), "TIMESTAMP")
        report.notes.append(
            f"{raw.label}: no time column; the rows' order stands for time (made-up times "
            f"from {base:%Y-%m-%d}, one step apart, so time-of-day features mean nothing "
            "here, and the latest rows are the ones evaluated). Map one with "
            "--map ts=<column>.")
    extras = [c for c in raw.column_names
              if c not in resolved.values() and c != labels_column]
    if extras and labels_column is not None:
        answers = answer_columns(store, raw, labels_column, extras, report)
        extras = [c for c in extras if c not in answers]
    if extras and not keep_extra:
        report.notes.append(f"{raw.label}: dropped extra column(s) {', '.join(extras)}.")
        extras = []
    elif extras:
        report.notes.append(f"{raw.label}: kept extra column(s) {', '.join(extras)} in 'extra'.")
        for column in (c for c in extras if looks_like_label(c)):
            report.notes.append(
                f"{raw.label}: column {column!r} looks like labels; models leave it out of "
                f"their features. To evaluate against it, store it as labels: ingest again "
                f"with `--labels {column}` (or `anomalyst ingest-labels` with a file keyed by "
                f"event_id, session_id or user_id).")
    return stage_select(quote_ident(raw.table), "rowid", mapped, extras, index,
                        (window.min_ts, window.max_ts), ts_unit)


def _check_rows(
    store: Store, raws: list[RawSource], skip: bool, report: IngestReport
) -> tuple[int, int]:
    """(bad rows, good rows lacking an id); raises on bad rows unless ``skip``."""
    n_bad, n_missing = store.ingests.stage_counts()
    if not n_bad:
        return 0, n_missing
    if skip:
        report.n_rejected = n_bad
        return n_bad, n_missing
    sample = store.ingests.bad_rows(MAX_LISTED_ROWS)
    first = raws[sample[0][0]]
    listed = "; ".join(
        f"{'' if f == sample[0][0] else raws[f].label + ' '}{raws[f].row_label(r)}: {reason}"
        for f, r, reason in sample
    )
    raise IngestError(
        f"{first.label}: {n_bad:,} row(s) are invalid, e.g. {listed}. Nothing was written. "
        "Fix those rows (or the column mapping with --map), or pass --skip-bad-rows to load "
        "the good rows and get the rejected ones in a side file."
    )


def _drop_repeated_ids(
    store: Store, ingest_id: int, raws: list[RawSource], skip: bool, report: IngestReport
) -> None:
    """Keep the first row of each repeated id; ids repeated with other contents are errors."""
    clashes = store.ingests.repeated_ids_with_other_contents(ingest_id)
    if clashes and not skip:
        f, rows = store.ingests.rows_of_event_id(clashes[0])
        where = ", ".join(raws[f].row_label(r) for r in rows)
        raise IngestError(
            f"{raws[f].label}: event_id {clashes[0]!r} appears with different contents ({where})."
            " Event ids must be unique. Nothing was written. Fix the ids, drop the event_id "
            "mapping to derive ids from content, or pass --skip-bad-rows to keep the first."
        )
    if clashes:
        report.notes.append(
            f"{len(clashes)}+ event id(s) repeated with different contents; kept the first row."
        )
    store.ingests.delete_repeated_ids(ingest_id)


def _refuse_stored_conflicts(
    store: Store, ingest_id: int, raws: list[RawSource], skip: bool, report: IngestReport,
    n_already_stored: int,
) -> None:
    """An event_id stored earlier with other contents is an error, not a duplicate; with
    ``skip`` such rows are rejected (the stored event stays) and listed with a reason."""
    n = store.ingests.check_stored_conflicts(ingest_id, any_stored=n_already_stored > 0)
    if not n:
        return
    if skip:
        report.n_rejected += n
        return
    f, row, reason = store.ingests.first_conflict()
    raise IngestError(
        f"{raws[f].label}: {n:,} row(s) conflict with stored events, e.g. "
        f"{raws[f].row_label(row)}: {reason}. Event ids must be unique and events are never "
        "overwritten. Nothing was written. Fix the ids, or pass --skip-bad-rows to keep the "
        "stored events and get these rows in the rejected file."
    )


UNITS = ("session", "event")


def _check_unit(store: Store, unit: str) -> None:
    """Refuse an unknown unit, or one other than the store's (its sessions would mix)."""
    if unit not in UNITS:
        raise IngestError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}.")
    held = store.ingests.unit() or ("session" if store.ingests.has_events() else None)
    if held is not None and held != unit:
        raise IngestError(
            f"this store scores by {held}, got --unit {unit}. A store keeps one unit: ingest "
            f"with --unit {held}, or into a new store (--db)."
        )


def _write(store: Store, report: IngestReport, raws: list[RawSource], skip: bool,
           unit: str = "session") -> None:
    """One transaction: new events, their sessions (checked for clashes) and the log entry."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ingests = store.ingests
    with store.transaction():
        if ingests.unit() is None:
            ingests.set_unit(unit)
        ingest_id = ingests.next_id()
        n_inserted = ingests.insert_new_events(ingest_id)
        n_stored_before = report.n_rows - report.n_rejected - n_inserted
        _refuse_stored_conflicts(store, ingest_id, raws, skip, report, n_stored_before)
        _drop_repeated_ids(store, ingest_id, raws, skip, report)
        n_added = ingests.count_added(ingest_id)
        clash = ingests.aggregate_sessions(ingest_id)
        if clash:
            session_id, users = clash
            raise IngestError(
                f"{'; '.join(r.label for r in raws)}: session_id {session_id!r} belongs to "
                f"several users ({', '.join(map(str, users))}). Session ids must be unique "
                "across users. Nothing was written. Map a unique session column, or leave "
                "session_id unmapped to sessionize by the inactivity gap."
            )
        n_touched = ingests.merge_sessions(ingest_id)
        store.labels.refresh_after_event_ingest(ingest_id)
        crash_point("ingest.before_commit")
        report.n_sessions_touched = n_touched
        n_good = report.n_rows - report.n_rejected
        report.ingest_id = ingest_id
        report.n_added = n_added
        report.n_duplicates = n_good - n_added
        ingests.record(ingest_id, kind="events", source="; ".join(report.sources),
                       started_at=started, n_rows=report.n_rows, n_added=n_added,
                       n_duplicates=report.n_duplicates, n_rejected=report.n_rejected,
                       notes=" ".join(report.notes))


def _write_rejected(store: Store, raws: list[RawSource], rejected_dir: str | Path | None
                    ) -> list[str]:
    written = []
    for index, raw in enumerate(raws):
        if not store.ingests.count_rejected(index):
            continue
        base = Path(raw.label) if raw.label != "DataFrame" else Path(f"dataframe_{index}")
        folder = Path(rejected_dir) if rejected_dir else (base.parent if base.parent else Path("."))
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{base.stem}.rejected.csv"
        # Every cell and header neutralised (formula injection), written owner-only.
        cells = ", ".join(
            f"{sql_neutralise('r.' + quote_ident(c))} AS {quote_ident(neutralise_cell(c))}"
            for c in raw.column_names
        )
        with private_umask():
            store.ingests.copy_rejected(table=raw.table, file_index=index,
                                        first_row=2 if raw.is_csv else 1, cells=cells,
                                        reason=sql_neutralise("s._reason"), target=str(target))
        make_private(target)
        written.append(str(target))
    return written


__all__ = ["ingest_events", "EVENT_COLUMN_NAMES"]
