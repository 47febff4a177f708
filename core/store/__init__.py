"""The store: one class owns all DuckDB access (splink's "one class handles all database access").

    >>> from core.store import Store
    >>> with Store.open(":memory:") as store:
    ...     store.summary.count_events()
    0
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

from core.errors import StoreError
from core.json_safe import json_records
from core.store.audit import Audit
from core.store.cases import Cases
from core.store.connection import (
    DEFAULT_WAIT_S,
    check_readable_version,
    connect_with_retry,
    migrate,
    resolve_db_path,
    stored_version,
)
from core.store.ensembles import Ensembles
from core.store.entities import Entities
from core.store.explanations import Explanations
from core.store.ingests import Ingests
from core.store.labels import Labels
from core.store.live import LiveAlerts
from core.store.live_stats import LiveStats
from core.store.models import Models
from core.store.policies import Policies, SavedViews
from core.store.scores import Scores
from core.store.sessions import Sessions
from core.store.similar_sql import SimilarReads
from core.store.summary import Summary
from core.store.suppressions import Suppressions
from core.store.text import Texts
from core.store.thresholds import Thresholds
from core.store.user_history import UserHistory
from core.store.users import Users
from core.store.work_queue import WorkQueue

T = TypeVar("T")

_STRING = pd.StringDtype("pyarrow", na_value=float("nan"))  # what ``.df()`` gives strings


def _pandas_type(arrow_type: Any) -> Any:
    """Arrow strings become pandas' default string dtype; everything else converts as usual."""
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or (
            pa.types.is_string_view(arrow_type)):
        return _STRING
    return None

__all__ = ["Store", "resolve_db_path"]

Params = Sequence[Any] | dict[str, Any] | None
"""Bound parameters of a query: positional or named."""


