"""Why a session was flagged: SHAP over features, per-event contributions, plain reasons.

    >>> from core.explain import explain_session
    >>> # with Store.open(path) as store:
    >>> #     why = explain_session(store, "s000123")          # the model that ranks it highest
    >>> #     why.reasons, why.features.top(5), why.top_events("occlusion")

``model_id=None`` explains the session under the scored model that ranks it highest (largest
percentile; ties go to ensemble, transformer, autoencoder, then the newest model): that is the
model that flagged it most strongly. Explanations are cached in the store's ``explanations``
table and reused while the model's score of the session is unchanged; a writable store
receives every new explanation, a read-only one is only read (see ``save_explanation``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.detectors.registry import combines_members
from core.errors import ConfigError
from core.explain import cache
from core.explain.context import display_table, format_value
from core.explain.explanation import (
    EVENT_METHODS,
    METHOD_TEXT,
    AttentionMaps,
    FeatureAttribution,
    SessionExplanation,
)
from core.explain.global_view import flagged_session_ids, global_shap
from core.explain.session import (
    ModelRank,
    choose_model,
    compute,
    ensemble_members,
    model_ranks,
    session_info,
)
from core.explain.shap_features import FeatureExplainer, mean_abs_shap, permutation_shap
from core.explain.why import Reason, Why, choose_weights, combine, readable_name
from core.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "EVENT_METHODS",
    "METHOD_TEXT",
    "AttentionMaps",
    "ExplainedSession",
    "FeatureAttribution",
    "FeatureExplainer",
    "SessionExplanation",
    "display_table",
    "Reason",
    "Why",
    "WhyExplained",
    "explain_session",
    "explain_why",
    "explain_with_models",
    "flagged_session_ids",
    "format_value",
    "global_shap",
    "mean_abs_shap",
    "permutation_shap",
    "readable_name",
    "save_explanation",
]


MODEL_COLUMNS = ["model_id", "detector", "score", "percentile", "is_flagged"]


@dataclass(frozen=True)
class ExplainedSession:
    """A session's explanation and every model's view of it, from one lookup and ranking."""

    explanation: SessionExplanation
    ranks: tuple[ModelRank, ...]

    def models(self) -> pd.DataFrame:
        """model_id, detector, score, percentile, is_flagged of each model that scored it."""
        return pd.DataFrame([{"model_id": r.model_id, "detector": r.detector, "score": r.score,
                              "percentile": r.percentile, "is_flagged": r.is_flagged}
                             for r in self.ranks], columns=MODEL_COLUMNS)


def explain_session(store: Store, session_id: str, *, model_id: str | None = None,
                    use_cache: bool = True, save: bool | None = None) -> SessionExplanation:
    """Explain why ``model_id`` (default: the model ranking it highest) scored the session.

    ``use_cache``: return the stored explanation while it matches the current score.
    ``save``: store a newly computed explanation (default: when the store is writable).
    Unknown sessions and models raise ConfigError / ModelError.
    """
    return explain_with_models(store, session_id, model_id=model_id, use_cache=use_cache,
                               save=save).explanation


def explain_with_models(store: Store, session_id: str, *, model_id: str | None = None,
                        use_cache: bool = True, save: bool | None = None) -> ExplainedSession:
    """``explain_session`` together with every model's rank of the session: a page showing
    both needs one store opening, and the session is looked up and ranked once."""
    info = session_info(store, session_id)
    ranked = tuple(model_ranks(store, info))
    ranks = {r.model_id: r for r in ranked}
    if model_id is None:
        if not ranks:
            raise ConfigError(
                f"session must be scored by at least one model to pick one, got none for "
                f"{session_id!r}. Pass --model ID or score the session (`anomalyst score`)."
            )
        model_id = choose_model(list(ranks.values())).model_id
    explanation = _explained(store, info, ranks.get(model_id), model_id, use_cache=use_cache,
                             save=save)
    return ExplainedSession(explanation, ranked)


def _explained(store: Store, info: Any, rank: ModelRank | None, model_id: str, *,
               use_cache: bool, save: bool | None) -> SessionExplanation:
    """The cached explanation while it is current, else a new one (saved when writable)."""
    if use_cache:
        cached = cache.load(store, model_id, info.session_id)
        if cached is not None and cache.is_current(cached, None if rank is None else rank.score):
            return cached
    explanation = compute(store, model_id, info, rank)
    if save if save is not None else not store.read_only:
        save_explanation(store, explanation)
    return explanation


@dataclass(frozen=True)
class WhyExplained:
    """The combined Why, each model's own explanation behind it, and every model's rank."""

    why: Why
    explanations: dict[str, SessionExplanation]
    ranks: tuple[ModelRank, ...]


def explain_why(store: Store, session_id: str, *, policy_model: str | None = None,
                use_cache: bool = True, save: bool | None = None) -> WhyExplained:
    """One Why for the session across the models that flag it (``core.explain.why``).

    ``policy_model``: the alert policy's model, explained when no model flags the session.
    """
    with store.snapshot_reads():
        return _explain_why(store, session_id, policy_model=policy_model,
                            use_cache=use_cache, save=save)


def _explain_why(store: Store, session_id: str, *, policy_model: str | None,
                 use_cache: bool, save: bool | None) -> WhyExplained:
    info = session_info(store, session_id)
    ranked = tuple(model_ranks(store, info))
    if not ranked:
        raise ConfigError(
            f"session must be scored by at least one model to be explained, got none for "
            f"{session_id!r}. Score it first (`anomalyst score`)."
        )
    ranks = {r.model_id: r for r in ranked}
    members_of = {r.model_id: ensemble_members(store, r.model_id, info.session_id)
                  for r in ranked if combines_members(r.detector)}
    registered = set(store.models.ids())
    detector_of = {r.model_id: r.detector for r in ranked}
    for members in members_of.values():
        detector_of.update({str(m): str(d) for m, d in zip(
            members["member_id"], members["detector"], strict=True)})
    weights = choose_weights(list(ranked), policy_model, members_of, registered, detector_of)
    explanations = {w.model_id: _explained(store, info, ranks.get(w.model_id), w.model_id,
                                           use_cache=use_cache, save=save) for w in weights}
    duration_s = (info.end_ts - info.start_ts).total_seconds()
    notes = []
    if not any(r.is_flagged for r in ranked):
        notes.append("No model's score reaches its threshold for this session: these are the "
                     "reasons it scores as high as it does.")
    why = combine(info.session_id, info.user_id, weights, explanations, duration_s,
                  notes=tuple(notes))
    return WhyExplained(why, explanations, ranked)


def save_explanation(store: Store, explanation: SessionExplanation) -> None:
    """Store ``explanation`` in the cache (replacing that model and session's rows)."""
    n = cache.save(store, explanation)
    log.info("cached %d explanation rows for %s under %s", n, explanation.session_id,
             explanation.model_id)
