"""Use cases: a session's typology guess, its most similar decided sessions, and the
typology breakdowns of the queue and of the decisions.

    index = build_similarity_index(store)            # once per similarity_key(store)
    guess = typology_of(store, "s-1", index=index)   # TypologyGuess: .text, .confidence
    found = similar_cases(store, "s-1", k=5, index=index)   # DataFrame, most similar first

The index (``SimilarityIndex``) holds unit vectors of the decided sessions and of the
labelled anomalies with a scenario (``core.similar.vectors``, ``core.similar.typology``); it
is a function of :func:`similarity_key` (the events, the labels, the decided cases and the
feature model), so a front end builds it once per key and keeps it (the dashboard in
``st.cache_resource``, the CLI per command).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.similar.typology import TypologyGuess, TypologyModel
    from core.similar.vectors import Representation, VectorIndex
    from core.store import Store

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_K", "MAX_K", "MAX_QUEUE", "MAX_TYPOLOGY_POOL", "SimilarityIndex",
           "build_similarity_index", "decision_breakdown", "describe", "queue_typology",
           "similar_cases", "similarity_key", "typology_counts", "typology_name", "typology_of"]

DEFAULT_K = 5
MAX_K = 50
MAX_QUEUE = 500
"""The queue breakdown guesses the typology of this many of the queue's top sessions."""
MAX_TYPOLOGY_POOL = 50_000
"""Labelled anomalies the typology learns from (a seeded sample beyond this)."""
SIMILAR_COLUMNS = ["session_id", "user_id", "similarity", "decision", "scenario", "typology",
                   "case_id", "decided_at"]


def typology_name(scenario: str | None) -> str:
    """'card_testing' -> 'card testing'."""
    from core.similar.typology import typology_name as name

    return name(scenario)


@dataclass
class SimilarityIndex:
    """What a query needs, built once per :func:`similarity_key`."""

    key: tuple
    representation: Representation | None
    decided: VectorIndex
    decided_meta: pd.DataFrame
    """Aligned with ``decided``'s rows: session_id, user_id, decision, scenario, case_id,
    decided_at."""
    typology: TypologyModel

    @property
    def n_decided(self) -> int:
        return len(self.decided)

    def vector(self, store: Store | None, session_id: str) -> np.ndarray:
        """The session's unit vector: an indexed one when it is indexed, else from the
        representation (the feature cache, else built from ``store``)."""
        for index in (self.decided, self.typology.index):
            row = index.position(session_id)
            if row >= 0:
                return index.vectors[row]
        if self.representation is None:
            raise ConfigError("labelled or decided sessions must exist to compare with, got "
                              "none. Decide a case or ingest labels first.")
        return self.representation.vectors(store, [session_id])[0]

    def vectors(self, store: Store | None, session_ids: Sequence[str]) -> np.ndarray:
        ids = [str(s) for s in session_ids]
        if self.representation is None:
            raise ConfigError("labelled or decided sessions must exist to compare with, got "
                              "none. Decide a case or ingest labels first.")
        out = np.zeros((len(ids), self.decided.vectors.shape[1] if len(self.decided) else
                        len(self.representation.centre)), dtype=np.float32)
        todo = []
        for i, sid in enumerate(ids):
            for index in (self.decided, self.typology.index):
                row = index.position(sid)
                if row >= 0:
                    out[i] = index.vectors[row]
                    break
            else:
                todo.append(i)
        if todo:
            out[todo] = self.representation.vectors(store, [ids[i] for i in todo])
        return out


def similarity_key(store: Store) -> tuple:
    """Changes whenever the index would: an ingest, a label or a decision, a new feature
    model. Cheap (a few small queries)."""
    from core.similar.vectors import representation_spec

    spec = representation_spec(store)
    events = tuple(str(v) for v in store.summary.events_fingerprint())
    labels = tuple(sorted((k, tuple(v)) for k, v in store.labels.versions().items()))
    return (str(store.path), events, labels, store.similar.decided_cases_version(),
            None if spec is None else str(spec.get("hash")))


def build_similarity_index(store: Store, *, max_pool: int = MAX_TYPOLOGY_POOL,
                           seed: int = 0) -> SimilarityIndex:
    """Index the decided sessions and the labelled anomalies with a scenario."""
    from core.schema import LABEL_SOURCES
    from core.similar.typology import TypologyModel, typology_pool
    from core.similar.vectors import VectorIndex, build_representation

    key = similarity_key(store)
    decided = store.similar.decided_sessions()
    decided["session_id"] = decided["session_id"].astype(str).to_numpy(dtype=object)
    pool = typology_pool(store.labels.session_labels(LABEL_SOURCES))
    if len(pool) > max_pool:
        pool = pool.sample(n=max_pool, random_state=seed).sort_index().reset_index(drop=True)
    needed = list(dict.fromkeys([*decided["session_id"], *pool["session_id"]]))
    try:
        rep, vectors = build_representation(store, needed, seed=seed)
    except ConfigError:
        if needed:
            raise
        rep, vectors = None, np.zeros((0, 0), dtype=np.float32)
    n_dec = len(decided)
    decided_index = VectorIndex(decided["session_id"].to_numpy(dtype=object),
                                vectors[:n_dec] if n_dec else _empty(vectors))
    row = {s: i for i, s in enumerate(needed)}
    pool_rows = [row[s] for s in pool["session_id"]]
    typology = TypologyModel.fit(pool["session_id"].to_numpy(dtype=object),
                                 vectors[pool_rows] if pool_rows else _empty(vectors),
                                 pool["scenario"].to_numpy(dtype=object), seed=seed)
    log.info("similarity index: %d decided sessions, %d labelled anomalies (cut %.3f)",
             n_dec, len(pool), typology.cut)
    return SimilarityIndex(key, rep, decided_index, decided.reset_index(drop=True), typology)