class Store:
    """An open Anomalyst store. Use ``Store.open(path)`` as a context manager.

    One connection per store object; each thread that uses the store gets its own cursor
    (DuckDB connections are not safe to share across threads).

    Questions are asked by subject (``store.models.latest_of(detector)``,
    ``store.scores.labelled(model_id, sources)``, ``store.thresholds.saved(model_id)``, ...):
    each subject is a class in ``core/store/<subject>.py`` with its SQL beside the method that
    runs it, through the private ``_execute``/``_rows``/``_scalar``/``_frame``/``_large_frame``
    (a failing query's error carries its name).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        self._holders = 0
        self._hold_lock = threading.Lock()
        self._share_wait_s: float | None = None  # set by share_when_idle

    # --- sharing the file with other processes (a long-lived writer) -----------------------
    def share_when_idle(self, wait_s: float = DEFAULT_WAIT_S) -> None:
        """From now on the file is open only while some thread is inside ``held()``: the last
        one out closes it, so other processes (the dashboard, the CLI) can open it between
        uses; the next ``held()`` opens it again, waiting up to ``wait_s`` for them. For a
        process that keeps a store for hours (the scoring service). Every use must then be
        inside ``held()``."""
        self._share_wait_s = float(wait_s)
        with self._hold_lock:
            if self._holders == 0:
                self._close_connection()

    @contextmanager
    def held(self) -> Iterator[Store]:
        """The store, open for as long as the block runs (see ``share_when_idle``; without
        it, this only yields the open store)."""
        with self._hold_lock:
            if self._con is None:
                self._con = connect_with_retry(self.path, read_only=self.read_only,
                                               wait_s=self._share_wait_s or DEFAULT_WAIT_S)
            self._holders += 1
        try:
            yield self
        finally:
            with self._hold_lock:
                self._holders -= 1
                if self._holders == 0 and self._share_wait_s is not None:
                    self._close_connection()

    def _close_connection(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._local = threading.local()  # every thread's cursor was on that connection

    # --- one snapshot of repeated reads ------------------------------------------------------
    @contextmanager
    def snapshot_reads(self) -> Iterator[None]:
        """Within it, on this thread, reads that only a write changes and that a use case
        repeats (the events' and labels' fingerprints, a user's other sessions, a session's
        events) are answered once: the combined Why explains up to four models of one session,
        and each asked the same questions (~40 ms each at 1M sessions). Nest freely; write
        nothing inside that changes them (caching an explanation is fine)."""
        outer = getattr(self._local, "memo", None) is None
        if outer:
            self._local.memo = {}
        try:
            yield
        finally:
            if outer:
                self._local.memo = None

    def _memoized(self, key: tuple[Any, ...], read: Callable[[], T]) -> T:
        """``read()``, once per ``key`` inside ``snapshot_reads`` (always outside it)."""
        memo = getattr(self._local, "memo", None)
        if memo is None:
            return read()
        if key not in memo:
            memo[key] = read()
        return memo[key]

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        read_only: bool = False,
        wait_s: float = DEFAULT_WAIT_S,
    ) -> Store:
        """Open (and for writers create and migrate) the store at ``path``.

        ``path`` defaults to ``$ANOMALYST_DB`` or ``data/anomalyst.duckdb``; ``":memory:"``
        gives a throw-away store. Waits up to ``wait_s`` for another process to let go.
        """
        resolved = Path(":memory:") if str(path) == ":memory:" else resolve_db_path(path)
        if str(resolved) == ":memory:":
            con = duckdb.connect(":memory:")
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")  # the CLI and dashboard show their own
        else:
            con = connect_with_retry(resolved, read_only=read_only, wait_s=wait_s)
        try:
            if read_only:
                check_readable_version(con, resolved)
            else:
                migrate(con, resolved)
        except Exception:
            con.close()
            raise
        return cls(con, resolved, read_only=read_only)

    def close(self) -> None:
        self._share_wait_s = None
        self._close_connection()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- subjects -------------------------------------------------------------------------
    @cached_property
    def thresholds(self) -> Thresholds:
        return Thresholds(self)

    @cached_property
    def summary(self) -> Summary:
        return Summary(self)

    @cached_property
    def labels(self) -> Labels:
        return Labels(self)

    @cached_property
    def models(self) -> Models:
        return Models(self)

    @cached_property
    def scores(self) -> Scores:
        return Scores(self)

    @cached_property
    def ensembles(self) -> Ensembles:
        return Ensembles(self)

    @cached_property
    def ingests(self) -> Ingests:
        return Ingests(self)

    @cached_property
    def policies(self) -> Policies:
        return Policies(self)

    @cached_property
    def saved_views(self) -> SavedViews:
        return SavedViews(self)

    # H1a subjects: cases, audit, suppressions, explanations, users, sessions, text
    @cached_property
    def cases(self) -> Cases:
        return Cases(self)

    @cached_property
    def audit(self) -> Audit:
        return Audit(self)

    @cached_property
    def suppressions(self) -> Suppressions:
        return Suppressions(self)

    @cached_property
    def explanations(self) -> Explanations:
        return Explanations(self)

    @cached_property
    def users(self) -> Users:
        return Users(self)

    @cached_property
    def sessions(self) -> Sessions:
        return Sessions(self)

    @cached_property
    def user_history(self) -> UserHistory:
        return UserHistory(self)

    @cached_property
    def work_queue(self) -> WorkQueue:
        return WorkQueue(self)

    @cached_property
    def entities(self) -> Entities:
        return Entities(self)

    @cached_property
    def similar(self) -> SimilarReads:
        return SimilarReads(self)

    @cached_property
    def live(self) -> LiveAlerts:
        return LiveAlerts(self)

    @cached_property
    def live_stats(self) -> LiveStats:
        return LiveStats(self)

    @property
    def text(self) -> Texts:
        """Texts on this thread's cursor (the repository takes a connection)."""
        return Texts(self.con)

    @property
    def version(self) -> int:
        return stored_version(self.con)

    # --- access ---------------------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the store's connection."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            if self._con is None:
                raise StoreError(f"the store {self.path} is shared with other processes and "
                                 "not held here: use it inside `with store.held():`.")
            cursor = self._con if threading.current_thread() is threading.main_thread() else (
                self._con.cursor()
            )
            self._local.cursor = cursor
        return cursor

    # --- private execution, for the subject repositories of core/store ----------------------
    # A subject module (``core/store/models.py``, ...) keeps its SQL beside the method that runs
    # it and executes it through these; ``name`` only labels errors.
    def _execute(self, name: str, sql: str, params: Params = None) -> duckdb.DuckDBPyConnection:
        """Execute ``sql`` with bound parameters; errors carry ``name``."""
        try:
            return self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise StoreError(f"Store query '{name}' failed: {first}") from exc

    def _rows(self, name: str, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self._execute(name, sql, params).fetchall()

    def _scalar(self, name: str, sql: str, params: Params = None) -> Any:
        rows = self._rows(name, sql, params)
        return rows[0][0] if rows else None

    def _frame(self, name: str, sql: str, params: Params = None) -> pd.DataFrame:
        return self._execute(name, sql, params).df()

    def _large_frame(self, name: str, sql: str, params: Params = None) -> pd.DataFrame:
        """``_frame`` for reads of up to millions of rows: the result travels as Arrow, so
        strings are not built one Python object at a time (much faster for a million-row score
        table; docs/BENCHMARKS.md, 'Measurements behind design choices'). The dtypes equal
        ``_frame``'s except that an integer column holding NULLs comes back as float."""
        try:
            table = self.con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise StoreError(f"Store query '{name}' failed: {first}") from exc
        return table.to_pandas(types_mapper=_pandas_type)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: commit on success, roll back on any exception."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # --- summaries ------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What the store holds, as plain JSON-ready values."""
        summary = self.summary
        first, last = summary.time_range()
        return {
            "path": str(self.path),
            "schema_version": self.version,
            "n_events": summary.count_events(),
            "n_sessions": summary.count_sessions(),
            "n_users": summary.count_users(),
            "unit": self.ingests.unit() or "session",
            "first_event_at": iso_text(first),
            "last_event_at": iso_text(last),
            "event_types": summary.event_type_counts(),
            "labels": json_records(summary.label_counts()),
            "models": json_records(self.models.listing()),
        }


def iso_text(value: Any) -> str | None:
    """ISO text of a stored timestamp. DuckDB hands timestamps outside Python's years 1-9999
    over as text (e.g. '294247-01-01 00:00:00', '1001-01-01 (BC) 00:00:00'): kept as is."""
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
