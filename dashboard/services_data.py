"""Uploads: size checks, a private temporary copy (removed as soon as it has been read, in
``finally``), then the same ingest the CLI runs."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from core.app import IngestError
from core.app import data as app_data
from core.app.data import EVENT_COLUMN_NAMES, REQUIRED_EVENT_COLUMNS, REQUIRED_IN_SOURCE
from dashboard import upload_guard
from dashboard.services import forget_reads, with_store

if TYPE_CHECKING:
    from core.app.data import IngestReport

__all__ = ["EVENT_COLUMN_NAMES", "REQUIRED_EVENT_COLUMNS", "REQUIRED_IN_SOURCE",
           "suggest_mapping"]

MAX_UPLOAD_MB = upload_guard.MAX_UPLOAD_MB  # = server.maxUploadSize (.streamlit/config.toml)
ALLOWED_SUFFIXES = tuple(sorted({*app_data.CSV_SUFFIXES, *app_data.PARQUET_SUFFIXES}))


@dataclass(frozen=True)
class StagedUpload:
    """An uploaded file copied to a private temporary folder under a safe name."""

    name: str
    path: Path
    size_mb: float


@dataclass(frozen=True)
class UploadPreview:
    """What the page shows of an upload before it is ingested."""

    name: str
    size_mb: float
    head: pd.DataFrame


@contextmanager
def staged_upload(name: str, data: bytes) -> Iterator[StagedUpload]:
    """Check the upload's size and type, copy it where ingest can read it, and remove the
    copy (its folder, with any rejected-rows file) when the block ends, however it ends."""
    size_mb = len(data) / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise IngestError(
            f"an upload must be at most {MAX_UPLOAD_MB} MB, got {size_mb:,.0f} MB. Split the "
            "file, or ingest it from the command line: `anomalyst ingest FILE`."
        )
    if not data:
        raise IngestError(f"{name} must contain data, got an empty file. Upload another file.")
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise IngestError(
            f"an upload must be one of {', '.join(ALLOWED_SUFFIXES)}, got {suffix or 'no suffix'}"
            f" ({name}). Export the data as CSV or Parquet."
        )
    # Never use the uploaded name as a path: keep letters, digits, dot, dash and underscore.
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).stem)[:80] or "upload"
    folder = Path(tempfile.mkdtemp(prefix="anomalyst-upload-"))
    try:
        path = folder / f"{safe}{suffix}"
        path.write_bytes(data)
        yield StagedUpload(name, path, size_mb)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def preview(name: str, data: bytes) -> UploadPreview:
    """The first rows of an upload (staged for the read, then removed)."""
    with staged_upload(name, data) as staged:
        return UploadPreview(name, staged.size_mb, app_data.preview_file(staged.path))


def ingest_upload(name: str, data: bytes, mapping: dict[str, str], *, gap_minutes: float,
                  skip_bad_rows: bool, unit: str = "session", labels_column: str | None = None,
                  sequence_column: str | None = None) -> tuple[IngestReport, list[bytes]]:
    """Ingest events (admin only, checked on the server) and drop cached reads. Returns the
    report and the contents of its rejected-rows files (read before the staging is removed)."""
    explicit = app_data.ColumnMapping({k: v for k, v in mapping.items() if v})
    with staged_upload(name, data) as staged:
        report = with_store(
            lambda store: app_data.ingest_events(store, staged.path, mapping=explicit,
                                        session_gap_minutes=gap_minutes,
                                        skip_bad_rows=skip_bad_rows,
                                        rejected_dir=staged.path.parent, unit=unit,
                                        labels_column=labels_column or None,
                                        sequence_column=sequence_column or None),
            write=True, action="ingest",
        )
        rejected = [Path(p).read_bytes() for p in report.rejected_files]
    forget_reads()
    return named_as_uploaded(report, str(staged.path), name), rejected


def named_as_uploaded(report: IngestReport, staged: str, name: str) -> IngestReport:
    """``report`` with the staged copy's server path replaced by the upload's own name (the
    analyst uploaded ``traces.csv``, not a temporary folder)."""
    import dataclasses

    def named(text: str) -> str:
        return text.replace(staged, name)

    return dataclasses.replace(report, sources=[named(s) for s in report.sources],
                               notes=[named(n) for n in report.notes],
                               rejected_files=[])


def ingest_label_upload(name: str, data: bytes) -> IngestReport:
    with staged_upload(name, data) as staged:
        report = with_store(lambda store: app_data.ingest_labels(store, staged.path), write=True,
                            action="ingest")
    forget_reads()
    return named_as_uploaded(report, str(staged.path), name)


def required_columns(*, by_event: bool, by_sequence: bool = False) -> tuple[str, ...]:
    """The columns an upload must map (by event, user_id is optional; none for sequences)."""
    return app_data.required_columns(by_event=by_event, by_sequence=by_sequence)


def sequence_like_columns(head: pd.DataFrame) -> list[str]:
    """The preview's columns that list each row's events (offered as its sequence column)."""
    return app_data.sequence_like_columns(head)


def label_like_columns(columns: list[str]) -> list[str]:
    """The upload's columns named like labels (offered as its labels column)."""
    return app_data.label_like_columns(columns)


def suggest_mapping(columns: list[str]) -> dict[str, str]:
    """canonical column -> the upload's column that looks like it (name or common alias)."""
    return dict(app_data.suggest_mapping(columns))


def score_new_sessions() -> list[str]:
    """Score the sessions each detector's latest model has not scored yet (admin only)."""
    from core.app import models

    lines = with_store(models.score_new, write=True, action="ingest")
    forget_reads()
    return lines
