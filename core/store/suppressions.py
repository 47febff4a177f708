"""Suppressions (snoozes) of a user, device or IP: never deleted, only lifted."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

_INSERT = """
    INSERT INTO suppressions VALUES (nextval('suppression_id_seq'), $kind, $value, $reason,
                                     $actor, $now, $expires_at, NULL, NULL)
    RETURNING suppression_id
"""
_BY_ID = "SELECT * FROM suppressions WHERE suppression_id = $suppression_id"
_LIFT = """
    UPDATE suppressions SET lifted_by = $actor, lifted_at = $now
    WHERE suppression_id = $suppression_id
"""
_ACTIVE = """
    SELECT suppression_id, kind, value, reason, created_by, created_at, expires_at
    FROM suppressions
    WHERE lifted_at IS NULL AND created_at <= $at AND expires_at > $at
    ORDER BY expires_at, suppression_id
"""
_ALL = "SELECT * FROM suppressions ORDER BY suppression_id DESC"
# A session is suppressed when its user is, or when any of its events used a suppressed device
# or IP.
_SUPPRESSED_SESSIONS = """
    WITH active AS (
        SELECT kind, value FROM suppressions
        WHERE lifted_at IS NULL AND created_at <= $at AND expires_at > $at
    )
    SELECT session_id FROM sessions
    WHERE user_id IN (SELECT value FROM active WHERE kind = 'user')
    UNION
    SELECT session_id FROM events
    WHERE device_id IN (SELECT value FROM active WHERE kind = 'device')
    UNION
    SELECT session_id FROM events
    WHERE ip IN (SELECT value FROM active WHERE kind = 'ip')
"""


class Suppressions:
    """Reads and writes of ``suppressions``; writers run inside the caller's transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def insert(self, *, kind: str, value: str, reason: str, actor: str, now: dt.datetime,
               expires_at: dt.datetime) -> int:
        """Add an active suppression; returns its id."""
        return int(self._store._scalar("suppressions.insert", _INSERT, {
            "kind": kind, "value": value, "reason": reason, "actor": actor, "now": now,
            "expires_at": expires_at}))

    def get(self, suppression_id: int) -> dict[str, Any] | None:
        """The suppression's row (every column), or None."""
        rows = self._store._frame("suppressions.get", _BY_ID,
                                  {"suppression_id": int(suppression_id)})
        return None if rows.empty else rows.iloc[0].to_dict()

    def lift(self, suppression_id: int, *, actor: str, now: dt.datetime) -> None:
        self._store._execute("suppressions.lift", _LIFT, {
            "suppression_id": int(suppression_id), "actor": actor, "now": now})

    def active(self, at: dt.datetime) -> pd.DataFrame:
        """suppression_id, kind, value, reason, created_by, created_at, expires_at at ``at``."""
        return self._store._frame("suppressions.active", _ACTIVE, {"at": at})

    def every(self) -> pd.DataFrame:
        """Every suppression ever made (lifted and expired too), newest first."""
        return self._store._frame("suppressions.every", _ALL)

    def suppressed_session_ids(self, at: dt.datetime) -> set[str]:
        """Sessions of users suppressed at ``at``, or with an event from such a device or IP."""
        rows = self._store._rows("suppressions.sessions", _SUPPRESSED_SESSIONS, {"at": at})
        return {str(r[0]) for r in rows}
