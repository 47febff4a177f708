"""Reading a CSV, Parquet file or DataFrame into a DuckDB temp table, with clear failures."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import duckdb
import pandas as pd

from core.errors import IngestError
from core.store import Store

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
PARQUET_SUFFIXES = {".parquet", ".pq"}
SUPPORTED = ", ".join(sorted([*CSV_SUFFIXES, *PARQUET_SUFFIXES]))

EventSource: TypeAlias = str | os.PathLike[str] | pd.DataFrame


@dataclass(frozen=True)
class RawSource:
    """A source loaded as temp table ``table`` whose ``rowid`` is the source's row order."""

    label: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)
    n_rows: int
    is_csv: bool
    kind: str = "TABLE"  # TABLE, or VIEW for Parquet (read in place; ``rowid`` from the file)

    def row_label(self, row: int) -> str:
        """How a person finds row ``row`` (0-based) in the source."""
        return f"line {row + 2}" if self.is_csv else f"row {row + 1}"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


def source_label(source: EventSource) -> str:
    return "DataFrame" if isinstance(source, pd.DataFrame) else str(source)


def load_source(
    store: Store, source: EventSource, index: int, *, encoding: str = "utf-8"
) -> RawSource:
    """Load ``source`` into temp table ``_raw_{index}``. Raises IngestError, never a raw error."""
    table = f"_raw_{index}"
    label = source_label(source)
    is_csv = False
    kind = "TABLE"
    if isinstance(source, pd.DataFrame):
        if source.columns.duplicated().any():
            raise IngestError(f"{label}: column names must be unique; rename the duplicates.")
        frame = source.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        try:
            store.ingests.load_frame(table, frame)
        except duckdb.Error as exc:
            raise IngestError(
                f"{label}: could not read the DataFrame ({_first_line(exc)}). Convert object "
                "columns holding mixed Python types to strings first."
            ) from exc
    else:
        path = Path(source)
        _check_file(path)
        suffix = path.suffix.lower()
        if suffix in CSV_SUFFIXES:
            _check_text_encoding(path, encoding)
            is_csv = True
        elif suffix not in PARQUET_SUFFIXES:
            raise IngestError(
                f"{path}: files must be one of {SUPPORTED}, got {suffix or 'no extension'}. "
                "Convert the file or rename it to its real format."
            )
        try:
            if is_csv:
                store.ingests.load_csv(table, str(path), delimiter=CSV_SUFFIXES[suffix],
                                       encoding=encoding)
            else:  # Parquet is read in place: no copy, its own row numbers stand for rowid
                kind = "VIEW"
                store.ingests.view_parquet(table, str(path))
        except duckdb.Error as exc:
            raise IngestError(_read_failure(path, exc, is_csv, encoding)) from exc
    view_or_table = kind
    try:  # a damaged file may fail only here (a column name that is not UTF-8, a bad footer)
        columns = store.ingests.columns_of(table)
        n_rows = store.ingests.count_rows(table)
    except duckdb.Error as exc:
        if isinstance(source, pd.DataFrame):
            raise IngestError(f"{label}: could not be read ({_first_line(exc)}). Convert "
                              "its columns to plain strings and numbers first.") from exc
        raise IngestError(_read_failure(Path(source), exc, is_csv, encoding)) from exc
    if n_rows == 0:
        raise IngestError(
            f"{label}: has a header but no data rows. Export the file again with its rows, "
            "or leave it out of this ingest."
        )
    return RawSource(label, table, columns, n_rows, is_csv, view_or_table)


def unreadable_source_message(store: Store, raws: list[RawSource], exc: duckdb.Error) -> str:
    """The house message for a read that failed after loading: Parquet is read in place, so a
    bad page (snappy, Thrift, offsets) surfaces only when its rows are read. Names the source
    whose full read fails (each is re-read to find it), else every source."""
    culprit = next((r for r in raws if r.kind == "VIEW" and r.label in str(exc)), None)
    if culprit is None:
        for raw in raws:
            try:  # one aggregate per column: every page of every column is decoded
                store.ingests.read_whole(raw.table)
            except duckdb.Error:
                culprit = raw
                break
    if culprit is not None and culprit.kind == "VIEW":
        return _parquet_message(culprit.label, exc)
    label = culprit.label if culprit is not None else None
    return (
        f"{label or '; '.join(r.label for r in raws)}: could not be read "
        f"({_short_cause(exc, label)}); nothing was written. Check that the file is complete "
        "and export it again."
    )


