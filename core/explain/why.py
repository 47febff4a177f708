"""One "Why" per session: the top reasons across the models that flag it, de-duplicated and
ranked by their share of the risk.

Every model explains the session in its own terms: a feature model by SHAP over its features,
a sequence model by the score drop when each event is removed (occlusion), an ensemble by its
members' contributions. An analyst needs one answer, so:

1. **Which models.** The models whose score reaches their own threshold for the session; when
   none does, the alert policy's model (else the model ranking the session highest). An
   ensemble stands for its members, each weighted by its contribution to the ensemble's score,
   so a reason is not counted twice. At most ``MAX_MODELS`` models, by weight; weights sum to 1.
2. **Topics.** Within a model, each positive contribution is mapped to a topic: the features
   ``count_log[payment_failed]``, ``share[payment_failed]`` and ``n_payment_failed_log`` and the
   occluded ``payment_failed`` events all say "failed payments" (``core.explain.context.topic``).
   A model's topic share is its positive contributions to the topic over all its positive
   contributions (in log-odds for probability outputs, ``core.explain.units``).
3. **Ranking.** A topic's share of the risk is the weighted sum of the models' shares. Topics
   under ``MIN_SHARE`` are dropped, and the first ``N_REASONS`` are kept.
4. **Words.** Each reason is a sentence with the session's value beside the user's typical
   value and the population's (``core.explain.reasons.feature_sentence``), with readable
   feature names, never ``count_log[...]``.

    >>> shares = {"a": {"type:x": 0.9, "gap": 0.1}, "b": {"type:x": 0.2, "is_new_device": 0.8}}
    >>> combine_shares(shares, {"a": 0.5, "b": 0.5})
    [('type:x', 0.55), ('is_new_device', 0.4), ('gap', 0.05)]
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.explain.context import decode, decode_hour, describe, format_value, topic
from core.explain.explanation import SessionExplanation
from core.explain.reasons import feature_sentence

MAX_MODELS = 4
"""Models explained for one Why (the heaviest, after an ensemble is split into members)."""
MIN_SHARE = 0.03
"""Reasons with a smaller share of the risk are dropped."""
N_REASONS = 5
"""Reasons shown, at most."""


@dataclass(frozen=True)
class ModelWeight:
    """A model the Why draws on, and its weight (the weights sum to 1)."""

    model_id: str
    detector: str
    weight: float
    why: str  # "flags the session", "member of ensemble …", "the alert policy's model", ...


@dataclass(frozen=True)
class Reason:
    """One reason: a topic, its sentence and its share of the risk (0-1).

    ``event_ids`` are the session's events the reason is about, most telling first (for a
    topic about an event type: its events, ordered by occlusion when a sequence model scored
    them); empty for topics that are not about events (a new device, the hour).
    """

    topic: str
    text: str
    share: float
    detectors: tuple[str, ...]
    feature: str | None = None
    event_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "text": self.text, "share": round(float(self.share), 4),
                "detectors": list(self.detectors), "feature": self.feature,
                "event_ids": list(self.event_ids)}


@dataclass(frozen=True)
class Why:
    """The combined explanation of one session."""

    session_id: str
    user_id: str
    reasons: tuple[Reason, ...]
    models: tuple[ModelWeight, ...]
    n_dropped: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        """The reasons as plain text lines with their share, for a page, report or CLI."""
        return [f"{r.text} — {r.share * 100:.0f}% of the risk ({', '.join(r.detectors)})"
                for r in self.reasons]

    def models_text(self) -> str:
        """The models and their weights, by detector; by model id where two models share a
        detector ('zscore (60%), vae (40%)')."""
        shared = {d for d in (m.detector for m in self.models)
                  if sum(m.detector == d for m in self.models) > 1}
        return ", ".join(f"{m.model_id if m.detector in shared else m.detector} "
                         f"({m.weight * 100:.0f}%)" for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "user_id": self.user_id,
                "reasons": [r.to_dict() for r in self.reasons],
                "models": [{"model_id": m.model_id, "detector": m.detector,
                            "weight": round(m.weight, 4), "why": m.why} for m in self.models],
                "n_dropped": self.n_dropped, "notes": list(self.notes)}


# --- choosing the models --------------------------------------------------------------------------
def choose_weights(ranks: list[Any], policy_model: str | None,
                   members_of: dict[str, pd.DataFrame], registered: set[str],
                   detector_of: dict[str, str], *, max_models: int = MAX_MODELS,
                   ) -> list[ModelWeight]:
    """The models to explain and their weights.

    ``ranks``: ``core.explain.session.ModelRank`` of every model that scored the session;
    ``members_of``: ensemble id -> its member contributions (member_id, contribution);
    ``registered``: model ids that can be loaded; ``detector_of``: model id -> detector.
    """
    by_id = {r.model_id: r for r in ranks}
    chosen = [r for r in ranks if r.is_flagged]
    reason = {r.model_id: "flags the session" for r in chosen}
    if not chosen:
        fallback = by_id.get(policy_model or "") or (
            max(ranks, key=lambda r: r.percentile) if ranks else None)
        if fallback is None:
            return []
        chosen = [fallback]
        reason[fallback.model_id] = ("the alert policy's model (no model flags the session)"
                                     if fallback.model_id == policy_model else
                                     "ranks the session highest (no model flags it)")
    weights: dict[str, float] = defaultdict(float)
    why: dict[str, str] = {}
    for rank in chosen:
        share = 1.0 / len(chosen)
        members = members_of.get(rank.model_id)
        if members is not None and not members.empty:
            usable = members[members["member_id"].isin(registered)
                             & (members["contribution"] > 0)]
            total = float(usable["contribution"].sum())
            if total > 0:
                for m, c in zip(usable["member_id"], usable["contribution"], strict=True):
                    weights[str(m)] += share * float(c) / total
                    why.setdefault(str(m), f"member of {rank.detector} {rank.model_id}")
                continue
        if rank.model_id in registered:
            weights[rank.model_id] += share
            why.setdefault(rank.model_id, reason[rank.model_id])
    top = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:max_models]
    total = sum(w for _, w in top)
    return [ModelWeight(m, detector_of.get(m, "?"), w / total, why[m]) for m, w in top
            if total > 0]


# --- topics within one model ----------------------------------------------------------------------
@dataclass
class TopicEvidence:
    """What one model says about one topic; the sentence is written only for topics kept."""

    share: float
    event_ids: list[str]
    explanation: SessionExplanation
    names: list[str]  # the model's inputs behind the topic, largest first
    fallback: str | None = None  # the sentence when no input has a context row

    def sentence(self, duration_s: float) -> tuple[str | None, str | None]:
        """(sentence, feature) for the topic."""
        text, feature = _sentence(self.explanation, self.names, duration_s)
        return (text, feature) if text is not None else (self.fallback, self.names[0])


def _type_of(topic_key: str) -> str | None:
    return topic_key[len("type:"):] if topic_key.startswith("type:") else None


def _events_of_type(events: pd.DataFrame, event_type: str) -> list[str]:
    if events.empty or "event_type" not in events or "event_id" not in events:
        return []
    rows = events[events["event_type"].astype(str) == event_type]
    return [str(e) for e in rows["event_id"][::-1]]  # the latest first


def _sentence(explanation: SessionExplanation, names: list[str], duration_s: float
              ) -> tuple[str | None, str | None]:
    """(sentence, feature) for a topic from the explanation's context rows, else from the
    attribution's own values; counts are told first."""
    context = explanation.context
    if not context.empty and "kind" in context:
        wanted = list(names)
        if any(describe(n)[0] == "hour" for n in names):  # the hour is read from both
            wanted += [n for n in ("hour_sin", "hour_cos") if n not in wanted]
        rows = context[context["feature"].isin(wanted)].to_dict(orient="records")
        rows.sort(key=lambda r: r["kind"] != "count")
        if rows:
            return feature_sentence(rows[0], duration_s=duration_s,
                                    user_span_days=float("nan")), str(rows[0]["feature"])
    f = explanation.features
    if f is not None:
        for name in names:
            if name in f.names:
                kind, meaning = describe(name)
                value = float(f.values[f.names.index(name)])
                if kind != "hour":
                    shown = format_value(kind, float(decode(kind, np.array([value]))[0]))
                elif "hour_sin" in f.names and "hour_cos" in f.names:
                    shown = format_value("hour", decode_hour(
                        np.array([f.values[f.names.index("hour_sin")]]),
                        np.array([f.values[f.names.index("hour_cos")]])))
                else:
                    continue
                return f"{readable_name(name)}: {shown}", name
    return None, None


