"""Computing one session's explanation under one model: the store side of ``core.explain``.

Feature models get SHAP against a background of normal training-window sessions; sequence
models get occlusion, their own per-event scores and, when exposed, attention and rollout; an
ensemble gets its stored member contributions plus the explanation of its strongest feature
member (or, without one, of its strongest sequence member). Every model gets a context table
and reasons built from the same session features, the user's other sessions and a population
sample, computed in one feature build.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.datasets import EventSequences, FeatureMatrix
from core.detectors.registry import combines_members, explain_preference
from core.errors import ConfigError, ModelError
from core.explain.cache import utc_now
from core.explain.context import Reference
from core.explain.explanation import AttentionMaps, FeatureAttribution, SessionExplanation
from core.explain.reasons import (
    N_REASONS,
    event_reasons,
    feature_reasons,
    feature_sentence,
    member_reason,
)
from core.explain.sequence import event_contributions
from core.explain.shap_features import N_BACKGROUND, FeatureExplainer
from core.explain.units import from_units, in_units, units_of
from core.features.spec import DEFAULT_MAX_EVENT_TYPES, OTHER_BUCKET, FeatureSpec
from core.pipeline.inputs import DetectorInput, build_input
from core.pipeline.registry import LoadedModel, input_kind_of, load_model, model_row
from core.store import Store
from core.store.explanations import SessionInfo
from core.thresholds import thresholds_in_force

__all__ = [
    "ModelRank", "SessionInfo", "background_ids", "choose_model", "compute", "ensemble_members",
    "model_ranks",
    "session_info",
]

log = logging.getLogger(__name__)

USER_SESSIONS = 500
"""The user's baseline uses at most this many of their other sessions (the most recent)."""
POPULATION_SAMPLE = 1000
"""Sessions in the population sample whose median is the 'typical session' (±3% quantile)."""
N_CONTEXT = 10
"""Rows of the context table of a feature model: the features with the largest |SHAP|."""
MAX_EVENTS_SHOWN = 500
"""A feature model's explanation lists at most the session's last this-many events."""


@dataclass(frozen=True)
class ModelRank:
    """How one model scored the session."""

    model_id: str
    detector: str
    created_at: Any
    score: float
    percentile: float
    threshold: float
    is_flagged: bool


def session_info(store: Store, session_id: str) -> SessionInfo:
    """The session's row; ConfigError when the store has no such session."""
    info = store.explanations.session(session_id)
    if info is None:
        raise ConfigError(
            f"session must be one of the store's sessions, got {session_id!r}. Copy a "
            "session id from `anomalyst scores` or the flagged queue."
        )
    return info


def model_ranks(store: Store, info: SessionInfo) -> list[ModelRank]:
    """Every model that scored the session: score, percentile, threshold in force, flag."""
    frame = store.explanations.session_models(info.session_id)
    out = []
    for r in frame.to_dict(orient="records"):
        threshold = thresholds_in_force(store, str(r["model_id"])).at(
            tenure=info.tenure, country=info.country)
        percentile = 100.0 * r["n_lower"] / max(int(r["n_scores"]) - 1, 1)
        out.append(ModelRank(str(r["model_id"]), str(r["detector"]), r["created_at"],
                             float(r["score"]), float(percentile), threshold,
                             bool(r["score"] >= threshold)))
    return out


def choose_model(ranks: list[ModelRank]) -> ModelRank:
    """The model under which the session ranks highest (ties: preferred detector, newest)."""
    def key(rank: ModelRank) -> tuple[float, int, Any]:
        return rank.percentile, explain_preference(rank.detector), str(rank.created_at)

    return max(ranks, key=key)


def feature_matrix(built: DetectorInput) -> FeatureMatrix:
    """The FeatureMatrix of a features build (narrows the type)."""
    if not isinstance(built.data, FeatureMatrix):
        raise ModelError("a features build must hold a FeatureMatrix, got event sequences.")
    return built.data


def event_sequences(built: DetectorInput) -> EventSequences:
    """The EventSequences of a sequences build (narrows the type)."""
    if not isinstance(built.data, EventSequences):
        raise ModelError("a sequences build must hold EventSequences, got a feature matrix.")
    return built.data


_SAMPLES: dict[tuple[Any, ...], list[str]] = {}
"""Samples this process drew (backgrounds, the population), by store, what was asked, and the
events' fingerprint (and the labels', for a background): every explanation uses the same ones,
and drawing them costs 0.1-0.6 s at 1M sessions."""


def _sample(key: tuple[Any, ...], draw: Any) -> list[str]:
    found = _SAMPLES.get(key)
    if found is None:
        found = list(draw())
        if len(_SAMPLES) >= 32:
            _SAMPLES.pop(next(iter(_SAMPLES)))
        _SAMPLES[key] = found
    return list(found)


