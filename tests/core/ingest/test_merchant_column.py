"""merchant_id: mapped by its aliases, stored, and absent from the id hash when NULL, so the
ids of rows without it (and re-ingests of old files) are unchanged; migration 12 adds it to
an older store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.ingest import ingest_events
from core.ingest.mapping import suggest_mapping
from core.store import Store
from core.store.connection import migrate
from core.store.migrations import CURRENT_VERSION

# The content hash as it was before merchant_id existed (every canonical column but the id,
# in storage order, joined by the unit separator), taken before sessionizing (these files
# carry no session id, so it hashed as empty).
_OLD_COLUMNS = ("user_id", "session_id", "ts", "event_type", "item_id", "category", "amount",
                "quantity", "device_id", "ip", "country", "user_agent", "payment_id", "text")
_OLD_HASH = "md5(concat_ws(chr(31), {}))".format(
    ", ".join(f"coalesce(CAST({'NULL' if c == 'session_id' else c} AS VARCHAR), '')"
              for c in _OLD_COLUMNS))


def _frame(with_terminal: bool) -> pd.DataFrame:
    data = {"user_id": ["u1", "u1", "u2"],
            "ts": ["2026-01-01T10:00:00", "2026-01-01T10:01:00", "2026-01-01T11:00:00"],
            "event_type": ["payment", "payment", "payment"], "amount": [10.0, 12.5, 3.0]}
    if with_terminal:
        data["terminal_id"] = ["t1", None, "t2"]
    return pd.DataFrame(data)


def test_aliases_map_to_merchant_id() -> None:
    for name in ("terminal_id", "merchant", "shop_id", "seller_id", "MERCHANT_ID"):
        assert suggest_mapping(["user_id", "ts", name])["merchant_id"] == name


def test_round_trip_and_unchanged_ids(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, _frame(False))
        ids_without = store.con.execute(
            f"SELECT event_id, {_OLD_HASH} FROM events ORDER BY ts").fetchall()
        # rows without merchant_id keep the id the old hash gave them
        assert all(eid == old for eid, old in ids_without)
        report = ingest_events(store, _frame(False))
        assert report.n_added == 0  # re-ingesting an old file is a no-op

    with Store.open(tmp_path / "t.duckdb") as store:
        report = ingest_events(store, _frame(True))
        assert report.n_added == 3
        rows = store.con.execute(
            f"SELECT merchant_id, event_id = {_OLD_HASH} FROM events ORDER BY ts").fetchall()
        # stored; the row with a merchant hashes it in, the one without keeps the old id
        assert rows == [("t1", False), (None, True), ("t2", False)]
        assert ingest_events(store, _frame(True)).n_added == 0


def test_migration_12_adds_the_column_to_an_older_store(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        ingest_events(store, _frame(False))
        before = sorted(r[0] for r in store.con.execute("SELECT event_id FROM events").fetchall())
        store.con.execute("ALTER TABLE events DROP COLUMN merchant_id")  # as version 11 wrote it
        store.con.execute("UPDATE schema_meta SET value = '11' WHERE key = 'schema_version'")
        assert migrate(store.con, path) == CURRENT_VERSION
        columns = [r[0] for r in store.con.execute("DESCRIBE events").fetchall()]
        assert columns[-3:] == ["extra", "ingest_id", "merchant_id"]  # appended by ALTER
        # inserts name their columns, so the migrated store takes new rows of either kind
        assert ingest_events(store, _frame(False)).n_added == 0
        assert ingest_events(store, _frame(True)).n_added == 2  # the two rows with a terminal
        got = store.con.execute(
            "SELECT merchant_id FROM events WHERE merchant_id IS NOT NULL ORDER BY ts").fetchall()
        assert got == [("t1",), ("t2",)]
        after = {r[0] for r in store.con.execute("SELECT event_id FROM events").fetchall()}
        assert set(before) <= after
