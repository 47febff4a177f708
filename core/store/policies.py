"""The alert policy's published versions (``policies``) and analysts' saved views."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

_LATEST = """
    SELECT version, model_id, detector, thresholds, daily_budget, published_by, published_at,
           note
    FROM policies ORDER BY version DESC LIMIT 1
"""
_VERSION = """
    SELECT version, model_id, detector, thresholds, daily_budget, published_by, published_at,
           note
    FROM policies WHERE version = $version
"""
_HISTORY = """
    SELECT version, model_id, detector, thresholds, daily_budget, published_by, published_at,
           note
    FROM policies ORDER BY version DESC
"""
_NEXT_VERSION = "SELECT coalesce(max(version), 0) + 1 FROM policies"
_INSERT = """
    INSERT INTO policies VALUES ($version, $model_id, $detector, $thresholds, $daily_budget,
                                 $published_by, $published_at, $note)
"""
_VIEWS = """
    SELECT name, params, saved_at FROM saved_views
    WHERE analyst = $analyst AND page = $page ORDER BY name
"""
_SAVE_VIEW = """
    INSERT OR REPLACE INTO saved_views VALUES ($analyst, $page, $name, $params, $saved_at)
"""
_DELETE_VIEW = """
    DELETE FROM saved_views WHERE analyst = $analyst AND page = $page AND name = $name
"""


@dataclass(frozen=True)
class PolicyRow:
    """One published policy version, as stored."""

    version: int
    model_id: str
    detector: str | None
    thresholds: dict[str, float]
    daily_budget: int | None
    published_by: str
    published_at: dt.datetime
    note: str


def _row(values: tuple[Any, ...]) -> PolicyRow:
    version, model_id, detector, thresholds, budget, by, at, note = values
    return PolicyRow(int(version), str(model_id), detector, {
        str(k): float(v) for k, v in json.loads(thresholds).items()},
        None if budget is None else int(budget), str(by), at, str(note))


class Policies:
    """The ``policies`` table: append-only, one row per published version."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def latest(self) -> PolicyRow | None:
        rows = self._store._rows("policy_latest", _LATEST)
        return _row(rows[0]) if rows else None

    def version(self, version: int) -> PolicyRow | None:
        rows = self._store._rows("policy_version", _VERSION, {"version": int(version)})
        return _row(rows[0]) if rows else None

    def history(self) -> list[PolicyRow]:
        """Every published version, newest first."""
        return [_row(r) for r in self._store._rows("policy_history", _HISTORY)]

    def publish(self, *, model_id: str, detector: str | None, thresholds: dict[str, float],
                daily_budget: int | None, published_by: str, published_at: dt.datetime,
                note: str) -> int:
        """Append the next version and return its number (call inside a transaction)."""
        version = int(self._store._scalar("policy_next_version", _NEXT_VERSION))
        self._store._execute("policy_insert", _INSERT, {
            "version": version, "model_id": model_id, "detector": detector,
            "thresholds": json.dumps({k: float(v) for k, v in sorted(thresholds.items())}),
            "daily_budget": daily_budget, "published_by": published_by,
            "published_at": published_at, "note": note})
        return version


class SavedViews:
    """Analysts' named filter sets, per page (the params are the page's URL query)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def of(self, analyst: str, page: str) -> pd.DataFrame:
        """name, params (a dict), saved_at of ``analyst``'s views of ``page``."""
        frame = self._store._frame("saved_views", _VIEWS, {"analyst": analyst, "page": page})
        frame["params"] = [json.loads(p) for p in frame["params"]]
        return frame

    def save(self, analyst: str, page: str, name: str, params: dict[str, Any],
             saved_at: dt.datetime) -> None:
        self._store._execute("save_view", _SAVE_VIEW, {
            "analyst": analyst, "page": page, "name": name,
            "params": json.dumps(params, sort_keys=True), "saved_at": saved_at})

    def delete(self, analyst: str, page: str, name: str) -> None:
        self._store._execute("delete_view", _DELETE_VIEW,
                             {"analyst": analyst, "page": page, "name": name})
