"""Plain JSON values from what pandas, numpy and DuckDB hand over: one rule for every writer.

    >>> json_safe({"n": np.int64(3), "x": float("nan"), "at": pd.Timestamp("2026-09-01")})
    {'n': 3, 'x': None, 'at': '2026-09-01T00:00:00'}

Used by the case reports, explanations, the store's summary and the CLI's JSON output.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars unwrapped, NaN/inf/NaT/NA as None, times as ISO strings,
    tuples and arrays as lists and dict keys as strings (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in value]
    if value is pd.NaT or value is pd.NA:  # NaT is a datetime: test it before the times
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    return value


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as JSON-safe dicts."""
    return json_safe(frame.to_dict(orient="records"))


def json_object(value: Any) -> dict[str, Any]:
    """A stored JSON object (text, or already a dict) as a dict; {} for anything else."""
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}
