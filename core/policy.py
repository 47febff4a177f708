"""The alert policy: the one definition of "flagged".

A policy names the score that decides (one model: by default the latest ensemble), a
threshold per segment on that score (``core.thresholds`` precedence: country, then tenure,
then all, then the model's own label-free operating point) and an optional daily budget (at
most N alerts a day, the highest risk first). Policies are published as numbered versions;
version 0 is the built-in default that holds until an admin publishes one. Overview, the
queue, the User and Cases pages, reports, ``anomalyst scores`` and ``evaluate`` all ask the
policy in force, and a report freezes the version it was made under.

    >>> import pandas as pd
    >>> table = pd.DataFrame({"score:m1": [0.2, 0.9, 0.95], "tenure": ["new"] * 3,
    ...                       "country": ["DE", "DE", "FR"],
    ...                       "start_ts": pd.to_datetime(["2026-01-01"] * 3)})
    >>> policy = AlertPolicy(version=3, model_id="m1", thresholds={"all": 0.5}, default=0.99)
    >>> policy.flags(table).tolist()
    [False, True, True]
    >>> policy.with_budget(1).flags(table).tolist()
    [False, False, True]
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.json_safe import json_object
from core.risk import RiskCalibration
from core.thresholds import InForce, apply_daily_budget, segment_mask

if TYPE_CHECKING:
    from core.store import Store

MAX_NOTE = 2_000


@dataclass(frozen=True)
class AlertPolicy:
    """One version of the alert policy (``version`` 0: the default, never published)."""

    version: int
    model_id: str
    thresholds: dict[str, float] = field(default_factory=dict)
    default: float = math.inf
    """The model's label-free operating point, used where no segment threshold is set."""
    daily_budget: int | None = None
    detector: str | None = None
    published_by: str | None = None
    published_at: dt.datetime | None = None
    note: str = ""

    @property
    def in_force(self) -> InForce:
        return InForce(dict(self.thresholds), float(self.default))

    @property
    def is_default(self) -> bool:
        return self.version == 0

    def threshold_for(self, segment: str = "all") -> float:
        """The threshold this policy applies to ``segment``'s sessions."""
        return self.in_force.for_segment(segment)

    def lowest_threshold(self) -> float:
        """No session scoring below this is flagged in any segment (inf: none can be)."""
        finite = [v for v in (*self.thresholds.values(), self.default) if math.isfinite(v)]
        return min(finite, default=math.inf)

    def flags(self, table: pd.DataFrame) -> np.ndarray:
        """Which rows of a score table (``score:<model_id>``, tenure, country, start_ts) are
        flagged: at or above their segment's threshold, then within the daily budget."""
        column = f"score:{self.model_id}"
        if column not in table.columns:
            return np.zeros(len(table), bool)
        flagged = self.in_force.flags(table, self.model_id)
        if self.daily_budget is None or not flagged.any():
            return flagged
        scores = table[column].to_numpy(np.float64)
        return apply_daily_budget(scores, flagged, table["start_ts"], self.daily_budget)

    def with_budget(self, daily_budget: int | None) -> AlertPolicy:
        return replace(self, daily_budget=daily_budget)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "model_id": self.model_id, "detector": self.detector,
            "thresholds": {k: float(v) for k, v in sorted(self.thresholds.items())},
            "default_threshold": _finite(self.default), "daily_budget": self.daily_budget,
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "note": self.note,
        }


def check_draft(model_id: str, thresholds: dict[str, float], daily_budget: int | None,
                note: str) -> tuple[dict[str, float], int | None, str]:
    """Validate what an admin asks to publish; returns it cleaned, or raises ConfigError."""
    if not model_id:
        raise ConfigError("a policy needs a model whose score decides. Pick one.")
    clean: dict[str, float] = {}
    for segment, value in thresholds.items():
        segment_mask(pd.DataFrame({"tenure": [], "country": []}), segment)  # raises if bad
        number = float(value)
        if not math.isfinite(number):
            raise ConfigError(f"the threshold for {segment!r} must be a finite number, got "
                              f"{value!r}.")
        clean[segment] = number
    if daily_budget is not None:
        if int(daily_budget) != daily_budget or daily_budget < 1:
            raise ConfigError(f"the daily budget must be a whole number of alerts >= 1, got "
                              f"{daily_budget!r}. Leave it empty for no budget.")
        daily_budget = int(daily_budget)
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise ConfigError(f"the note is {len(text):,} characters; keep it under {MAX_NOTE:,}.")
    return clean, daily_budget, text


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- the policy in force, from the store --------------------------------------------------------
def default_policy_model(store: Store) -> tuple[str, str] | None:
    """(model_id, detector) the default policy scores with: the newest scored ensemble, else
    the newest scored model; None before anything is scored."""
    scored = store.models.scored()
    if scored.empty:
        return None
    from core.detectors.registry import combines_members

    ensembles = scored[[combines_members(str(d)) for d in scored["detector"]]]
    row = (ensembles if not ensembles.empty else scored).iloc[-1]
    return str(row["model_id"]), str(row["detector"])


