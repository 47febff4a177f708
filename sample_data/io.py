"""Deterministic Parquet output: same data, same bytes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import ConfigError
from sample_data.generator import GeneratedData

ROW_GROUP_SIZE = 1_000_000
# Fixed writer options: nothing here depends on the clock or the machine.
WRITE_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
}


def write(data: GeneratedData, out_dir: str | Path) -> dict[str, Path]:
    """Write events.parquet, labels.parquet and users.parquet into ``out_dir`` (created if
    needed); returns the paths by name ('events', 'labels', 'users')."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"out must be a folder, got the file {out}. Pass a folder path (it is created)."
        )
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (("events", data.events), ("labels", data.labels),
                        ("users", data.users)):
        path = out / f"{name}.parquet"
        write_frame(frame, path)
        paths[name] = path
    return paths


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """One DataFrame to Parquet with fixed options and no index."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=ROW_GROUP_SIZE, **WRITE_OPTIONS)
