"""The Explain page's door to ``core.explain``: cached explanations, stored for everyone.

An explanation is computed on a read-only store (nothing is held while SHAP runs), then written
to the store's cache in a short read-write opening, so the CLI, reports and other analysts
reuse it. Writing it is part of viewing (action "view"): any signed-in role may cause it. A
busy store only skips the write; the page still shows the explanation.
"""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from core.errors import AnomalystError
from core.explain import SessionExplanation, explain_session, global_shap, save_explanation
from core.explain.session import model_ranks, session_info
from dashboard import services

log = logging.getLogger(__name__)


@st.cache_data(show_spinner="Explaining the session…", max_entries=64)
def explanation(_stamp: float, path: str, session_id: str,
                model_id: str | None) -> SessionExplanation:
    found = services.with_store(
        lambda s: explain_session(s, session_id, model_id=model_id, save=False))
    if not found.from_cache:
        try:
            services.with_store(lambda s: save_explanation(s, found), write=True, action="view")
        except AnomalystError as exc:  # busy or read-only: showing it matters more
            log.warning("explanation of %s not cached: %s", session_id, exc)
    return found


@st.cache_data(show_spinner=False, max_entries=64)
def session_models(_stamp: float, path: str, session_id: str) -> pd.DataFrame:
    """model_id, detector, score, percentile, is_flagged for each model that scored it."""
    def read(store) -> pd.DataFrame:  # noqa: ANN001
        ranks = model_ranks(store, session_info(store, session_id))
        return pd.DataFrame([{"model_id": r.model_id, "detector": r.detector, "score": r.score,
                              "percentile": r.percentile, "is_flagged": r.is_flagged}
                             for r in ranks],
                            columns=["model_id", "detector", "score", "percentile",
                                     "is_flagged"])

    return services.with_store(read)


@st.cache_data(show_spinner="Computing SHAP over the flagged sessions…", max_entries=8)
def global_view(_stamp: float, path: str, model_id: str, max_sessions: int) -> pd.DataFrame:
    return services.with_store(lambda s: global_shap(s, model_id, max_sessions=max_sessions))


def flagged_sessions(stamp: float, path: str, sources: tuple[str, ...]) -> pd.DataFrame:
    """session_id, user_id, flagged_by, top percentile: the queue, highest first."""
    models = services.models(stamp, path)
    model_ids = tuple(services.default_model_ids(models))
    if not model_ids:
        return pd.DataFrame(columns=["session_id", "user_id", "flagged_by", "top"])
    table = services.flagged_table(stamp, path, model_ids, sources)
    pct = table[[f"pct:{m}" for m in model_ids]].max(axis=1)
    return table.assign(top=pct).sort_values("top", ascending=False)[
        ["session_id", "user_id", "flagged_by", "top"]]