def _empty(vectors: np.ndarray) -> np.ndarray:
    return np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)


def _check_session(store: Store, session_id: str) -> str:
    session_id = str(session_id)
    if store.sessions.owner(session_id) is None:
        raise ConfigError(f"session must be a stored session id, got {session_id!r}. Pick one "
                          "from the queue, a user's page or `anomalyst scores`.")
    return session_id


def typology_of(store: Store, session_id: str, *, index: SimilarityIndex | None = None
                ) -> TypologyGuess:
    """The typology guess of one session (it does not vote for itself)."""
    session_id = _check_session(store, session_id)
    index = index if index is not None else build_similarity_index(store)
    if len(index.typology) == 0:
        return index.typology.guess_many([session_id], np.zeros((1, 1), np.float32))[0]
    return index.typology.guess(session_id, index.vector(store, session_id))


def similar_cases(store: Store, session_id: str, *, k: int = DEFAULT_K,
                  index: SimilarityIndex | None = None) -> pd.DataFrame:
    """The ``k`` decided sessions most similar to ``session_id`` (itself left out), most
    similar first: :data:`SIMILAR_COLUMNS`. ConfigError when nothing is decided yet."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ConfigError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}.")
    session_id = _check_session(store, session_id)
    index = index if index is not None else build_similarity_index(store)
    if index.n_decided == 0:
        raise ConfigError("decided sessions must exist to compare with, got none. Decide a "
                          "case (or ingest analyst labels) first.")
    rows, sims = index.decided.nearest(index.vector(store, session_id), k, exclude=session_id)
    return _similar_table(index, rows, sims)


def _similar_table(index: SimilarityIndex, rows: np.ndarray, sims: np.ndarray) -> pd.DataFrame:
    meta = index.decided_meta.iloc[rows]
    scenario = meta["scenario"].astype(object).where(meta["scenario"].notna(), None)
    return pd.DataFrame({
        "session_id": meta["session_id"].astype(str).to_numpy(dtype=object),
        "user_id": meta["user_id"].astype(str).to_numpy(dtype=object),
        "similarity": np.round(sims.astype(np.float64), 4),
        "decision": meta["decision"].astype(str).to_numpy(dtype=object),
        "scenario": scenario.to_numpy(dtype=object),
        "typology": [typology_name(s) if s is not None else "" for s in scenario],
        "case_id": meta["case_id"].astype(object).where(meta["case_id"].notna(), None
                                                        ).to_numpy(dtype=object),
        "decided_at": pd.to_datetime(meta["decided_at"]).to_numpy(),
    }, columns=SIMILAR_COLUMNS)


def queue_typology(store: Store | None, session_ids: Sequence[str], *,
                   index: SimilarityIndex, limit: int = MAX_QUEUE) -> pd.DataFrame:
    """session_id, typology, confidence, scenario of the first ``limit`` sessions (the
    queue's order); 'no close match' where the guess has none."""
    ids = [str(s) for s in list(session_ids)[:limit]]
    if not ids:
        return pd.DataFrame(columns=["session_id", "typology", "confidence", "scenario"])
    if len(index.typology) == 0:
        guesses = index.typology.guess_many(ids, np.zeros((len(ids), 1), np.float32))
    else:
        guesses = index.typology.guess_many(ids, index.vectors(store, ids))
    return pd.DataFrame({"session_id": ids, "typology": [g.name for g in guesses],
                         "confidence": [round(g.confidence, 3) if g.scenario else None
                                        for g in guesses],
                         "scenario": [g.scenario for g in guesses]})


def typology_counts(guesses: pd.DataFrame) -> pd.DataFrame:
    """typology, sessions, share, mean confidence: the breakdown of ``queue_typology``."""
    if guesses.empty:
        return pd.DataFrame(columns=["typology", "sessions", "share", "mean confidence"])
    out = (guesses.groupby("typology", sort=False)
           .agg(sessions=("session_id", "size"), conf=("confidence", "mean"))
           .reset_index().sort_values(["sessions", "typology"], ascending=[False, True]))
    out["share"] = (out["sessions"] / out["sessions"].sum()).round(3)
    out["mean confidence"] = out.pop("conf").round(2)
    return out[["typology", "sessions", "share", "mean confidence"]].reset_index(drop=True)


def decision_breakdown(store: Store) -> pd.DataFrame:
    """typology, decision, sessions, cases: decided sessions and decided cases by scenario
    and decision (readable typology names)."""
    sessions = store.similar.decided_breakdown().set_index(["scenario", "decision"])[
        "n_sessions"].rename("sessions")
    cases = store.similar.case_breakdown().set_index(["scenario", "decision"])["n_cases"]
    out = pd.concat([sessions, cases.rename("cases")], axis=1).fillna(0).astype("int64")
    out = out.reset_index().rename(columns={"level_0": "scenario", "level_1": "decision"})
    if out.empty:
        return pd.DataFrame(columns=["typology", "decision", "sessions", "cases"])
    out.insert(0, "typology", [typology_name(s) for s in out["scenario"]])
    return (out.drop(columns="scenario").sort_values(["sessions", "cases"], ascending=False)
            .reset_index(drop=True))


def describe(index: SimilarityIndex) -> dict[str, Any]:
    """How big the index is and the typology's cut, for captions and --json."""
    return {"decided_sessions": index.n_decided, "labelled_anomalies": len(index.typology),
            "distance_cut": None if not np.isfinite(index.typology.cut)
            else round(float(index.typology.cut), 4)}