def feature_topics(explanation: SessionExplanation, duration_s: float
                   ) -> dict[str, TopicEvidence]:
    """Topic -> evidence from a feature model's SHAP (positive contributions only)."""
    f = explanation.features
    if f is None:
        return {}
    positive = np.clip(np.nan_to_num(f.shap, nan=0.0), 0.0, None)
    total = float(positive.sum())
    if total <= 0:
        return {}
    grouped: dict[str, list[str]] = defaultdict(list)
    sums: dict[str, float] = defaultdict(float)
    for name, value in zip(f.names, positive, strict=True):
        if value > 0:
            key = topic(name)
            grouped[key].append(name)
            sums[key] += float(value)
    out = {}
    column = {n: i for i, n in enumerate(f.names)}
    for key, names in grouped.items():
        names.sort(key=lambda n: -positive[column[n]])
        kind = _type_of(key)
        out[key] = TopicEvidence(sums[key] / total,
                                 _events_of_type(explanation.events, kind) if kind else [],
                                 explanation, names)
    return out


def event_topics(explanation: SessionExplanation, duration_s: float
                 ) -> dict[str, TopicEvidence]:
    """Topic -> evidence from a sequence model's occlusion: events grouped by type."""
    drop = explanation.event_contributions.get("occlusion")
    events = explanation.events
    if drop is None or len(drop) != len(events) or events.empty:
        return {}
    positive = np.clip(np.nan_to_num(drop, nan=0.0), 0.0, None)
    total = float(positive.sum())
    if total <= 0:
        return {}
    types = events["event_type"].astype(str).to_numpy()
    ids = events["event_id"].astype(str).to_numpy() if "event_id" in events else (
        np.array([""] * len(events)))
    out = {}
    for event_type in dict.fromkeys(types[np.argsort(-positive, kind="stable")]):
        at = np.flatnonzero((types == event_type) & (positive > 0))
        if not len(at):
            continue
        at = at[np.argsort(-positive[at], kind="stable")]
        n = int((types == event_type).sum())
        out["type:" + event_type] = TopicEvidence(
            float(positive[at].sum()) / total, [str(i) for i in ids[at]], explanation,
            [f"count_log[{event_type}]"],
            f"{n} {event_type} {'event' if n == 1 else 'events'} in the session")
    return out


