"""Damaged input files end in the house message naming the file, never a raw engine error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import IngestError
from core.ingest import ingest_events
from core.store import Store


def _parquet(path: Path, n: int = 2000) -> Path:
    frame = pd.DataFrame({
        "user_id": [f"u{i % 50}" for i in range(n)],
        "ts": pd.date_range("2026-01-01", periods=n, freq="min"),
        "event_type": ["view", "login", "purchase", "search"] * (n // 4),
        "text": [f"review number {i} " * 3 for i in range(n)],
    })
    pq.write_table(pa.Table.from_pandas(frame), path, compression="snappy")
    return path


def _damage_column(path: Path, column: str) -> Path:
    """Overwrite the middle of ``column``'s compressed data page with 0xFF bytes."""
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns)
                 if meta.column(i).path_in_schema == column)
    data = bytearray(path.read_bytes())
    middle = chunk.data_page_offset + chunk.total_compressed_size // 2
    data[middle:middle + 64] = b"\xff" * 64
    damaged = path.with_name(f"damaged_{path.name}")
    damaged.write_bytes(bytes(data))
    return damaged


def _counts(db: Path) -> list[tuple[int, int]]:
    with Store.open(db, read_only=True) as store:
        return store.con.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM ingests)").fetchall()


@pytest.mark.parametrize("column", ["ts", "user_id"])  # a bad snappy page, a bad varint
def test_a_corrupt_parquet_page_is_the_house_message(tmp_path: Path, column: str) -> None:
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        ingest_events(store, _parquet(tmp_path / "first.parquet", 40))
    before = _counts(db)
    damaged = _damage_column(_parquet(tmp_path / "e.parquet"), column)
    result = CliRunner().invoke(main, ["ingest", str(damaged), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {damaged}: could not be read as Parquet")
    assert "nothing was written" in result.output
    assert "Traceback" not in result.output and "_duckdb" not in result.output
    assert _counts(db) == before


def test_the_core_raises_ingest_error_naming_the_damaged_source(tmp_path: Path) -> None:
    good = _parquet(tmp_path / "good.parquet")
    damaged = _damage_column(_parquet(tmp_path / "e.parquet"), "event_type")
    with Store.open(":memory:") as store, pytest.raises(IngestError) as caught:
        ingest_events(store, [good, damaged])
    assert str(caught.value).startswith(f"{damaged}: could not be read as Parquet")


def test_a_column_name_that_is_not_utf8_is_the_house_message(tmp_path: Path) -> None:
    """Found by the fuzz: a damaged footer whose column name is not UTF-8 failed in DESCRIBE."""
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"ts": ["2026-01-01"]}), path)
    data = path.read_bytes()
    assert b"\x18\x02ts" in data
    path.write_bytes(data.replace(b"\x18\x02ts", b"\x18\x02\xf4s", 1))
    with Store.open(":memory:") as store, pytest.raises(IngestError) as caught:
        ingest_events(store, path)
    assert str(caught.value).startswith(f"{path}: could not be read as Parquet")


def test_a_corrupt_parquet_labels_file_is_the_house_message(tmp_path: Path) -> None:
    n = 2000
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"session_id": [f"session number {i}" for i in range(n)],
                             "is_anomaly": [i % 2 for i in range(n)],
                             "scenario": [f"scenario {i % 7}" for i in range(n)]}), path,
                   compression="snappy")
    damaged = _damage_column(path, "is_anomaly")  # read only when the labels are staged
    result = CliRunner().invoke(main, ["ingest-labels", str(damaged), "--db",
                                       str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {damaged}: could not be read as Parquet")
