"""A case opened on an entity: a device, IP, item, payment id, country or merchant.

Cases belong to a user (``cases.user_id`` is NOT NULL and the reports, the queue and the
analyst labels lean on it), so an entity case names the user with the most sessions on the
entity and records the entity in ``entity_kind``/``entity_value`` (migration 13). It covers the
latest :data:`core.store.entities.MAX_CASE_SESSIONS` sessions touching the entity, of any
user. An entity with an active (open or investigating) case gets that case back with the new
sessions added. Audited like every other case open, in the same transaction.
"""

from __future__ import annotations

from core.cases.audit import now_utc, record, require_analyst
from core.cases.lifecycle import _clean_text, get_case
from core.errors import ConfigError
from core.store import Store
from core.store.cases import Case
from core.store.entities import MAX_CASE_SESSIONS


def entity_label(kind: str, value: str) -> str:
    """How the audit log names an entity: ``device_id=d-123``."""
    return f"{kind}={value}"


def open_entity_case(store: Store, *, analyst: str, kind: str, value: str,
                     title: str | None = None, max_sessions: int = MAX_CASE_SESSIONS) -> Case:
    """Open (or extend) the case on entity ``(kind, value)`` and return it."""
    analyst = require_analyst(analyst)
    column = store.entities.column(kind)  # ConfigError for a kind that is not an entity column
    value = str(value)
    sessions = store.entities.latest_sessions(column, value, limit=max_sessions)
    if not sessions:
        raise ConfigError(f"entity {column} must occur in the store's events, got {value!r}. "
                          "Check the value on the User or Explain page.")
    users = store.entities.users(column, value, limit=1)
    owner = str(users["user_id"].iloc[0])
    label = entity_label(column, value)
    clean_title = _clean_text("title", title, 500) or f"Entity {label}"[:500]
    now = now_utc()
    with store.transaction():
        existing = store.entities.active_case(column, value)
        if existing is not None:
            before = set(store.cases.session_ids(existing))
            added = [s for s in sessions if s not in before]
            if added:
                store.cases.add_sessions(existing, added)
                store.cases.touch(existing, now)
                record(store, analyst, "add_sessions", case_id=existing, entity=label,
                       detail={"session_ids": added}, now=now)
            case_id = existing
        else:
            case_id = store.cases.insert(user_id=owner, title=clean_title, created_by=analyst,
                                         now=now)
            store.entities.set_case_entity(case_id, column, value)
            store.cases.add_sessions(case_id, sessions)
            record(store, analyst, "open", case_id=case_id, entity=label,
                   detail={"session_ids": sessions, "from": "entity", "entity_kind": column,
                           "entity_value": value, "user_id": owner}, now=now)
    return get_case(store, case_id)
