"""Saved operating thresholds, one per (model, segment)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

_FOR_MODEL = """
    SELECT segment, threshold, set_by, set_at FROM thresholds WHERE model_id = $model_id
    ORDER BY segment
"""
_SAVE = """
    INSERT OR REPLACE INTO thresholds VALUES ($model_id, $segment, $threshold, $set_by, $set_at)
"""
_DELETE = "DELETE FROM thresholds WHERE model_id = $model_id AND segment = $segment"


class Thresholds:
    """The ``thresholds`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def for_model(self, model_id: str) -> pd.DataFrame:
        """segment, threshold, set_by, set_at of ``model_id``, by segment."""
        return self._store._frame("thresholds_for_model", _FOR_MODEL, {"model_id": model_id})

    def saved(self, model_id: str) -> dict[str, float]:
        """segment -> the threshold saved for ``model_id``."""
        rows = self._store._rows("thresholds_for_model", _FOR_MODEL, {"model_id": model_id})
        return {str(segment): float(threshold) for segment, threshold, *_ in rows}

    def save(self, model_id: str, segment: str, threshold: float, *, set_by: str,
             set_at: dt.datetime) -> None:
        self._store._execute("save_threshold", _SAVE, {
            "model_id": model_id, "segment": segment, "threshold": float(threshold),
            "set_by": set_by, "set_at": set_at})

    def delete(self, model_id: str, segment: str) -> None:
        self._store._execute("delete_threshold", _DELETE,
                             {"model_id": model_id, "segment": segment})
