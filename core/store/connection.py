"""Opening a DuckDB file: where it lives, waiting for other processes, and migrations.

DuckDB allows one writing process per file, and while a writer holds it no other process can
open it at all. Every Anomalyst process therefore holds the file only for the work at hand and
the opener waits, with back-off, for a bounded time before it explains who holds the file.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import duckdb

from core.errors import StoreBusyError, StoreError, StoreVersionError
from core.files import make_private, private_dir
from core.store.migrations import CURRENT_VERSION, MIGRATIONS

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = Path("data") / "anomalyst.duckdb"
DB_ENV_VAR = "ANOMALYST_DB"
DEFAULT_WAIT_S = 30.0

_LOCK_PATTERN = re.compile(r"(Could not set lock|Conflicting lock)", re.IGNORECASE)
_PID_PATTERN = re.compile(r"PID (\d+)")


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The store path: the argument, else ``$ANOMALYST_DB``, else ``data/anomalyst.duckdb``."""
    if path is not None and str(path) != "":
        return Path(path)
    env = os.environ.get(DB_ENV_VAR)
    return Path(env) if env else DEFAULT_DB_PATH


def connect_with_retry(
    path: Path, *, read_only: bool, wait_s: float = DEFAULT_WAIT_S
) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying while another process holds its lock, for up to ``wait_s``."""
    if read_only and not path.exists():
        raise StoreError(
            f"No store at {path}. Create one with `anomalyst ingest FILE --db {path}` "
            "or `anomalyst demo`."
        )
    if not read_only:
        private_dir(path.parent)  # folders it creates are 0700; existing ones are left
    deadline = time.monotonic() + max(wait_s, 0.0)
    delay = 0.05
    announced = False
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            if not read_only:  # the store and its WAL are the owner's alone
                for part in (path, Path(f"{path}.wal")):
                    make_private(part)
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")  # the CLI and dashboard show their own
            return con
        except duckdb.IOException as exc:
            message = str(exc)
            if not _LOCK_PATTERN.search(message):
                raise StoreError(
                    f"Could not open the store {path}: {message.splitlines()[0]}. "
                    "Check that the path is a DuckDB file you can read and write."
                ) from exc
            if time.monotonic() >= deadline:
                pid = _PID_PATTERN.search(message)
                holder = f" (process {pid.group(1)})" if pid else ""
                raise StoreBusyError(
                    f"The store {path} is in use by another process{holder} and stayed busy "
                    f"for {wait_s:.0f} s. Wait for that command to finish or stop the dashboard "
                    "that has it open, then run this again (or pass a longer --wait)."
                ) from exc
            if not announced:
                log.warning("Store %s is busy; waiting up to %.0f s for it.", path, wait_s)
                announced = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            raise StoreError(
                f"Could not open the store {path}: {str(exc).splitlines()[0]}. "
                "The file may not be a DuckDB database; point --db at another path."
            ) from exc


def stored_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version recorded in the store, 0 for an empty file."""
    has_meta = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_meta'"
    ).fetchall()[0][0]
    if not has_meta:
        return 0
    rows = con.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def migrate(con: duckdb.DuckDBPyConnection, path: Path, *, target: int = CURRENT_VERSION) -> int:
    """Apply every migration after the stored version up to ``target``, in one transaction."""
    version = stored_version(con)
    if version > CURRENT_VERSION:
        raise StoreVersionError(
            f"The store {path} has schema version {version}, newer than this Anomalyst "
            f"understands ({CURRENT_VERSION}). Upgrade Anomalyst to open it."
        )
    pending = [m for m in MIGRATIONS if version < m.version <= target]
    if not pending:
        return version
    con.execute("BEGIN TRANSACTION")
    try:
        for migration in pending:
            log.info("Migrating %s to v%d: %s", path, migration.version, migration.description)
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)",
                [str(migration.version)],
            )
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise StoreError(
            f"Migrating the store {path} from version {version} failed: {exc}. "
            "The store is unchanged; report this with the file's version."
        ) from exc
    return pending[-1].version


def check_readable_version(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A read-only opener cannot migrate: say what to run when the store is not current."""
    version = stored_version(con)
    if version == CURRENT_VERSION:
        return
    if version > CURRENT_VERSION:
        raise StoreVersionError(
            f"The store {path} has schema version {version}, newer than this Anomalyst "
            f"understands ({CURRENT_VERSION}). Upgrade Anomalyst to open it."
        )
    raise StoreVersionError(
        f"The store {path} is at schema version {version} and needs version {CURRENT_VERSION}. "
        f"Run `anomalyst migrate --db {path}` once (it keeps all data), then retry."
    )
