"""The append-only audit log: who did what to which case, when.

Only :func:`record` writes, and it only INSERTs; the app has no path that edits or deletes a
row. Every write in ``core.cases`` calls it inside the same transaction as the change it
describes, so a change and its audit row land (or roll back) together.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from core.errors import ConfigError
from core.store import Store

AUDIT_ACTIONS: tuple[str, ...] = (
    "open", "add_sessions", "claim", "assign", "note", "decide", "reopen", "snooze", "lift",
    "export", "publish_policy",
)
MAX_NAME_CHARS = 200


def now_utc() -> dt.datetime:
    """The current time as a naive UTC timestamp (the store's convention)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def require_analyst(name: str | None) -> str:
    """The analyst's name, stripped; ConfigError when it is empty or too long."""
    value = (name or "").strip()
    if not value:
        raise ConfigError(
            f"analyst name must be set for every case action, got {name!r}. Pass --analyst, "
            "set $ANOMALYST_ANALYST, or type your name in the dashboard's sidebar."
        )
    if len(value) > MAX_NAME_CHARS:
        raise ConfigError(
            f"analyst name must be at most {MAX_NAME_CHARS} characters, got {len(value)}. "
            "Use a shorter name."
        )
    return value


def record(store: Store, actor: str, action: str, *, case_id: str | None = None,
           entity: str | None = None, detail: dict[str, Any] | None = None,
           now: dt.datetime | None = None) -> None:
    """Append one audit row. Call inside the transaction of the change it records."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    store.audit.record(now=now or now_utc(), actor=require_analyst(actor), action=action,
                       case_id=case_id, entity=entity, detail=detail or {})


def audit_trail(store: Store, case_id: str) -> pd.DataFrame:
    """audit_id, logged_at, actor, action, case_id, entity, detail (parsed dict), oldest first."""
    return store.audit.of_case(case_id)


def recent_audit(store: Store, limit: int = 200) -> pd.DataFrame:
    """The newest ``limit`` audit rows of every case and suppression, newest first."""
    return store.audit.recent(limit)
