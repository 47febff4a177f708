"""What an explanation is: small typed records with a JSON form (for the cache, CLI and reports).

Arrays are numpy in memory and lists in JSON; ``from_dict(to_dict(x))`` rebuilds ``x``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.json_safe import json_records, json_safe

EVENT_METHODS: tuple[str, ...] = (
    "occlusion", "attention", "rollout", "reconstruction_error", "surprise", "event_head",
    "event_score")
"""Per-event attribution methods, in the order pages and the CLI list them."""

METHOD_TEXT: dict[str, str] = {
    "occlusion": "score drop when the event is removed",
    "attention": "last-layer attention from the session token (head average)",
    "rollout": "attention rollout across layers",
    "reconstruction_error": "per-event reconstruction error",
    "surprise": "masked-event surprise, -log p(event type)",
    "event_head": "event head: probability the event is anomalous",
    "event_score": "the detector's per-event score",
}


def _floats(values: Any) -> list[float | None]:
    """JSON-safe floats (NaN and infinity become None)."""
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, float).ravel()]


def _array(values: Any) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _frame_to_records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    return None if frame is None else json_records(frame)


@dataclass(frozen=True)
class FeatureAttribution:
    """SHAP values of one session's anomaly score with respect to its features.

    Attributes:
        model_id: the model explained (for an ensemble: its strongest feature member).
        names: the f feature names, in the model's column order.
        values: (f,) the session's feature values as the model saw them.
        shap: (f,) contributions; ``base_value + shap.sum() == score`` up to
            ``additivity_error``.
        base_value: the mean score over the background sample.
        score: the model's score of the session.
        additivity_error: ``|base_value + shap.sum() - score|``.
        n_background: background sessions (normal, from the training window).
        n_permutations: antithetic permutation pairs sampled.
        units: "score", or "log-odds" for a detector whose score is a probability
            (``core.explain.units``); ``base_value``, ``shap`` and ``score`` are in them.
    """

    model_id: str
    names: tuple[str, ...]
    values: np.ndarray
    shap: np.ndarray
    base_value: float
    score: float
    additivity_error: float
    n_background: int
    n_permutations: int
    units: str = "score"

    def top(self, k: int = 10, *, positive_only: bool = False) -> pd.DataFrame:
        """feature, value, shap: the ``k`` largest |contributions| (or largest positive ones)."""
        order = np.argsort(-(self.shap if positive_only else np.abs(self.shap)), kind="stable")
        if positive_only:
            order = order[self.shap[order] > 0]
        order = order[:k]
        return pd.DataFrame({"feature": [self.names[i] for i in order],
                             "value": self.values[order], "shap": self.shap[order]})

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "names": list(self.names),
                "values": _floats(self.values), "shap": _floats(self.shap),
                "base_value": float(self.base_value), "score": float(self.score),
                "additivity_error": float(self.additivity_error),
                "n_background": int(self.n_background),
                "n_permutations": int(self.n_permutations), "units": self.units}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureAttribution:
        return cls(str(data["model_id"]), tuple(data["names"]), _array(data["values"]),
                   _array(data["shap"]), float(data["base_value"]), float(data["score"]),
                   float(data["additivity_error"]), int(data["n_background"]),
                   int(data["n_permutations"]), str(data.get("units", "score")))


@dataclass(frozen=True)
class AttentionMaps:
    """A sequence model's attention over one session's real events.

    Attributes:
        weights: float32 (n_layers, n_heads, k + 1, k + 1); index 0 is the session ([CLS])
            token, index i + 1 the session's i-th event (the model's column i).
    """

    weights: np.ndarray

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])

    def to_dict(self) -> dict[str, Any]:
        # Four decimals keep the payload of a full 2x4x65x65 map small.
        return {"shape": list(self.weights.shape),
                "weights": np.round(self.weights.astype(np.float64), 4).ravel().tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttentionMaps:
        weights = np.asarray(data["weights"], dtype=np.float32).reshape(data["shape"])
        return cls(weights)


@dataclass(frozen=True)
class Waterfall:
    """What a waterfall chart draws: ``base + values.sum() == total``, in ``units``."""

    names: tuple[str, ...]
    values: np.ndarray
    base: float
    total: float
    units: str
    title: str


@dataclass(frozen=True)
class SessionExplanation:
    """Why one model scored one session as it did.

    Attributes:
        session_id, user_id: the session and its user.
        model_id, detector, input_kind: the model explained ("features" or "sequences").
        score: the model's score of the session; ``percentile`` the share (0-100) of the
            model's scored sessions with a lower score (None when the model has not scored
            the session); ``threshold`` the threshold in force for the session and
            ``is_flagged`` whether the score reaches it.
        features: SHAP attribution (feature models, and an ensemble's strongest feature
            member); None for sequence models.
        events: the session's events as the model saw them (event_id, position, ts,
            event_type, amount, ...), in order; per-event contributions align with its rows.
        event_contributions: method -> (k,) float64 per event (see ``EVENT_METHODS``);
            larger means the event pushed the score up more.
        attention: the attention maps when the model exposes them.
        members: an ensemble's member contributions (member_id, detector, contribution),
            which sum to its score; None otherwise.
        context: feature, meaning, session, user_typical, user_sessions, population_typical:
            the features behind the reasons, decoded to plain units.
        reasons: plain-language sentences, most important first.
        computed_at: UTC time of the computation; ``from_cache`` when read from the store.
    """

    session_id: str
    user_id: str
    model_id: str
    detector: str
    input_kind: str
    score: float
    percentile: float | None
    threshold: float | None
    is_flagged: bool | None
    features: FeatureAttribution | None
    events: pd.DataFrame
    event_contributions: dict[str, np.ndarray]
    attention: AttentionMaps | None
    members: pd.DataFrame | None
    context: pd.DataFrame
    reasons: list[str]
    computed_at: dt.datetime
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)

    def waterfall(self) -> Waterfall | None:
        """The chart that adds up to this model's own score: an ensemble's member
        contributions (from 0 to the ensemble's score), a feature model's SHAP (from the
        background mean to its score, in log-odds for a probability); None otherwise."""
        if self.members is not None and not self.members.empty:
            values = self.members["contribution"].to_numpy(np.float64)
            names = tuple(str(d) for d in self.members["detector"])
            return Waterfall(names, values, 0.0, float(values.sum()), "score",
                             "How each member adds up to the ensemble's score")
        f = self.features
        if f is None:
            return None
        return Waterfall(f.names, f.shap, f.base_value, f.base_value + float(f.shap.sum()),
                         f.units, "From a typical session's score to this one's: what each "
                         "feature adds" if f.units == "score" else "From a typical session's "
                         "log-odds of fraud to this one's: what each feature adds")

    def top_events(self, method: str, k: int = 3) -> pd.DataFrame:
        """The ``k`` events with the largest contribution under ``method``."""
        values = self.event_contributions[method]
        order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:k]
        return self.events.iloc[order].assign(contribution=values[order])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN -> None, times ISO 8601)."""
        return {
            "session_id": self.session_id, "user_id": self.user_id, "model_id": self.model_id,
            "detector": self.detector, "input_kind": self.input_kind,
            "score": json_safe(float(self.score)), "percentile": json_safe(self.percentile),
            "threshold": json_safe(self.threshold), "is_flagged": self.is_flagged,
            "reasons": list(self.reasons),
            "features": None if self.features is None else self.features.to_dict(),
            "events": _frame_to_records(self.events),
            "event_contributions": {k: _floats(v) for k, v in self.event_contributions.items()},
            "attention": None if self.attention is None else self.attention.to_dict(),
            "members": _frame_to_records(self.members),
            "context": _frame_to_records(self.context),
            "computed_at": self.computed_at.isoformat(), "from_cache": self.from_cache,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, from_cache: bool = False) -> SessionExplanation:
        events = pd.DataFrame.from_records(data.get("events") or [])
        if "ts" in events:
            events["ts"] = pd.to_datetime(events["ts"], format="ISO8601")
        members = data.get("members")
        return cls(
            session_id=str(data["session_id"]), user_id=str(data["user_id"]),
            model_id=str(data["model_id"]), detector=str(data["detector"]),
            input_kind=str(data["input_kind"]),
            score=float("nan") if data["score"] is None else float(data["score"]),
            percentile=data.get("percentile"), threshold=data.get("threshold"),
            is_flagged=data.get("is_flagged"),
            features=None if data.get("features") is None else FeatureAttribution.from_dict(
                data["features"]),
            events=events,
            event_contributions={k: _array(v) for k, v in
                                 (data.get("event_contributions") or {}).items()},
            attention=None if data.get("attention") is None else AttentionMaps.from_dict(
                data["attention"]),
            members=None if members is None else pd.DataFrame.from_records(members),
            context=pd.DataFrame.from_records(data.get("context") or []),
            reasons=list(data.get("reasons") or []),
            computed_at=dt.datetime.fromisoformat(data["computed_at"]),
            from_cache=from_cache, notes=list(data.get("notes") or []),
        )
