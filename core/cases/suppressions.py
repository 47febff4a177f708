"""Snoozing: hide a user, device or IP from the flagged queue for a while, with a reason.

A suppression is active from its creation until it expires or is lifted. Suppressions are
never deleted: lifting records who lifted it and when, and both actions are audited.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core.cases.audit import now_utc, record, require_analyst
from core.errors import ConfigError
from core.store import Store

SUPPRESSION_KINDS: tuple[str, ...] = ("user", "device", "ip")
MAX_SNOOZE_DAYS = 365


def snooze(store: Store, kind: str, value: str, *, days: float, reason: str, analyst: str,
           case_id: str | None = None, now: dt.datetime | None = None) -> int:
    """Suppress ``kind`` = ``value`` for ``days`` days; returns the suppression id."""
    analyst = require_analyst(analyst)
    if kind not in SUPPRESSION_KINDS:
        raise ConfigError(f"suppression kind must be one of {', '.join(SUPPRESSION_KINDS)}, "
                          f"got {kind!r}.")
    value = (value or "").strip()
    if not value:
        raise ConfigError(f"the {kind} to snooze must be set, got an empty value. Name it.")
    if not 0 < days <= MAX_SNOOZE_DAYS:
        raise ConfigError(f"snooze days must be in (0, {MAX_SNOOZE_DAYS}], got {days}. Pick "
                          "a shorter period and renew it when it expires.")
    text = (reason or "").strip()
    if not text:
        raise ConfigError("snooze reason must be set, got an empty reason. Say why, so the "
                          "next analyst knows.")
    start = now or now_utc()
    expires = start + dt.timedelta(days=days)
    with store.transaction():
        suppression_id = store.suppressions.insert(kind=kind, value=value, reason=text,
                                                   actor=analyst, now=start, expires_at=expires)
        record(store, analyst, "snooze", case_id=case_id, entity=f"{kind}:{value}", detail={
            "suppression_id": suppression_id, "kind": kind, "value": value, "reason": text,
            "expires_at": expires.isoformat()}, now=start)
    return suppression_id


def lift(store: Store, suppression_id: int, *, analyst: str,
         now: dt.datetime | None = None) -> None:
    """End a suppression before it expires."""
    analyst = require_analyst(analyst)
    row = store.suppressions.get(suppression_id)
    if row is None:
        raise ConfigError(f"suppression id must exist, got {suppression_id}. See the active "
                          "suppressions on the Cases page.")
    if not pd.isna(row["lifted_at"]):
        raise ConfigError(f"suppression {suppression_id} must be active to be lifted, got one "
                          f"lifted by {row['lifted_by']}. Nothing to do.")
    when = now or now_utc()
    with store.transaction():
        store.suppressions.lift(suppression_id, actor=analyst, now=when)
        record(store, analyst, "lift", entity=f"{row['kind']}:{row['value']}",
               detail={"suppression_id": int(suppression_id)}, now=when)


def active_suppressions(store: Store, at: dt.datetime | None = None) -> pd.DataFrame:
    """suppression_id, kind, value, reason, created_by, created_at, expires_at."""
    return store.suppressions.active(at or now_utc())


def suppressed_session_ids(store: Store, at: dt.datetime | None = None) -> set[str]:
    """Sessions of suppressed users, or with an event from a suppressed device or IP."""
    return store.suppressions.suppressed_session_ids(at or now_utc())


def drop_suppressed(store: Store, table: pd.DataFrame,
                    at: dt.datetime | None = None) -> pd.DataFrame:
    """``table`` (with a session_id column) without the actively suppressed sessions."""
    hidden = suppressed_session_ids(store, at)
    if not hidden:
        return table
    return table[~table["session_id"].isin(hidden)]
