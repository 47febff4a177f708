"""The Explain page's door to ``core.app.investigate``: cached explanations, stored for all.

An explanation is computed on a read-only store (nothing is held while SHAP runs), then written
to the store's cache in a short read-write opening, so the CLI, reports and other analysts
reuse it. Writing it is part of viewing (action "view"): any signed-in role may cause it. A
busy store only skips the write; the page still shows the explanation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from core.app import AnomalystError, investigate
from core.app.investigate import AttentionView, attention_view, context_table, method_text
from dashboard import services

if TYPE_CHECKING:
    from core.app.investigate import SessionExplanation, SessionRisk, WhyExplained

__all__ = ["AttentionView", "attention_view", "context_table", "contribution_frame", "explanation",
           "global_view",
           "method_text", "readable_names", "session_models", "session_risk", "why"]

log = logging.getLogger(__name__)


@st.cache_data(show_spinner="Explaining the session…", max_entries=64)
def explanation(stamp: str, path: str, session_id: str,
                model_id: str | None) -> SessionExplanation:
    found = services.with_store(lambda s: investigate.explain(s, session_id, model_id))
    _keep(found)
    return found


def _keep(found: SessionExplanation) -> None:
    """Write a newly computed explanation to the store's cache (skipped when busy)."""
    if found.from_cache:
        return
    try:
        services.with_store(lambda s: investigate.save_explanation(s, found), write=True,
                            action="view")
    except AnomalystError as exc:  # busy or read-only: showing it matters more
        log.warning("explanation of %s not cached: %s", found.session_id, exc)


@st.cache_data(show_spinner="Explaining the session across its models…", max_entries=64)
def why(stamp: str, path: str, session_id: str) -> WhyExplained:
    """The combined Why and each model's explanation behind it (new ones are stored)."""
    found = services.with_store(lambda s: investigate.why(s, session_id))
    for explanation in found.explanations.values():
        _keep(explanation)
    return found


@st.cache_data(show_spinner=False, max_entries=256)
def session_risk(stamp: str, path: str, session_id: str) -> SessionRisk:
    return services.with_store(lambda s: investigate.session_risk(s, session_id))


def contribution_frame(names: list[str], values: np.ndarray, top_n: int = 15) -> pd.DataFrame:
    """feature, shap: the ``top_n`` largest |contributions| (the bars chart's rows)."""
    frame = pd.DataFrame({"feature": list(names), "shap": np.asarray(values, np.float64)})
    return frame.reindex(frame["shap"].abs().sort_values(ascending=False).index).head(top_n)


def readable_names(names: tuple[str, ...] | list[str]) -> list[str]:
    """Feature names for people, in the same order."""
    return [investigate.readable_name(n) for n in names]


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
