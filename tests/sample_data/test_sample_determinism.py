from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

import sample_data
from sample_data import GeneratedData, GeneratorConfig


def _bytes(paths: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in paths.items()}


def test_same_seed_same_bytes(small: GeneratedData, tmp_path: Path) -> None:
    first = _bytes(sample_data.write(small, tmp_path / "a"))
    again = _bytes(sample_data.write(sample_data.generate(small.config), tmp_path / "b"))
    assert set(first) == {"events", "labels", "users"}
    assert first == again


def test_different_seed_different_bytes(small: GeneratedData, tmp_path: Path) -> None:
    config = small.config
    other = sample_data.generate(GeneratorConfig(users=config.users, days=config.days, seed=12))
    a = _bytes(sample_data.write(small, tmp_path / "a"))
    b = _bytes(sample_data.write(other, tmp_path / "b"))
    assert a["events"] != b["events"]
    assert a["labels"] != b["labels"]


def test_written_files_read_back_equal(small: GeneratedData, tmp_path: Path) -> None:
    paths = sample_data.write(small, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.parquet", "labels.parquet", "users.parquet"]
    events = pd.read_parquet(paths["events"])
    pd.testing.assert_frame_equal(events, small.events)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["labels"]), small.labels)
    assert pq.ParquetFile(paths["events"]).metadata.num_rows == len(small.events)
