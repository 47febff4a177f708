"""The append-only audit log: INSERT and SELECT only.

No statement here (or anywhere in the code base: a test scans it) updates or deletes a row of
``audit_log``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

_INSERT = """
    INSERT INTO audit_log VALUES (nextval('audit_id_seq'), $now, $actor, $action, $case_id,
                                  $entity, $detail)
"""
_OF_CASE = """
    SELECT audit_id, logged_at, actor, action, case_id, entity, detail FROM audit_log
    WHERE case_id = $case_id ORDER BY audit_id
"""
_RECENT = """
    SELECT audit_id, logged_at, actor, action, case_id, entity, detail FROM audit_log
    ORDER BY audit_id DESC LIMIT $limit
"""


class Audit:
    """Appends and reads of ``audit_log``; ``detail`` is stored as JSON and read back parsed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, *, now: dt.datetime, actor: str, action: str, case_id: str | None,
               entity: str | None, detail: dict[str, Any]) -> None:
        """Append one row (call inside the transaction of the change it records)."""
        self._store._execute("audit.record", _INSERT, {
            "now": now, "actor": actor, "action": action, "case_id": case_id,
            "entity": entity, "detail": json.dumps(detail, default=str, sort_keys=True)})

    def of_case(self, case_id: str) -> pd.DataFrame:
        """audit_id, logged_at, actor, action, case_id, entity, detail (a dict), oldest first."""
        return _parsed(self._store._frame("audit.of_case", _OF_CASE, {"case_id": case_id}))

    def recent(self, limit: int) -> pd.DataFrame:
        """The newest ``limit`` rows, newest first, as ``of_case``."""
        return _parsed(self._store._frame("audit.recent", _RECENT, {"limit": int(limit)}))


def _parsed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["detail"] = [json.loads(d) if isinstance(d, str) and d else {} for d in frame["detail"]]
    return frame