def _short_cause(exc: BaseException, label: str | None) -> str:
    """The engine's first line without its class prefix or the file's path (named already)."""
    cause = re.sub(r"^[A-Za-z ]*Error: ", "", _first_line(exc))
    cause = re.sub(r'Failed to read file "[^"]*": ', "", cause)
    if label is not None:
        cause = cause.replace(f'"{label}"', "the file").replace(label, "the file")
    return cause[:200]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise IngestError(f"{path}: no such file. Check the path and try again.")
    if not path.is_file():
        raise IngestError(f"{path}: is not a file. Pass CSV or Parquet files, not folders.")
    if not os.access(path, os.R_OK):
        raise IngestError(f"{path}: cannot be read (permission denied). Fix its permissions.")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty. Export it again with a header and rows.")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# DuckDB's CSV reader holds one whole line at a time and stops at this many bytes.
CSV_MAX_LINE_BYTES = 2_000_000
_WIDE_ENCODINGS = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


def _check_text_encoding(path: Path, encoding: str) -> None:
    """UTF-16/32 text read as UTF-8 fails in confusing ways (no field matches the header):
    say what the file is before reading it."""
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return
    with path.open("rb") as handle:
        head = handle.read(4096)
    wide = next((name for bom, name in _WIDE_ENCODINGS.items() if head.startswith(bom)), None)
    if wide is None and head.count(b"\0") > len(head) // 4:
        wide = "utf-16"  # every other byte NUL: UTF-16 without a byte-order mark
    if wide is not None:
        raise IngestError(
            f"{path}: the file is {wide.upper()} text (a byte-order mark or NUL bytes between "
            f"the characters), not UTF-8. Pass --encoding {wide}, or re-save it as UTF-8. "
            "Nothing was written."
        )


def _first_long_line(path: Path, limit: int) -> tuple[int, int] | None:
    """(line number, length in bytes) of the first line longer than ``limit``."""
    number, length = 1, 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                start = 0
                while (end := chunk.find(b"\n", start)) != -1:
                    length += end - start
                    if length > limit:
                        return number, length
                    number, length, start = number + 1, 0, end + 1
                length += len(chunk) - start
            return (number, length) if length > limit else None
    except OSError:
        return None


def _line_limit_message(path: Path, exc: duckdb.Error) -> str:
    found = _first_long_line(path, CSV_MAX_LINE_BYTES)
    if found:
        what = "the header" if found[0] == 1 else "a row"
        where = f"line {found[0]} ({what}) is {found[1]:,} bytes long"
    else:
        where = "a line is longer than the reader can hold"
    return (
        f"{path}: {where}, over the CSV reader's limit of {CSV_MAX_LINE_BYTES:,} bytes per "
        "line. Event data has no lines that long: it is usually a multi-megabyte field or a "
        "header of hundreds of thousands of columns. Nothing was written. --skip-bad-rows "
        "cannot skip it: the reader must hold a whole line to find where the next row "
        "starts, so it stops before any row is read. Remove or shorten that line."
    )


def _read_failure(path: Path, exc: duckdb.Error, is_csv: bool, encoding: str) -> str:
    message = str(exc)
    if is_csv and re.search(r"maximum line size of \d+ bytes exceeded", message, re.I):
        return _line_limit_message(path, exc)
    if is_csv and "invalid unicode" in message.lower():
        return (
            f"{path}: the file is not valid {encoding} text ({_first_line(exc)}). It may mix "
            "encodings. Re-save it as UTF-8, or pass --encoding latin-1 (or utf-16) if that is "
            "what it is."
        )
    if is_csv:
        ragged = _first_ragged_line(path, CSV_SUFFIXES[path.suffix.lower()], encoding)
        where = (
            f" Line {ragged[0]} has {ragged[1]} fields, the header {ragged[2]}." if ragged else ""
        )
        return (
            f"{path}: could not be parsed as CSV ({_first_line(exc)}).{where} Every row must "
            "have as many fields as the header, separated by ',' (tabs for .tsv), with text "
            'that holds the separator quoted by ". Fix those rows and ingest again.'
        )
    return _parquet_message(str(path), exc)


def _parquet_message(label: str, exc: BaseException) -> str:
    return (
        f"{label}: could not be read as Parquet ({_short_cause(exc, label)}). The file is "
        "damaged, truncated or not Parquet; nothing was written. Export it again."
    )


def _first_ragged_line(path: Path, delim: str, encoding: str) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first row whose width differs from the header."""
    import csv

    try:
        with path.open(newline="", encoding=encoding, errors="replace") as handle:
            reader = csv.reader(handle, delimiter=delim)
            header = next(reader, [])
            for row in reader:
                if len(row) != len(header):
                    return reader.line_num, len(row), len(header)
    except (OSError, csv.Error, LookupError):
        return None
    return None
