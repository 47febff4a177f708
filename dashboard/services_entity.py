"""The Entity page's door to ``core.app.entities``: cached reads and the audited case open.

Reads are keyed on the store's stamp like every other read (``dashboard.services``); the case
open goes through ``services.with_store`` (which checks the signed-in role on the server).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app import entities as core_entities
from core.app.entities import EntityView
from dashboard import services

__all__ = ["KIND_NAMES", "MAX_CASE_SESSIONS", "MAX_USERS", "EntityView", "entity_view",
           "kinds", "kinds_of_features", "open_case", "session_entities", "user_entities"]

KIND_NAMES = core_entities.KIND_NAMES
MAX_USERS = core_entities.MAX_USERS
MAX_CASE_SESSIONS = core_entities.MAX_CASE_SESSIONS
kinds_of_features = core_entities.kinds_of_features


@st.cache_data(show_spinner=False, max_entries=8)
def kinds(stamp: str, path: str) -> tuple[str, ...]:
    """The entity columns this store has."""
    return services.with_store(core_entities.entity_kinds)


@st.cache_data(show_spinner="Reading the entity…", max_entries=32)
def entity_view(stamp: str, path: str, kind: str, value: str) -> EntityView:
    """One store connection for the page's reads, each bounded (``core.app.entities``)."""
    return services.with_store(lambda s: core_entities.entity_view(s, kind, value))


@st.cache_data(show_spinner=False, max_entries=64)
def user_entities(stamp: str, path: str, user_id: str) -> pd.DataFrame:
    """kind, value, n_sessions of the user's entities (bounded per kind)."""
    return services.with_store(lambda s: core_entities.user_entities(s, user_id))


@st.cache_data(show_spinner=False, max_entries=64)
def session_entities(stamp: str, path: str, session_id: str) -> pd.DataFrame:
    """kind, value, n_sessions of the session's entities (bounded per kind)."""
    return services.with_store(lambda s: core_entities.session_entities(s, session_id))


def open_case(analyst: str, kind: str, value: str) -> core_entities.Case:
    """Open (or extend) the case on the entity: role-checked here, audited in core."""
    try:
        return services.with_store(lambda s: core_entities.open_entity_case(
            s, analyst=analyst, kind=kind, value=value), write=True, action="case")
    finally:
        services.forget_reads()
