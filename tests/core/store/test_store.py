"""The store: migrations, versions, read-only opening and waiting for another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from core.errors import StoreBusyError, StoreError, StoreVersionError
from core.store import Store
from core.store.connection import migrate, resolve_db_path
from core.store.migrations import CURRENT_VERSION


def test_new_store_is_current_and_empty(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.duckdb") as store:
        assert store.version == CURRENT_VERSION
        info = store.info()
    assert info["n_events"] == 0 and info["models"] == [] and info["first_event_at"] is None


def test_older_store_is_migrated_forward_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, path, target=1)
    con.execute("INSERT INTO sessions VALUES ('s', 'u', '2026-01-01', '2026-01-01', 1)")
    con.close()
    with pytest.raises(StoreVersionError, match="anomalyst migrate"):
        Store.open(path, read_only=True)
    with Store.open(path) as store:
        assert store.version == CURRENT_VERSION
        assert store.summary.count_sessions() == 1
        assert store.con.execute("SELECT count(*) FROM models").fetchall() == [(0,)]


def test_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    Store.open(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE schema_meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreVersionError, match="Upgrade Anomalyst"):
        Store.open(path)


def test_read_only_missing_store_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="anomalyst demo"):
        Store.open(tmp_path / "missing.duckdb", read_only=True)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    path.write_text("hello")
    with pytest.raises(StoreError, match="Could not open the store"):
        Store.open(path)


def test_db_path_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_DB", "/tmp/env.duckdb")
    assert resolve_db_path(None) == Path("/tmp/env.duckdb")
    assert resolve_db_path("x.duckdb") == Path("x.duckdb")


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time, duckdb
        con = duckdb.connect({str(path)!r})
        print("held", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_busy_store_waits_then_explains(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    Store.open(path).close()
    holder = _hold(path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(StoreBusyError, match=r"in use by another process \(process \d+\)"):
            Store.open(path, wait_s=1.0)
        assert time.monotonic() - start >= 1.0
    finally:
        holder.kill()
        holder.wait()


def test_busy_store_is_opened_once_released(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    Store.open(path).close()
    holder = _hold(path, 1.0)
    try:
        with Store.open(path, wait_s=20) as store:
            assert store.version == CURRENT_VERSION
    finally:
        holder.wait()


def test_failed_query_names_the_query() -> None:
    with Store.open(":memory:") as store:
        with pytest.raises(StoreError, match="Store query 'broken' failed"):
            store._execute("broken", "SELECT * FROM no_such_table")
