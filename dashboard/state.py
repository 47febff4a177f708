"""The dashboard's session keys and the links between its pages, each named once.

A page reads and writes ``st.session_state`` through the names below, and moves to another
page through ``to_user`` / ``to_explain`` / ``to_case``, so a key or a query parameter is
spelt in one place. Widget keys private to one page (``q_dates``, ``cs_fmt`` ...) stay beside
their widget; the ones listed here are read or written outside their widget too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

# --- keys shared by the sidebar, the pages and the sign-in ------------------------------------
PAGES = "_pages"  # name -> st.Page, registered by dashboard/app.py
LABEL_CHOICE = "label_choice"  # the sidebar's label sources for precision/recall
ANALYST = "analyst"  # the sidebar's analyst name (sign-in off); also its query parameter
AUTH_PRINCIPAL = "auth_principal"  # the signed-in Principal
AUTH_DEEP_LINK = "auth_deep_link"  # (page path, query parameters) asked for before sign-in
AUTH_NOTICE = "auth_notice"  # why the last session ended ("removed")

# --- Explain ----------------------------------------------------------------------------------
EXPLAIN_SESSION = "explain_session"  # the session another page asked to explain
EXPLAIN_PICK = "explain_pick"  # the session picker's value
EXPLAIN_APPLIED = "_explain_applied"  # the last request the picker took over

# --- Thresholds -------------------------------------------------------------------------------
THR_VALUE = "thr_value"  # the slider's value
THR_PENDING = "thr_pending"  # a suggested threshold, applied to the slider on the next run
THR_SAVED_FLASH = "thr_saved_flash"  # the policy version just published, shown once
THR_TUNED = "thr_tuned"  # (model, segment) -> a tuned, unpublished threshold
THR_AT = "thr_at"  # the (model, segment) the slider shows

# --- Data -------------------------------------------------------------------------------------
DATA_STAGED_KEY = "data_staged_key"  # (file id, name) of the previewed upload
DATA_PREVIEW = "data_preview"  # its UploadPreview
DATA_UNSCORED = "data_unscored"  # sessions were ingested and are not scored yet

# --- User -------------------------------------------------------------------------------------
USER_SESSIONS_PAGE = "user_sessions_page"  # 1-based page of the user's sessions

# --- Cases ------------------------------------------------------------------------------------
LIVE_FEED = "live_feed_frame"  # the Live page's feed last drawn, kept while it is paused

CASE = "cs_case"  # the case shown in detail (the picker's value)
CASE_NOTE = "cs_note"  # the note box
CASE_NOTE_ADDED = "cs_note_added"  # empty the note box on the next run
CASE_REPORT = "cs_report"  # (case id, format, masked, bytes) of the prepared report

# --- query parameters (deep links) ------------------------------------------------------------
Q_USER, Q_SESSION, Q_MODEL, Q_CASE = "user", "session", "model", "case"
Q_KIND, Q_VALUE = "kind", "value"  # the Entity page: /entity?kind=device_id&value=<id>


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def pop(key: str, default: Any = None) -> Any:
    return st.session_state.pop(key, default)


def has(key: str) -> bool:
    return key in st.session_state


def update(values: Mapping[str, Any]) -> None:
    """Set several keys at once (e.g. widget values, before their widgets run)."""
    st.session_state.update(values)


def query() -> Mapping[str, str]:
    """This page's URL query parameters."""
    return st.query_params


def replace_query(params: Mapping[str, str], owned: Any) -> None:
    """Make the URL carry ``params`` among the parameters this page ``owned`` (the others
    are left alone); each change pushes a browser history entry."""
    for param in set(owned) - set(params):
        st.query_params.pop(param, None)
    st.query_params.update(params)


# --- pages and the links between them ---------------------------------------------------------
def register_pages(pages: Mapping[str, Any]) -> None:
    """Keep ``dashboard/app.py``'s st.Page objects, by name, for links and switches."""
    st.session_state[PAGES] = pages


def page(name: str) -> Any:
    """The st.Page registered as ``name``."""
    return st.session_state[PAGES][name]


def analyst_typed() -> str:
    """The name typed in the sidebar (sign-in off), '' when none: the widget's value, else
    the URL's ``?analyst=`` (a reload or a deep link, before the widget has run)."""
    # The sidebar's box is bound to ``?analyst=`` in the entrypoint, so Streamlit itself keeps
    # the parameter on every page switch (``st.switch_page`` with query parameters included;
    # setting it by hand is refused): the links below need not, and must not, carry it.
    typed = st.session_state.get(ANALYST) or st.query_params.get(ANALYST) or ""
    return str(typed).strip()


def user_params(user_id: str, session_id: str | None = None) -> dict[str, str]:
    """The User page's query parameters: ``/user?user=<id>&session=<id>``."""
    params = {Q_USER: str(user_id)}
    if session_id:
        params[Q_SESSION] = str(session_id)
    return params


def to_user(user_id: str, session_id: str | None = None) -> None:
    """Switch to the User page on ``user_id`` (focused on ``session_id``)."""
    st.switch_page(page("user"), query_params=user_params(user_id, session_id))


def to_explain(session_id: str) -> None:
    """Switch to the Explain page on ``session_id``: ``/explain?session=<id>``."""
    st.session_state[EXPLAIN_SESSION] = str(session_id)
    st.switch_page(page("explain"), query_params={Q_SESSION: str(session_id)})


def to_case(case_id: str) -> None:
    """Switch to the Cases page on ``case_id``: ``/cases?case=<id>``."""
    st.switch_page(page("cases"), query_params={Q_CASE: str(case_id)})


def entity_params(kind: str, value: str) -> dict[str, str]:
    """The Entity page's query parameters: ``/entity?kind=<column>&value=<value>``."""
    return {Q_KIND: str(kind), Q_VALUE: str(value)}


def to_entity(kind: str, value: str) -> None:
    """Switch to the Entity page on ``(kind, value)``."""
    st.switch_page(page("entity"), query_params=entity_params(kind, value))


def entity_link(kind: str, value: str, *, where: Any = st, with_kind: bool = True) -> None:
    """A link to the Entity page on ``(kind, value)``: ``/entity?kind=...&value=...``, the
    value (and kind) drawn literally."""
    from dashboard import safe_text as safe

    where.page_link(page=page("entity"), query_params=entity_params(kind, value),
                    label=safe.fmt("{kind} {value}", kind=kind, value=value) if with_kind
                    else safe.fmt("{value}", value=value), icon=":material/hub:")


def asked(param: str) -> str:
    """A query parameter of this page's URL ('' when absent)."""
    return st.query_params.get(param) or ""


def show_in_url(param: str, value: str) -> None:
    """Keep ``value`` in this page's URL (a reload or a shared link lands on it)."""
    if st.query_params.get(param) != value:
        st.query_params[param] = value
