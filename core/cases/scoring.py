"""Every scored model's view of a few sessions: score, percentile, threshold in force; and
the alert policy's verdict (``flagged``) and risk, the one definition of "flagged".

Used to pick the sessions of a case opened from a user, to freeze a decision's snapshot and to
fill a report. Built once per call site (one score table over all sessions, because percentiles
and the default threshold are relative to every session), then asked about any sessions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import lookups
from core.pipeline.operating_point import operating_point
from core.policy import AlertPolicy, policy_in_force, risk_calibration
from core.store import Store
from core.thresholds import InForce


@dataclass(frozen=True)
class ScoreContext:
    """Scores and thresholds of every scored model over every session."""

    models: pd.DataFrame  # model_id, detector, created_at, train_end, n_scores
    table: pd.DataFrame  # core.lookups.score_table, indexed by session_id
    saved: dict[str, dict[str, float]]  # model -> segment -> saved threshold
    defaults: dict[str, float]  # model -> threshold of the default rule
    in_force: dict[str, np.ndarray]  # model -> threshold in force per row of ``table``
    default_rules: dict[str, str]  # model -> where its default threshold came from
    policy: AlertPolicy | None = None  # the policy in force
    policy_flags: np.ndarray | None = None  # its verdict per row of ``table``
    risk: np.ndarray | None = None  # risk 0-100 per row of ``table`` (NaN where unscored)

    @classmethod
    def build(cls, store: Store) -> ScoreContext:
        models = lookups.scored_models(store)
        ids = models["model_id"].tolist()
        table = lookups.score_table(store, ids)
        saved, defaults, in_force, rules = {}, {}, {}, {}
        for model_id in ids:
            point = operating_point(store, model_id)
            force = InForce(store.thresholds.saved(model_id), point.threshold)
            saved[model_id], defaults[model_id] = force.saved, force.default
            rules[model_id] = point.source
            in_force[model_id] = force.per_session(table["tenure"], table["country"])
        policy = policy_in_force(store)
        flags = risk = None
        if policy is not None and policy.model_id in ids:
            flags = policy.flags(table)
            calibration = risk_calibration(store, policy.model_id)
            scores = table[f"score:{policy.model_id}"].to_numpy(np.float64)
            risk = calibration.risk(scores) if calibration else np.full(len(table), np.nan)
        return cls(models, table.set_index("session_id", drop=False), saved, defaults, in_force,
                   rules, policy, flags, risk)

    def with_flags(self, frame: pd.DataFrame, store: Store) -> pd.DataFrame:
        """``frame`` (model_id, session_id, score, ...) plus, per model, the threshold in force,
        whether the score is at or above it, and the score's percentile among the model's
        training scores; per session, the policy's risk, its verdict ``flagged`` and version."""
        out = frame.copy()
        threshold = np.full(len(out), np.nan)
        percentile = np.full(len(out), np.nan)
        rows = self.table.index.get_indexer(out["session_id"])
        for model_id, part in out.groupby("model_id", sort=False).groups.items():
            at = out.index.get_indexer(part)
            known = rows[at] >= 0
            if str(model_id) in self.in_force:
                threshold[at[known]] = self.in_force[str(model_id)][rows[at][known]]
            point = operating_point(store, str(model_id))
            percentile[at] = point.percentile(out["score"].to_numpy(np.float64)[at])
        out["threshold"] = threshold
        out["above_threshold"] = np.isfinite(threshold) & (
            out["score"].to_numpy(np.float64) >= threshold)
        out["percentile_vs_training"] = np.round(percentile, 3)
        known = rows >= 0
        risk = np.full(len(out), np.nan)
        flagged = np.zeros(len(out), bool)
        if self.risk is not None and self.policy_flags is not None:
            risk[known] = self.risk[rows[known]]
            flagged[known] = self.policy_flags[rows[known]]
        out["risk"] = np.round(risk, 3)
        out["flagged"] = flagged
        out["policy_version"] = self.policy.version if self.policy is not None else pd.NA
        return out

    @property
    def model_ids(self) -> list[str]:
        return self.models["model_id"].tolist()

    def flagged(self, session_ids: Iterable[str]) -> list[str]:
        """The sessions among ``session_ids`` that the policy in force flags."""
        ids = [s for s in session_ids if s in self.table.index]
        if not ids or self.policy_flags is None:
            return []
        rows = self.table.index.get_indexer(ids)
        return [s for s, h in zip(ids, self.policy_flags[rows], strict=True) if h]

    def above_threshold(self, session_ids: Iterable[str], model_id: str) -> list[str]:
        """The sessions among ``session_ids`` at or above ``model_id``'s threshold in force
        (one detector's view, for "what if"; the policy alone decides "flagged")."""
        ids = [s for s in session_ids if s in self.table.index]
        if not ids:
            return []
        rows = self.table.index.get_indexer(ids)
        scores = self.table[f"score:{model_id}"].to_numpy(np.float64)[rows]
        hit = np.isfinite(scores) & (scores >= self.in_force[model_id][rows])
        return [s for s, h in zip(ids, hit, strict=True) if h]

    def sessions(self, session_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Per session: start, segment and, per model, score, percentile, threshold, flag."""
        detector = dict(zip(self.models["model_id"], self.models["detector"], strict=True))
        out = []
        for session_id in session_ids:
            if session_id not in self.table.index:
                continue
            i = int(self.table.index.get_loc(session_id))
            row = self.table.iloc[i]
            scores: dict[str, Any] = {}
            for model_id in self.model_ids:
                score = _finite(row[f"score:{model_id}"])
                threshold = _finite(self.in_force[model_id][i])
                scores[model_id] = {
                    "detector": detector[model_id], "score": score,
                    "percentile": _finite(row[f"pct:{model_id}"]), "threshold": threshold,
                    "above_threshold": bool(score is not None and threshold is not None
                                            and score >= threshold),
                }
            out.append({"session_id": session_id, "user_id": str(row["user_id"]),
                        "start_ts": _iso(row["start_ts"]), "tenure": str(row["tenure"]),
                        "country": str(row["country"]),
                        "risk": None if self.risk is None else _finite(self.risk[i]),
                        "flagged": bool(self.policy_flags is not None and self.policy_flags[i]),
                        "scores": scores})
        return out

    def thresholds(self) -> dict[str, dict[str, Any]]:
        """model -> saved thresholds by segment and the default rule's threshold."""
        return {m: {"saved": dict(self.saved[m]), "default": _finite(self.defaults[m]),
                    "default_rule": self.default_rules[m] + " (when no threshold is saved "
                                    "for the segment)"}
                for m in self.model_ids}

    def policy_dict(self) -> dict[str, Any] | None:
        """The policy in force as JSON-ready values (frozen into snapshots and reports)."""
        return self.policy.to_dict() if self.policy is not None else None

    def model_versions(self) -> list[dict[str, Any]]:
        return [{"model_id": r.model_id, "detector": r.detector, "created_at": _iso(r.created_at),
                 "train_end": _iso(r.train_end), "n_scores": int(r.n_scores)}
                for r in self.models.itertuples()]


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _iso(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).isoformat()
