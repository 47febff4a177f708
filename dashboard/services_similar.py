"""The typology guess and the similar past cases: the pages' door to ``core.app.similar``.

The index (unit vectors of the decided sessions and of the labelled anomalies) is built once
per ``core.app.similar.similarity_key`` (the events, the labels, the decided cases and the
feature model) and shared between reruns and sessions (``st.cache_resource``); a query is a
matrix-vector product on it. The key is read once per store stamp.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app import similar as core_similar
from core.app.similar import SimilarityIndex
from dashboard import services

__all__ = ["DEFAULT_K", "MAX_QUEUE", "decision_breakdown", "index", "queue_typology",
           "similar_cases", "typology", "typology_name"]

DEFAULT_K = core_similar.DEFAULT_K
MAX_QUEUE = core_similar.MAX_QUEUE
typology_name = core_similar.typology_name


@st.cache_data(show_spinner=False, max_entries=8)
def _key(stamp: str, path: str) -> tuple:
    return services.with_store(core_similar.similarity_key)


@st.cache_resource(show_spinner="Indexing the decided and labelled sessions…", max_entries=1)
def _index(path: str, key: tuple) -> SimilarityIndex:
    return services.with_store(core_similar.build_similarity_index)


def index(stamp: str, path: str) -> SimilarityIndex:
    """The similarity index of the store as it is now (shared, not copied: read only)."""
    return _index(path, _key(stamp, path))


@st.cache_data(show_spinner=False, max_entries=64)
def typology(stamp: str, path: str, session_id: str) -> dict:
    """The typology guess of ``session_id`` as a dict (``TypologyGuess.to_dict``)."""
    found = index(stamp, path)
    return services.with_store(
        lambda s: core_similar.typology_of(s, session_id, index=found)).to_dict()


@st.cache_data(show_spinner=False, max_entries=64)
def similar_cases(stamp: str, path: str, session_id: str, k: int = DEFAULT_K) -> pd.DataFrame:
    """The ``k`` most similar decided sessions (``core.app.similar.SIMILAR_COLUMNS``)."""
    found = index(stamp, path)
    return services.with_store(
        lambda s: core_similar.similar_cases(s, session_id, k=k, index=found))


@st.cache_data(show_spinner="Guessing the queue's typologies…", max_entries=4)
def queue_typology(stamp: str, path: str, limit: int = MAX_QUEUE) -> pd.DataFrame:
    """typology, sessions, share, mean confidence over the queue's top ``limit`` open
    sessions (riskiest first)."""
    top = services.ranked_queue(stamp, path)["session_id"].astype(str).head(limit).tolist()
    found = index(stamp, path)
    guesses = services.with_store(
        lambda s: core_similar.queue_typology(s, top, index=found, limit=limit))
    return core_similar.typology_counts(guesses)


@st.cache_data(show_spinner=False, max_entries=4)
def decision_breakdown(stamp: str, path: str) -> pd.DataFrame:
    """typology, decision, sessions, cases of what analysts decided."""
    return services.with_store(core_similar.decision_breakdown)


def index_size(stamp: str, path: str) -> dict:
    """decided_sessions, labelled_anomalies, distance_cut of the index."""
    return core_similar.describe(index(stamp, path))