def model_topics(explanation: SessionExplanation, duration_s: float
                 ) -> dict[str, TopicEvidence]:
    """A model's topics: SHAP for feature models, occlusion for sequence models."""
    if explanation.features is not None and explanation.members is None:
        return feature_topics(explanation, duration_s)
    return event_topics(explanation, duration_s)


def combine_shares(shares: dict[str, dict[str, float]], weights: dict[str, float]
                   ) -> list[tuple[str, float]]:
    """(topic, share of the risk) over models, largest first: sum of weight x model share."""
    total: dict[str, float] = defaultdict(float)
    for model, topics in shares.items():
        for key, share in topics.items():
            total[key] += weights.get(model, 0.0) * share
    return sorted(((k, round(v, 12)) for k, v in total.items()), key=lambda kv: (-kv[1], kv[0]))


def combine(session_id: str, user_id: str, weights: list[ModelWeight],
            explanations: dict[str, SessionExplanation], duration_s: float, *,
            min_share: float = MIN_SHARE, n_reasons: int = N_REASONS,
            notes: tuple[str, ...] = ()) -> Why:
    """The Why from each model's explanation (model id -> explanation) and weight."""
    evidence = {m.model_id: model_topics(explanations[m.model_id], duration_s)
                for m in weights if m.model_id in explanations}
    detector_of = {m.model_id: m.detector for m in weights}
    ranked = combine_shares({m: {k: e.share for k, e in t.items()} for m, t in evidence.items()},
                            {m.model_id: m.weight for m in weights})
    kept = [(k, s) for k, s in ranked if s >= min_share]
    weight_of = {w.model_id: w.weight for w in weights}
    reasons = []
    for key, share in kept[:n_reasons]:
        said = [(m, t[key]) for m, t in evidence.items() if key in t]
        said.sort(key=lambda mt: -mt[1].share * weight_of[mt[0]])
        written = [e.sentence(duration_s) for _, e in said]
        # A feature model's sentence carries the user's and population's numbers: prefer it.
        with_numbers = [w for w in written if w[0] and "typical" in w[0]]
        text, feature = (with_numbers or [w for w in written if w[0]] or [(None, None)])[0]
        events = list(dict.fromkeys(i for _, e in said for i in e.event_ids))
        reasons.append(Reason(key, text or readable_name(key), share,
                              tuple(dict.fromkeys(detector_of[m] for m, _ in said)),
                              feature, tuple(events)))
    return Why(session_id, user_id, tuple(reasons), tuple(weights),
               n_dropped=max(len(ranked) - len(reasons), 0), notes=notes)


# --- readable names ---------------------------------------------------------------------------
def readable_name(name: str) -> str:
    """A feature (or topic) for people: 'purchase events in the session', not
    ``count_log[purchase]``.

        >>> readable_name("count_log[purchase]")
        'purchase events in the session'
        >>> readable_name("share[search]")
        'share of events that are search'
    """
    if name.startswith("type:"):
        name = f"count_log[{name[len('type:'):]}]"
    kind, meaning = describe(name)
    if name.startswith("share["):
        return f"share of events that are {name[len('share['):-1]}"
    per_session = "in the last" not in meaning and "this user" not in meaning
    if kind in ("count", "distinct") and meaning != name and per_session:
        return f"{meaning} in the session"
    if kind == "share" and meaning.startswith("of "):
        return f"share {meaning.replace(' were ', ' that were ')}"
    return meaning
    return meaning
