"""The alert policy and the risk score: what every front end asks before it says "flagged".

    policy = in_force(store)          # the published version, or version 0 (the default)
    table = risk_table(store, policy) # session_id, user_id, start_ts, score, risk, flagged
"""

from __future__ import annotations

from core.policy import (
    AlertPolicy,
    policy_in_force,
    publish_policy,
    risk_calibration,
    risk_scores,
    risk_table,
    with_verdicts,
)
from core.risk import RiskCalibration
from core.store import Store
from core.store.policies import PolicyRow

__all__ = ["AlertPolicy", "PolicyRow", "history", "in_force", "publish", "risk_calibration",
           "risk_kind_text", "risk_scores", "risk_table", "with_verdicts"]

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


def risk_kind_text(calibration: RiskCalibration | None) -> str:
    """One sentence on what the risk number means for this model."""
    if calibration is None:
        return "risk is not available: the model predates training references; retrain it"
    text = RISK_KIND_TEXT[calibration.kind]
    if calibration.kind == "probability" and calibration.ece is not None:
        text += (f" (expected calibration error {calibration.ece:.3f}, out of fold, on "
                 f"{calibration.n_labelled:,} labelled sessions)")
    return text