def background_ids(store: Store, train_end: Any, n: int = N_BACKGROUND) -> list[str]:
    """Up to ``n`` normal sessions of the model's training window (a stable sample), drawn
    again only when the events or the labels changed."""
    key = ("background", str(store.path), str(train_end), n,
           tuple(store.summary.events_fingerprint()),
           tuple(sorted(store.labels.versions().items())))
    return _sample(key, lambda: store.explanations.background_sample(train_end, n))


def population_ids(store: Store, n: int = POPULATION_SAMPLE) -> list[str]:
    """The stable population sample behind "typical session", drawn again after an ingest."""
    key = ("population", str(store.path), n, tuple(store.summary.events_fingerprint()))
    return _sample(key, lambda: store.explanations.population_sample(n))


def build_reference(store: Store, feature_spec: dict[str, Any], info: SessionInfo,
                    extra_ids: list[str]) -> tuple[Reference, DetectorInput, dict[str, int]]:
    """Features of the session, its user's other sessions, a population sample and
    ``extra_ids``, in one build; returns the reference, the build and session -> row."""
    others = store.explanations.user_other_sessions(info.user_id, info.session_id,
                                                    USER_SESSIONS)
    other_ids = others["session_id"].tolist()
    pop_ids = population_ids(store)
    wanted = list(dict.fromkeys([info.session_id, *other_ids, *pop_ids, *extra_ids]))
    built = build_input(store, "features", feature_spec, session_ids=wanted)
    index = {str(s): i for i, s in enumerate(built.meta["session_id"])}
    matrix = feature_matrix(built)
    values = matrix.values
    starts = [info.start_ts, *others["start_ts"].tolist()]
    span = (max(starts) - min(starts)).total_seconds() / 86400 if len(starts) > 1 else float(
        "nan")
    reference = Reference(
        names=tuple(matrix.names), session=values[index[info.session_id]].astype(float),
        user=values[[index[s] for s in other_ids]].astype(float).reshape(-1, values.shape[1]),
        population=values[[index[s] for s in pop_ids]].astype(float).reshape(
            -1, values.shape[1]),
        user_span_days=span,
        duration_s=(info.end_ts - info.start_ts).total_seconds())
    return reference, built, index


def session_events(store: Store, session_id: str) -> pd.DataFrame:
    return store.explanations.session_events(session_id)


@dataclass
class Parts:
    """What one model contributes to an explanation."""

    features: FeatureAttribution | None
    events: pd.DataFrame
    contributions: dict[str, np.ndarray]
    attention: np.ndarray | None
    context: pd.DataFrame
    reasons: list[str]
    score: float
    notes: list[str]


def explain_features(store: Store, model: LoadedModel, info: SessionInfo) -> Parts:
    """SHAP of a feature model's score of the session, with context and reasons."""
    bg = background_ids(store, model.train_end)
    if not bg:
        raise ModelError(
            f"background must hold normal sessions before the train end of {model.model_id}, "
            "got none. Train the model on a window that has normal sessions."
        )
    reference, built, index = build_reference(store, model.spec, info, bg)
    matrix = feature_matrix(built)
    background = matrix.take(np.array([index[s] for s in bg]))
    explainer = FeatureExplainer(model.model_id, model.detector, background)
    attribution = explainer.explain(matrix, index[info.session_id])
    order = np.argsort(-np.abs(attribution.shap), kind="stable")
    shap = dict(zip(attribution.names, attribution.shap.tolist(), strict=True))
    context = reference.table([attribution.names[i] for i in order[:N_CONTEXT]], shap)
    positive = [attribution.names[i] for i in np.argsort(-attribution.shap, kind="stable")
                if attribution.shap[i] > 0][: N_CONTEXT * 2]
    sentences = feature_reasons(reference.table(positive, shap),
                                  duration_s=reference.duration_s,
                                  user_span_days=reference.user_span_days)
    events = session_events(store, info.session_id).tail(MAX_EVENTS_SHOWN).reset_index(drop=True)
    events.insert(1, "position", np.arange(len(events)))
    return Parts(attribution, events, {}, None, context, sentences,
                 from_units(attribution.score, attribution.units), [])


def _context_spec(types_first: list[str], vocab: dict[str, int]) -> dict[str, Any]:
    """A feature spec whose event-type columns start with ``types_first``."""
    by_token = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    types = [t for t in dict.fromkeys([*types_first, *by_token]) if t and t != OTHER_BUCKET]
    return {"features": FeatureSpec(tuple(types[:DEFAULT_MAX_EVENT_TYPES])).to_dict()}


