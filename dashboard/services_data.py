"""Uploads: size checks, a private temporary copy, then the same ingest the CLI runs."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import IngestError
from core.ingest import ColumnMapping, IngestReport, ingest_events, preview_file
from core.ingest.labels import ingest_labels
from core.ingest.sources import CSV_SUFFIXES, PARQUET_SUFFIXES
from dashboard.services import with_store

MAX_UPLOAD_MB = 200  # the same as server.maxUploadSize in .streamlit/config.toml
ALLOWED_SUFFIXES = tuple(sorted({*CSV_SUFFIXES, *PARQUET_SUFFIXES}))


@dataclass(frozen=True)
class StagedUpload:
    """An uploaded file copied to a private temporary folder under a safe name."""

    name: str
    path: Path
    size_mb: float


def stage_upload(name: str, data: bytes) -> StagedUpload:
    """Check the upload's size and type, and copy it where ingest can read it."""
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
    path = folder / f"{safe}{suffix}"
    path.write_bytes(data)
    return StagedUpload(name, path, size_mb)


def preview(staged: StagedUpload) -> pd.DataFrame:
    return preview_file(staged.path)


def ingest_upload(staged: StagedUpload, mapping: dict[str, str], *, gap_minutes: float,
                  skip_bad_rows: bool) -> IngestReport:
    """Ingest events (admin only, checked on the server) and drop cached reads."""
    explicit = ColumnMapping({k: v for k, v in mapping.items() if v})
    report = with_store(
        lambda store: ingest_events(store, staged.path, mapping=explicit,
                                    session_gap_minutes=gap_minutes,
                                    skip_bad_rows=skip_bad_rows,
                                    rejected_dir=staged.path.parent),
        write=True, action="ingest",
    )
    st.cache_data.clear()
    return report


def ingest_label_upload(staged: StagedUpload) -> IngestReport:
    report = with_store(lambda store: ingest_labels(store, staged.path), write=True,
                        action="ingest")
    st.cache_data.clear()
    return report


def score_new_sessions() -> list[str]:
    """Score the sessions each detector's latest model has not scored yet (admin only)."""
    from core.pipeline import score_model

    def run(store) -> list[str]:
        latest = store.frame("model_list").groupby("detector")["model_id"].last()
        ids = [m for d, m in latest.items() if d != "ensemble"]
        ids += [m for d, m in latest.items() if d == "ensemble"]  # after their members
        lines = []
        for model_id in ids:
            result = score_model(store, model_id, only_new=True)
            lines.append(f"{model_id}: {result.n_sessions:,} new sessions scored")
        return lines

    lines = with_store(run, write=True, action="ingest")
    st.cache_data.clear()
    return lines
