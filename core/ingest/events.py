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
from core.ingest.mapping import ColumnMapping
from core.ingest.report import IngestReport
from core.ingest.sources import (
    EventSource,
    RawSource,
    load_source,
    source_label,
    unreadable_source_message,
)
from core.ingest.time_window import TimeWindow
from core.schema import DEFAULT_SESSION_GAP_MINUTES, EVENT_COLUMN_NAMES
from core.store import Store
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
    stage_select,
)
from core.store.label_rollup import refresh_after_event_ingest

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
) -> IngestReport:
    """Ingest events from CSV/Parquet files or DataFrames into ``store``.

    Every source is validated before anything is written; then all of them are written in one
    transaction. A bad row raises IngestError naming the source, the rows and the columns,
    unless ``skip_bad_rows``, which loads the good rows and writes the rejected ones, with a
    reason each, next to the source (or into ``rejected_dir``). Timestamps outside
    ``time_window`` (default ``TimeWindow.parse()``: the documented window or the
    environment's) are bad rows.
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
    mapping = mapping or ColumnMapping()
    window = time_window or TimeWindow.parse()
    report = IngestReport("events", [source_label(s) for s in sources])
    con = store.con
    raws: list[RawSource] = []
    try:
        selects = []
        for index, source in enumerate(sources):
            raw = load_source(con, source, index, encoding=encoding)
            raws.append(raw)
            selects.append(_stage_select(raw, index, mapping, keep_extra, report, window))
        try:
            _stage_and_write(store, raws, selects, report, skip_bad_rows, session_gap_minutes,
                             rejected_dir)
        except duckdb.Error as exc:  # a damaged page read in place, after loading
            raise IngestError(unreadable_source_message(con, raws, exc)) from exc
    finally:
        temps = ("_derived", "_dup_rows", "_stage", "_session_agg", "_conflicts")
        for name in (*temps, *(r.table for r in raws)):
            drop_temp(con, name)
    log.info(report.summary())
    return report


def _stage_and_write(
    store: Store, raws: list[RawSource], selects: list[str], report: IngestReport, skip: bool,
    gap_minutes: float, rejected_dir: str | Path | None,
) -> None:
    con = store.con
    # A view: validation reads only what it needs, and the insert streams from the source
    # without a staged copy (writing 10M rows twice would halve ingest speed).
    con.execute(f"CREATE OR REPLACE TEMP VIEW _stage AS {' UNION ALL BY NAME '.join(selects)}")
    report.n_rows = sum(r.n_rows for r in raws)
    rejected, n_missing_ids = _check_rows(con, raws, skip, report)
    _derive(con, gap_minutes, n_missing_ids, all_good=not rejected)
    _write(store, report, raws, skip)
    if report.n_rejected:
        report.rejected_files = _write_rejected(con, raws, rejected_dir)


def _stage_select(
    raw: RawSource, index: int, mapping: ColumnMapping, keep_extra: bool, report: IngestReport,
    window: TimeWindow,
) -> str:
    resolved = mapping.resolve(raw.column_names, raw.label)
    types = dict(raw.columns)
    mapped = {canon: (quote_ident(src), types[src]) for canon, src in resolved.items()}
    extras = [c for c in raw.column_names if c not in resolved.values()]
    if extras and not keep_extra:
        report.notes.append(f"{raw.label}: dropped extra column(s) {', '.join(extras)}.")
        extras = []
    elif extras:
        report.notes.append(f"{raw.label}: kept extra column(s) {', '.join(extras)} in 'extra'.")
    return stage_select(quote_ident(raw.table), "rowid", mapped, extras, index,
                        (window.min_ts, window.max_ts))


def _check_rows(
    con, raws: list[RawSource], skip: bool, report: IngestReport
) -> tuple[int, int]:
    """(bad rows, good rows lacking an id); raises on bad rows unless ``skip``."""
    n_bad, n_missing = con.execute(
        "SELECT count(*) FILTER (WHERE _reason IS NOT NULL), "
        "count(*) FILTER (WHERE _reason IS NULL AND (event_id IS NULL OR session_id IS NULL)) "
        "FROM _stage"
    ).fetchall()[0]
    if not n_bad:
        return 0, int(n_missing)
    if skip:
        report.n_rejected = int(n_bad)
        return int(n_bad), int(n_missing)
    sample = con.execute(
        "SELECT _file, _row, _reason FROM _stage WHERE _reason IS NOT NULL "
        f"ORDER BY _file, _row LIMIT {MAX_LISTED_ROWS}"
    ).fetchall()
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


def drop_temp(con, name: str) -> None:
    """Drop a temp table or view of this connection, whichever it is."""
    for (kind,) in con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall():
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {quote_ident(name)}")


def _derive(con, gap_minutes: float, n_missing: int, *, all_good: bool) -> None:
    """Fill missing ids; a plain view over the good rows when every row has both ids."""
    if n_missing:
        sql = derive_ids_sql(gap_minutes=gap_minutes)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _derived AS {sql}")
    else:
        # Without bad rows the filter is dropped, so the insert never evaluates _reason.
        where = "" if all_good else " WHERE _reason IS NULL"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW _derived AS SELECT * EXCLUDE (_reason) FROM _stage{where}"
        )


def _drop_repeated_ids(
    con, ingest_id: int, raws: list[RawSource], skip: bool, report: IngestReport
) -> None:
    """Keep the first row of each repeated id; ids repeated with other contents are errors."""
    con.execute(DUPLICATES_IN_INGEST, [ingest_id])
    clashes = [row[0] for row in con.execute(CONFLICTING_EVENT_IDS).fetchall()]
    if clashes and not skip:
        f, rows = con.execute(CONFLICT_ROWS, [clashes[0]]).fetchall()[0]
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
    con.execute(DELETE_REPEATED_IDS, [ingest_id])


def _refuse_stored_conflicts(
    con, ingest_id: int, raws: list[RawSource], skip: bool, report: IngestReport,
    n_already_stored: int,
) -> None:
    """An event_id stored earlier with other contents is an error, not a duplicate; with
    ``skip`` such rows are rejected (the stored event stays) and listed with a reason."""
    if n_already_stored <= 0:  # nothing was skipped as present: no join needed
        con.execute(NO_CONFLICTS)
        return
    con.execute(STORED_CONFLICTS, [ingest_id])
    n, = con.execute("SELECT count(*) FROM _conflicts").fetchall()[0]
    if not n:
        return
    if skip:
        report.n_rejected += int(n)
        return
    f, row, reason = con.execute(
        "SELECT _file, _row, _reason FROM _conflicts ORDER BY _file, _row LIMIT 1"
    ).fetchall()[0]
    raise IngestError(
        f"{raws[f].label}: {n:,} row(s) conflict with stored events, e.g. "
        f"{raws[f].row_label(row)}: {reason}. Event ids must be unique and events are never "
        "overwritten. Nothing was written. Fix the ids, or pass --skip-bad-rows to keep the "
        "stored events and get these rows in the rejected file."
    )


def _write(store: Store, report: IngestReport, raws: list[RawSource], skip: bool) -> None:
    """One transaction: new events, their sessions (checked for clashes) and the log entry."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with store.transaction() as con:
        ingest_id = int(store.scalar("next_ingest_id"))
        n_inserted = int(con.execute(INSERT_NEW_EVENTS, [ingest_id]).fetchall()[0][0])
        n_stored_before = report.n_rows - report.n_rejected - n_inserted
        _refuse_stored_conflicts(con, ingest_id, raws, skip, report, n_stored_before)
        _drop_repeated_ids(con, ingest_id, raws, skip, report)
        n_added = int(con.execute("SELECT count(*) FROM events WHERE ingest_id = ?", [ingest_id])
                      .fetchall()[0][0])
        store.run("session_aggregates", [ingest_id])
        clash = store.run("session_clash").fetchall()
        if clash:
            session_id, users = clash[0]
            raise IngestError(
                f"{'; '.join(r.label for r in raws)}: session_id {session_id!r} belongs to "
                f"several users ({', '.join(map(str, users))}). Session ids must be unique "
                "across users. Nothing was written. Map a unique session column, or leave "
                "session_id unmapped to sessionize by the inactivity gap."
            )
        store.run("merge_sessions")
        store.run("merge_user_entities", {"ingest_id": ingest_id})
        refresh_after_event_ingest(store, ingest_id)
        crash_point("ingest.before_commit")
        report.n_sessions_touched = int(con.execute("SELECT count(*) FROM _session_agg")
                                        .fetchall()[0][0])
        n_good = report.n_rows - report.n_rejected
        report.ingest_id = ingest_id
        report.n_added = n_added
        report.n_duplicates = n_good - n_added
        store.run(
            "record_ingest",
            [ingest_id, "events", "; ".join(report.sources)[:2000], started, report.n_rows,
             n_added, report.n_duplicates, report.n_rejected, " ".join(report.notes)[:2000]],
        )


_REJECTS = (
    "(SELECT _file, _row, _reason FROM _stage WHERE _reason IS NOT NULL "
    "UNION ALL SELECT _file, _row, _reason FROM _conflicts)"
)


def _write_rejected(con, raws: list[RawSource], rejected_dir: str | Path | None) -> list[str]:
    written = []
    for index, raw in enumerate(raws):
        n = con.execute(
            f"SELECT count(*) FROM {_REJECTS} WHERE _file = ?", [index]
        ).fetchall()[0][0]
        if not n:
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
            con.execute(
                f"COPY (SELECT s._row + {2 if raw.is_csv else 1} AS source_row, "
                f"{sql_neutralise('s._reason')} AS reason, {cells} "
                f"FROM {quote_ident(raw.table)} r JOIN {_REJECTS} s ON s._file = {index} "
                f"AND s._row = r.rowid ORDER BY s._row) "
                f"TO {quote_literal(str(target))} (HEADER, DELIMITER ',')"
            )
        make_private(target)
        written.append(str(target))
    return written


__all__ = ["ingest_events", "EVENT_COLUMN_NAMES"]
