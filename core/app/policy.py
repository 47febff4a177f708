"""The alert policy and the risk score: what every front end asks before it says "flagged".

    policy = in_force(store)          # the published version, or version 0 (the default)
    table = risk_table(store, policy) # session_id, user_id, start_ts, score, risk, flagged
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.json_safe import json_object
from core.policy import AlertPolicy, policy_in_force, publish_policy
from core.risk import RiskCalibration
from core.store import Store
from core.store.policies import PolicyRow

__all__ = ["AlertPolicy", "PolicyRow", "history", "in_force", "publish", "risk_calibration",
           "risk_kind_text", "risk_table"]

RISK_KIND_TEXT = {
    "probability": "risk = the calibrated probability (x100) that the session is anomalous, "
                   "fitted on the model's labelled validation window",
    "percentile": "risk = the score's percentile among the model's own training sessions "
                  "(how unusual, not how likely to be fraud: too few labels to calibrate)",
}


def in_force(store: Store) -> AlertPolicy | None:
    """The policy in force; None while no model has scores."""
    return policy_in_force(store)


def publish(store: Store, *, analyst: str, model_id: str, thresholds: dict[str, float],
            daily_budget: int | None = None, note: str = "") -> AlertPolicy:
    """Publish the next version (the store is writable; the front end checked the role)."""
    return publish_policy(store, analyst=analyst, model_id=model_id, thresholds=thresholds,
                          daily_budget=daily_budget, note=note)


def history(store: Store) -> list[PolicyRow]:
    """Every published version, newest first."""
    return store.policies.history()


def risk_calibration(store: Store, model_id: str) -> RiskCalibration | None:
    """The model's risk mapping: the calibration stored at training, else the training
    percentile from its score reference; None for a model that kept neither."""
    row = store.models.by_id(model_id)
    metrics = json_object(row.get("metrics")) if row else {}
    stored = metrics.get("risk_calibration")
    if stored:
        return RiskCalibration.from_dict(stored)
    reference = metrics.get("score_reference")
    if reference:
        from core.operating_point import ScoreReference

        return RiskCalibration("percentile", ScoreReference.from_dict(reference).pooled)
    return None


def risk_kind_text(calibration: RiskCalibration | None) -> str:
    """One sentence on what the risk number means for this model."""
    if calibration is None:
        return "risk is not available: the model predates training references; retrain it"
    return RISK_KIND_TEXT[calibration.kind]


def risk_table(store: Store, policy: AlertPolicy,
               table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every session the policy's model scored: session_id, user_id, start_ts, score, risk
    (0-100, NaN without a calibration) and flagged (the policy's verdict).

    ``table`` is a score table the caller already holds (``core.lookups.score_table`` with the
    policy's model); without it the model's scores are read with the segment columns."""
    if table is None:
        from core.lookups import score_table

        table = score_table(store, [policy.model_id])
    scores = table[f"score:{policy.model_id}"].to_numpy(np.float64)
    calibration = risk_calibration(store, policy.model_id)
    risk = calibration.risk(scores) if calibration else np.full(len(scores), np.nan)
    out = table[["session_id", "user_id", "start_ts"]].copy()
    out["score"] = scores
    out["risk"] = risk
    out["flagged"] = policy.flags(table)
    return out[np.isfinite(scores)].reset_index(drop=True)

