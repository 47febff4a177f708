"""Bringing data into the store: events and labels from CSV, Parquet or DataFrames."""

from __future__ import annotations

from core.ingest.events import ingest_events
from core.ingest.mapping import ColumnMapping, suggest_mapping
from core.ingest.preview import preview_file
from core.ingest.report import IngestReport

__all__ = ["ColumnMapping", "IngestReport", "ingest_events", "preview_file", "suggest_mapping"]