def explain_sequence(store: Store, model: LoadedModel, info: SessionInfo) -> Parts:
    """Per-event contributions of a sequence model, with context and reasons."""
    built = build_input(store, "sequences", model.spec, session_ids=[info.session_id])
    data = event_sequences(built)
    k = int(np.count_nonzero(data.mask[0]))
    contributions, maps = event_contributions(model.detector, data, 0)
    score = float(model.detector.score(data)[0])
    units = units_of(model.detector)
    ids = pd.DataFrame({"event_id": data.event_ids[0, :k].astype(str), "position": np.arange(k)})
    events = ids.merge(session_events(store, info.session_id), on="event_id", how="left")
    notes = []
    if info.n_events > k:
        notes.append(f"The model sees the last {k} of the session's {info.n_events} events.")
    drop = contributions["occlusion"]
    top = [int(i) for i in np.argsort(-drop, kind="stable")[:N_REASONS] if drop[i] > 0]
    top_types = list(dict.fromkeys(str(events.iloc[i]["event_type"]) for i in top))
    spec = _context_spec(top_types, dict(data.vocab))
    reference, _, _ = build_reference(store, spec, info, [])
    names = [f"count_log[{t}]" for t in top_types]
    context = reference.table(
        [*names, "n_events_log", "duration_log", "gap_mean_log", "amount_sum_log"])
    sentences = event_reasons(events, contributions, float(in_units(np.array([score]), units)[0]),
                              units=units)
    type_rows = context[context["feature"].isin(names)].to_dict(orient="records")
    sentences += [feature_sentence(r, duration_s=reference.duration_s,
                                     user_span_days=reference.user_span_days)
                  for r in type_rows[:2]]
    return Parts(None, events, contributions, maps, context, sentences, score, notes)


def explain_members(store: Store, detector_name: str, info: SessionInfo,
                    members: pd.DataFrame) -> Parts:
    """An ensemble: its member contributions, then its strongest feature member explained
    (without one, its strongest sequence member)."""
    registered = set(store.models.ids())
    candidates = members[members["member_id"].isin(registered)]
    kinds = {m: input_kind_of(d, {}) for m, d in zip(candidates["member_id"],
                                                     candidates["detector"], strict=True)}
    feature_members = [m for m in candidates["member_id"] if kinds[m] == "features"]
    chosen = feature_members[0] if feature_members else (
        candidates["member_id"].iloc[0] if not candidates.empty else None)
    total = float(members["contribution"].sum())
    lead = member_reason(members, total)
    if chosen is None:
        events = session_events(store, info.session_id).tail(MAX_EVENTS_SHOWN)
        events = events.reset_index(drop=True).assign(position=lambda f: np.arange(len(f)))
        return Parts(None, events, {}, None, pd.DataFrame(), [lead] if lead else [], total,
                     [f"No member of the {detector_name} is a registered model; only the "
                      "member contributions are shown."])
    member = load_model(store, str(chosen))
    explain = explain_features if member.input_kind == "features" else explain_sequence
    parts = explain(store, member, info)
    parts.reasons = ([lead] if lead else []) + parts.reasons
    parts.score = total
    parts.notes.append(f"Explained through its strongest {member.input_kind[:-1]} member, "
                       f"{member.detector_name} ({member.model_id}).")
    return parts


def ensemble_members(store: Store, model_id: str, session_id: str) -> pd.DataFrame:
    """An ensemble's member contributions to the session's score (a member no longer
    registered is named by its id); empty for any other model."""
    members = store.ensembles.contributions(model_id, session_id)
    members["detector"] = members["detector"].where(members["detector"].notna(),
                                                    members["member_id"])
    return members


def compute(store: Store, model_id: str, info: SessionInfo, rank: ModelRank | None
            ) -> SessionExplanation:
    """Explain ``info``'s session under ``model_id`` (no cache involved)."""
    row = model_row(store, model_id)
    detector_name = str(row["detector"])
    members = ensemble_members(store, model_id, info.session_id)
    if not members.empty:  # an ensemble: its members explain it (no need to load it)
        parts = explain_members(store, detector_name, info, members)
        input_kind = "features" if parts.features is not None else "sequences"
    elif combines_members(detector_name):
        raise ModelError(
            f"ensemble member contributions must be stored for session {info.session_id}, got "
            f"none. Score the ensemble again: `anomalyst score --model {model_id}`."
        )
    else:
        model = load_model(store, model_id, row=row)
        input_kind = model.input_kind
        explain = explain_features if input_kind == "features" else explain_sequence
        parts = explain(store, model, info)
    score = parts.score if rank is None else rank.score
    if rank is not None and not np.isclose(parts.score, rank.score, rtol=1e-4, atol=1e-6):
        parts.notes.append(
            f"The stored score {rank.score:.6g} differs from today's {parts.score:.6g}: the "
            "session changed since it was scored. Re-score the model.")
    return SessionExplanation(
        session_id=info.session_id, user_id=info.user_id, model_id=model_id,
        detector=detector_name, input_kind=input_kind, score=score,
        percentile=None if rank is None else rank.percentile,
        threshold=None if rank is None else rank.threshold,
        is_flagged=None if rank is None else rank.is_flagged,
        features=parts.features, events=parts.events,
        event_contributions=parts.contributions,
        attention=None if parts.attention is None else AttentionMaps(parts.attention),
        members=None if members.empty else members, context=parts.context,
        reasons=parts.reasons, computed_at=utc_now(), notes=parts.notes)

