"""Entity views: one device, IP, item, payment id, country or merchant, and what touched it.

    view = entity_view(store, "device_id", "d-123")   # EntityView: summary, volume, risk,
                                                       # users, decided cases (all bounded)
    case = open_entity_case(store, analyst="ana", kind="device_id", value="d-123")

The kinds are :data:`ENTITY_COLUMNS` (``merchant_id`` where the store has it); any other kind
is refused with ConfigError before a query is built. Risk per day is the alert policy's model
(``core.app.policy.in_force``): its raw score's daily max and mean over the sessions touching
the entity, and the daily max as risk 0-100.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.store.entities import (
    ENTITY_COLUMNS,
    MAX_CASE_SESSIONS,
    MAX_CASES,
    MAX_DAYS,
    MAX_USERS,
)

if TYPE_CHECKING:
    from core.store import Store
    from core.store.cases import Case

__all__ = ["ENTITY_COLUMNS", "KIND_NAMES", "MAX_CASE_SESSIONS", "MAX_USERS", "EntitySummary",
           "EntityView", "entity_kinds", "entity_view", "kinds_of_features", "open_entity_case",
           "session_entities", "user_entities"]

KIND_NAMES = {"device_id": "device", "ip": "IP", "item_id": "item", "payment_id": "payment id",
              "country": "country", "merchant_id": "merchant"}
"""How a page names each kind."""


@dataclass(frozen=True)
class EntitySummary:
    """What touched the entity, over the whole store."""

    n_sessions: int
    n_users: int
    n_events: int
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    amount: float


@dataclass(frozen=True)
class EntityView:
    """Everything the entity page draws, each table bounded (``*_cut`` says it was cut)."""

    kind: str
    value: str
    summary: EntitySummary
    volume: pd.DataFrame
    """day, sessions, users, new_users (users whose first session in the store is that day)."""
    risk: pd.DataFrame
    """day, n_scored, max_score, mean_score, max_risk (0-100; NaN without a calibration)."""
    risk_model: str | None
    """The alert policy's model the risk is of; None while nothing is scored."""
    users: pd.DataFrame
    """user_id, n_sessions, first_seen, last_seen, latest_decision, decided_scenario,
    decided_case: most sessions on the entity first."""
    cases: pd.DataFrame
    """Closed cases of the users or sessions touching the entity, or opened on it."""
    max_users: int = MAX_USERS
    max_cases: int = MAX_CASES

    @property
    def found(self) -> bool:
        """Whether any event carries the value."""
        return self.summary.n_events > 0

    @property
    def users_cut(self) -> bool:
        return self.summary.n_users > len(self.users)

    @property
    def cases_cut(self) -> bool:
        return len(self.cases) >= self.max_cases

    @property
    def days_cut(self) -> bool:
        return len(self.volume) >= MAX_DAYS


def entity_kinds(store: Store) -> tuple[str, ...]:
    """The entity columns this store has (``merchant_id`` only where ``events`` holds it)."""
    return store.entities.kinds()


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


def entity_view(store: Store, kind: str, value: str, *, max_users: int = MAX_USERS,
                max_cases: int = MAX_CASES) -> EntityView:
    """The entity ``(kind, value)``: ConfigError for a kind that is not an entity column of
    this store; an unseen value gives a view whose ``found`` is False (and empty tables)."""
    from core.policy import policy_in_force, risk_calibration

    column = store.entities.column(kind)
    value = str(value)
    raw = store.entities.summary(column, value)
    summary = EntitySummary(
        n_sessions=int(raw["n_sessions"]), n_users=int(raw["n_users"]),
        n_events=int(raw["n_events"]), first_seen=_when(raw["first_seen"]),
        last_seen=_when(raw["last_seen"]), amount=float(raw["amount"] or 0.0))
    risk_cols = ["day", "n_scored", "max_score", "mean_score", "max_risk"]
    if summary.n_events == 0:
        return EntityView(column, value, summary,
                          _empty(["day", "sessions", "users", "new_users"]),
                          _empty(risk_cols), None,
                          _empty(["user_id", "n_sessions", "first_seen", "last_seen",
                                  "latest_decision", "decided_scenario", "decided_case"]),
                          _empty(["case_id", "user_id", "decision", "scenario", "decided_by",
                                  "decided_at", "entity_kind", "entity_value",
                                  "sessions_on_entity"]), max_users, max_cases)
    policy = policy_in_force(store)
    if policy is None:
        risk, model_id = _empty(risk_cols), None
    else:
        model_id = policy.model_id
        risk = store.entities.risk(column, value, model_id)
        calibration = risk_calibration(store, model_id)
        scores = risk["max_score"].to_numpy(np.float64)
        # risk is monotone in the score, so the day's highest risk is that of its highest score
        risk["max_risk"] = (calibration.risk(scores) if calibration is not None
                            else np.full(len(scores), np.nan))
    return EntityView(
        column, value, summary, store.entities.volume(column, value), risk, model_id,
        store.entities.users(column, value, limit=max_users),
        store.entities.decided_cases(column, value, limit=max_cases), max_users, max_cases)


def user_entities(store: Store, user_id: str) -> pd.DataFrame:
    """kind, value, n_sessions: the user's entities, the most used first (bounded per kind)."""
    return store.entities.of_user(user_id)


def session_entities(store: Store, session_id: str) -> pd.DataFrame:
    """kind, value, n_sessions: the session's entities (bounded per kind)."""
    return store.entities.of_session(session_id)


def open_entity_case(store: Store, *, analyst: str, kind: str, value: str,
                     title: str | None = None) -> Case:
    """Open (or extend) the case on an entity; audited (the front end checked the role)."""
    from core.cases.entity_case import open_entity_case as _open

    return _open(store, analyst=analyst, kind=kind, value=value, title=title)


_FEATURE_KINDS = {
    "device_id": re.compile(r"device"),
    "ip": re.compile(r"(^|_)ips?(_|$)"),
    "item_id": re.compile(r"(^|_)items?(_|$)|item_id"),
    "payment_id": re.compile(r"payment_ids?(_|$)"),
    "country": re.compile(r"country"),
    "merchant_id": re.compile(r"merchant"),
}


def kinds_of_features(names: Sequence[str]) -> list[str]:
    """The entity kinds that feature ``names`` speak of (``device_other_users_log`` ->
    device_id), in the order of the first feature naming each."""
    found: list[str] = []
    for name in names:
        for kind, pattern in _FEATURE_KINDS.items():
            if kind not in found and pattern.search(str(name).lower()):
                found.append(kind)
    return found


def _when(value: Any) -> dt.datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).to_pydatetime()
