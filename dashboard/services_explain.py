"""The Explain page's door to ``core.app.investigate``: cached explanations, stored for all.

An explanation is computed on a read-only store (nothing is held while SHAP runs), then written
to the store's cache in a short read-write opening, so the CLI, reports and other analysts
reuse it. Writing it is part of viewing (action "view"): any signed-in role may cause it. A
busy store only skips the write; the page still shows the explanation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core.app import AnomalystError, investigate
from core.app.investigate import AttentionView, attention_view, context_table, method_text
from dashboard import services

if TYPE_CHECKING:
    from core.app.investigate import SessionExplanation

__all__ = ["AttentionView", "attention_view", "context_table", "explanation", "global_view",
           "method_text", "session_models"]

log = logging.getLogger(__name__)


@st.cache_data(show_spinner="Explaining the session…", max_entries=64)
def explanation(stamp: str, path: str, session_id: str,
                model_id: str | None) -> SessionExplanation:
    found = services.with_store(lambda s: investigate.explain(s, session_id, model_id))
    if not found.from_cache:
        try:
            services.with_store(lambda s: investigate.save_explanation(s, found), write=True,
                                action="view")
        except AnomalystError as exc:  # busy or read-only: showing it matters more
            log.warning("explanation of %s not cached: %s", session_id, exc)
    return found


@st.cache_data(show_spinner=False, max_entries=64)
def session_models(stamp: str, path: str, session_id: str) -> pd.DataFrame:
    """model_id, detector, score, percentile, is_flagged for each model that scored it."""
    return services.with_store(lambda s: investigate.session_models(s, session_id))


@st.cache_data(show_spinner="Computing SHAP over the flagged sessions…", max_entries=8)
def global_view(stamp: str, path: str, model_id: str, max_sessions: int) -> pd.DataFrame:
    return services.with_store(lambda s: investigate.global_view(s, model_id, max_sessions))


def flagged_sessions(stamp: str, path: str, sources: tuple[str, ...]) -> pd.DataFrame:
    """session_id, user_id, flagged_by, top percentile: the queue, highest first."""
    return services.ranked_queue(stamp, path, sources)
