"""The JSON bundle: one UTF-8 JSON file with the report's content and the user's events as CSV.

One file rather than a zip, so it can be read with any JSON tool and diffed; the events travel
as a CSV string (``events_csv``) because that is what analysts load into other tools. Loading a
bundle gives back exactly what was written (``load_case_bundle(p) == json content``), and
:func:`bundle_events` turns the CSV back into a typed DataFrame.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from core.csv_safe import csv_text, restore_cell
from core.errors import ConfigError
from core.reports.content import REPORT_FORMAT, CaseReport

EVENT_DTYPES = {"event_id": "string", "session_id": "string", "event_type": "string",
                "item_id": "string", "category": "string", "amount": "float64",
                "quantity": "Int64", "device_id": "string", "ip": "string",
                "country": "string", "payment_id": "string", "text": "string",
                "event_score": "float64", "in_case": "bool"}


def bundle_dict(report: CaseReport) -> dict[str, Any]:
    """The content plus ``events_csv`` (the user's events, ISO times, UTF-8)."""
    events = report.events.copy()
    events["ts"] = pd.to_datetime(events["ts"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    # Cells a spreadsheet would run get a leading quote (core.csv_safe); bundle_events undoes it.
    return {**report.content, "events_csv": csv_text(events, lineterminator="\n")}


def render_json(report: CaseReport) -> str:
    return json.dumps(bundle_dict(report), ensure_ascii=False, indent=1, sort_keys=True)


def load_case_bundle(path: str | Path) -> dict[str, Any]:
    """Read a bundle written by ``export_case_report(..., fmt="json")``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"case bundle must be a readable JSON file, got {path} ({exc}). "
                          "Export it again with `anomalyst report CASE --format json`.") from exc
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ConfigError(f"case bundle must have format {REPORT_FORMAT!r}, got "
                          f"{data.get('format') if isinstance(data, dict) else type(data)}. "
                          "Pick a file written by `anomalyst report`.")
    return data


def bundle_events(bundle: dict[str, Any]) -> pd.DataFrame:
    """The bundle's events as a typed DataFrame (``ts`` as UTC-naive timestamps)."""
    frame = pd.read_csv(io.StringIO(bundle["events_csv"]), keep_default_na=True,
                        dtype={k: v for k, v in EVENT_DTYPES.items() if k != "in_case"})
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(restore_cell, na_action="ignore")
    frame["ts"] = pd.to_datetime(frame["ts"], format="%Y-%m-%dT%H:%M:%S.%f")
    if "in_case" in frame:
        frame["in_case"] = frame["in_case"].astype(bool)
    return frame