def policy_in_force(store: Store) -> AlertPolicy | None:
    """The newest published version, else version 0 (the default model with its saved
    thresholds over its operating point); None while no model has scores."""
    from core.pipeline.operating_point import operating_point

    row = store.policies.latest()
    if row is not None:
        return AlertPolicy(
            row.version, row.model_id, row.thresholds,
            operating_point(store, row.model_id).threshold, row.daily_budget, row.detector,
            row.published_by, row.published_at, row.note)
    found = default_policy_model(store)
    if found is None:
        return None
    model_id, detector = found
    return AlertPolicy(0, model_id, store.thresholds.saved(model_id),
                       operating_point(store, model_id).threshold, None, detector,
                       note="default: the newest scored ensemble (else the newest scored "
                            "model) at its saved thresholds, else its label-free operating "
                            "point")


def publish_policy(store: Store, *, analyst: str, model_id: str, thresholds: dict[str, float],
                   daily_budget: int | None = None, note: str = "",
                   now: dt.datetime | None = None) -> AlertPolicy:
    """Validate and append the next version, audited in the same transaction (the store
    must be writable; the front end checks the caller's role first)."""
    from core.cases.audit import now_utc, record

    clean, budget, text = check_draft(model_id, thresholds, daily_budget, note)
    row = store.models.by_id(model_id)
    if row is None:
        known = ", ".join(store.models.ids()) or "none"
        raise ConfigError(f"model must be one of the registered models ({known}), got "
                          f"{model_id!r}.")
    if store.models.is_retired(model_id):
        raise ConfigError(f"model {model_id} is retired: bring it back first with `anomalyst "
                          f"models retire --undo {model_id}`, or choose a model in use.")
    if store.scores.count(model_id) == 0:
        raise ConfigError(f"model {model_id} has no scores: run `anomalyst score --model "
                          f"{model_id}` before a policy can use it.")
    when = now or now_utc()
    with store.transaction():
        version = store.policies.publish(
            model_id=model_id, detector=str(row["detector"]), thresholds=clean,
            daily_budget=budget, published_by=analyst, published_at=when, note=text)
        record(store, analyst, "publish_policy", entity=f"policy:{version}", detail={
            "model_id": model_id, "thresholds": clean, "daily_budget": budget, "note": text},
            now=when)
    published = policy_in_force(store)
    assert published is not None and published.version == version
    return published


# --- risk 0-100 ---------------------------------------------------------------------------------
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


def risk_table(store: Store, policy: AlertPolicy,
               table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every session the policy's model scored: session_id, user_id, start_ts, score, risk
    (0-100, NaN without a calibration) and flagged (the policy's verdict).

    ``table`` is a score table the caller already holds (``core.lookups.score_table`` with the
    policy's model); without it the model's scores are read with the segment columns."""
    if table is None:
        from core.lookups import score_table

        table = score_table(store, [policy.model_id])
    return with_verdicts(risk_scores(store, policy.model_id, table), policy, table)


def risk_scores(store: Store, model_id: str, table: pd.DataFrame) -> pd.DataFrame:
    """session_id, user_id, start_ts, score, risk of every session of ``table`` (a score table
    with ``model_id``) that the model scored: what the policy's thresholds do not change,
    so a front end keeps it while versions are published."""
    scores = table[f"score:{model_id}"].to_numpy(np.float64)
    calibration = risk_calibration(store, model_id)
    risk = calibration.risk(scores) if calibration else np.full(len(scores), np.nan)
    out = table[["session_id", "user_id", "start_ts"]].copy()
    out["score"] = scores
    out["risk"] = risk
    return out[np.isfinite(scores)].reset_index(drop=True)


def with_verdicts(risk: pd.DataFrame, policy: AlertPolicy, table: pd.DataFrame) -> pd.DataFrame:
    """``risk`` (:func:`risk_scores` of ``table``) with ``flagged``: the policy's verdict."""
    scores = table[f"score:{policy.model_id}"].to_numpy(np.float64)
    return risk.assign(flagged=policy.flags(table)[np.isfinite(scores)])

