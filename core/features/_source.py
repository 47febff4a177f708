"""Shared plumbing of the feature builders: session scoping of the events.

What runs the SQL (the events relation, temp tables, parameters) is the store's:
core.store.features, re-exported here for the builders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from core.errors import ConfigError
from core.store.features import (
    ALWAYS_PRESENT,
    EVENTS_TABLE,
    TempTables,
    event_columns,
    events_relation,
    top_event_types,
    used_params,
)

__all__ = [
    "ALWAYS_PRESENT", "EVENTS_TABLE", "TempTables", "check_all_found", "event_columns",
    "events_relation", "learning_relation", "normalize_session_ids", "scope_filter",
    "scoped_relation", "top_event_types", "used_params",
]


def scope_filter(session_ids: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    """WHERE clause over ``events`` keeping the users owning ``session_ids`` (all when None)."""
    if session_ids is None:
        return "", {}
    sql = (
        f"WHERE user_id IN (SELECT user_id FROM {EVENTS_TABLE} "
        "WHERE session_id IN (SELECT unnest($session_ids)))"
    )
    return sql, {"session_ids": normalize_session_ids(session_ids)}


def scoped_relation(
    all_events: str, session_ids: Sequence[str] | None
) -> tuple[str, dict[str, Any]]:
    """Events of the users owning ``session_ids`` (all events when None), plus bound params.

    Features that look at a user's history (novelty, previous sessions) need every session of
    those users, not only the requested ones.
    """
    if session_ids is None:
        return all_events, {}
    sql = (
        f"(SELECT * FROM {all_events} WHERE user_id IN (SELECT DISTINCT user_id FROM "
        f"{all_events} WHERE session_id IN (SELECT unnest($session_ids))))"
    )
    return sql, {"session_ids": normalize_session_ids(session_ids)}


def learning_relation(
    all_events: str, until: Any = None, session_ids: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The training events a spec's vocabularies are learned from: those before ``until``
    and/or of ``session_ids`` (all events when neither is given), plus bound params."""
    conditions, params = [], {}
    if until is not None:
        conditions.append("ts < $learn_until")
        params["learn_until"] = until
    if session_ids is not None:
        conditions.append("session_id IN (SELECT unnest($learn_sessions))")
        params["learn_sessions"] = normalize_session_ids(session_ids)
    if not conditions:
        return all_events, params
    return f"(SELECT * FROM {all_events} WHERE {' AND '.join(conditions)})", params


def normalize_session_ids(session_ids: Sequence[str]) -> list[str]:
    """``session_ids`` as a list of str; refuses a bare string (a common slip)."""
    if isinstance(session_ids, str | bytes):
        raise ConfigError(
            f"session_ids must be a sequence of ids, got the string {session_ids!r}. "
            "Wrap a single id in a list."
        )
    return [str(s) for s in session_ids]


def check_all_found(requested: list[str], found: Iterable[Any]) -> None:
    """ConfigError naming a few requested session ids that have no events."""
    missing = sorted(set(requested) - {str(s) for s in found})
    if not missing:
        return
    raise ConfigError(
        f"session_ids must name sessions in the events table, got {len(missing)} unknown "
        f"(e.g. {missing[:5]!r}). List sessions with the store's sessions table."
    )


