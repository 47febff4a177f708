"""The work queue's door to ``core.app.queue``: cached reads, role-checked writes, and the
view's URL form. The queue itself is ``services.work_queue`` (the Explain page ranks it too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from core.app import queue as core_queue
from core.app.queue import (  # re-exported for the page, which imports only dashboard.*
    DEFAULT_STATUSES,
    SLA_DUE_HOURS,
    SLA_LEVELS,
    SLA_OK_HOURS,
    SORTS,
    STATUSES,
    QueueView,
)
from dashboard import services

__all__ = ["DEFAULT_STATUSES", "SLA_DUE_HOURS", "SLA_LEVELS", "SLA_OK_HOURS", "SORTS",
           "STATUSES", "QueueView"]

T = TypeVar("T")


@st.cache_data(show_spinner=False, max_entries=4)
def has_ground_truth(stamp: str, path: str) -> bool:
    return services.with_store(core_queue.has_ground_truth)


def filtered(queue: pd.DataFrame, view: QueueView) -> pd.DataFrame:
    return core_queue.sort_queue(core_queue.filter_queue(queue, view), view.sort)


@st.cache_data(show_spinner=False, max_entries=16)
def saved_views(stamp: str, path: str, analyst: str) -> dict[str, QueueView]:
    return services.with_store(lambda s: core_queue.saved_views(s, analyst))


# --- writes (role-checked in services.with_store, audited in core where they decide) -----------
def _write(func: Callable[[Any], T], action: str) -> T:
    try:
        return services.with_store(func, write=True, action=action)
    finally:
        services.forget_reads()


def save_view(analyst: str, name: str, view: QueueView) -> None:
    _write(lambda s: core_queue.save_view(s, analyst, name, view), "view")


def delete_view(analyst: str, name: str) -> None:
    _write(lambda s: core_queue.delete_view(s, analyst, name), "view")


def open_cases(rows: pd.DataFrame, analyst: str) -> list[str]:
    """One case per user of ``rows`` (session_id, user_id); the case ids."""
    return _write(lambda s: core_queue.open_cases(s, rows, analyst=analyst), "case")


def bulk_decide(rows: pd.DataFrame, decision: str, note: str, analyst: str) -> list[str]:
    """Decide ``rows`` through their users' cases (audited by ``decide_cases``)."""
    return _write(lambda s: core_queue.bulk_decide(s, rows, decision, analyst=analyst,
                                                   note=note), "case")


# --- the view in the URL ----------------------------------------------------------------------
# Filter widget key -> the QueueView field it holds; the key is also the URL's parameter.
FILTER_KEYS = {"q_status": "statuses", "q_sla": "sla", "q_country": "countries",
               "q_risk": "min_risk", "q_agree": "min_agree", "q_amount": "min_amount",
               "q_sort": "sort"}
_LISTS = {"statuses", "sla", "countries"}


def view_from_query(params: Any) -> QueueView | None:
    """The view a URL's query names (``params``: ``st.query_params``); None when it names
    none (the page was reached from the menu, not from a link or Back/Forward)."""
    found = {field: params.get_all(k) if field in _LISTS else params.get(k)
             for k, field in FILTER_KEYS.items() if k in params}
    if not found:
        return None
    return QueueView.from_params({f: [v for v in vals if v] if f in _LISTS else vals
                                  for f, vals in found.items()})


def query_of(view: QueueView) -> dict[str, Any]:
    """``view`` as URL parameters: every field that differs from the default, and the sort
    always (it marks the URL as holding a view; an empty list is written as '')."""
    base = QueueView()
    out: dict[str, Any] = {}
    for k, field in FILTER_KEYS.items():
        value = getattr(view, field)
        if value == getattr(base, field) and field != "sort":
            continue
        out[k] = (list(value) or "") if field in _LISTS else str(value)
    return out


def widget_values(view: QueueView) -> dict[str, Any]:
    """Filter widget key -> the value that shows ``view``."""
    return {k: list(getattr(view, f)) if f in _LISTS else getattr(view, f)
            for k, f in FILTER_KEYS.items()}
