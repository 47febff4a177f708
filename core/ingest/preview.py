"""A first look at an uploaded file: its columns and first rows, read as text, never failing
with a raw library error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import IngestError
from core.ingest.sources import CSV_SUFFIXES, PARQUET_SUFFIXES, SUPPORTED


def preview_file(path: str | Path, n_rows: int = 20, encoding: str = "utf-8") -> pd.DataFrame:
    """The first ``n_rows`` rows of a CSV or Parquet file, every value as text."""
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            return pd.read_csv(file, nrows=n_rows, dtype=str, keep_default_na=False,
                               sep=CSV_SUFFIXES[suffix], encoding=encoding,
                               on_bad_lines="skip", engine="python")
        if suffix in PARQUET_SUFFIXES:
            reader = pq.ParquetFile(file)
            batch = next(reader.iter_batches(batch_size=n_rows), None)
            if batch is None:
                return pd.DataFrame(columns=reader.schema_arrow.names)
            return pa.Table.from_batches([batch]).to_pandas().astype(str)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError,
            pa.ArrowException) as exc:
        raise IngestError(
            f"{file.name} must be a readable {suffix.lstrip('.').upper()} file, got an error: "
            f"{exc}. Check the file (encoding, delimiter, not truncated) and upload it again."
        ) from exc
    raise IngestError(f"{file.name} must be one of {SUPPORTED}, got {suffix or 'no suffix'}.")
