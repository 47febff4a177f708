"""A registered model's default operating point, and its scores against its training ones.

At training, ``reference_and_point`` scores (a sample of) the training sessions, keeps their
distribution (``core.operating_point.ScoreReference``) and picks the default threshold:

* supervised, with both classes in the time-later validation part: the best-F1 threshold
  there;
* unsupervised over a vetted window whose validation part holds at least
  ``MIN_UNSUPERVISED_VALIDATION_POSITIVES`` labelled anomalies: the best-F1 threshold there
  too (the labels say what a false positive costs against a miss better than any quantile);
* otherwise, where (almost) every training session is labelled normal (a vetted window,
  ``core.pipeline.regime``),
  ``VETTED_RULE``: the training scores are then normal behaviour's, and a quantile of them is
  a false-positive rate (0.5%);
* otherwise the label-free rule (``core.operating_point.DEFAULT_RULE``) on the training and
  validation scores, raised where needed to flag at most ``MAX_DEFAULT_SHARE`` of them: the
  training sessions may hold unlabelled anomalies, and a fence above the bulk flags them;
* or their (1 - contamination) quantile when a contamination is given.

Both are stored in the model's metrics, with the risk mapping (core.risk).
``operating_point(store, model_id)`` reads them back; a model trained before references were
kept falls back to the old rule (top 1% of the store's scores) and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.json_safe import json_object
from core.operating_point import (
    DEFAULT_RULE,
    RULE_TEXT,
    ScoreReference,
    best_f1_threshold,
    threshold_by_rule,
)
from core.pipeline.registry import model_row
from core.risk import RiskCalibration, fit_risk
from core.store import Store

MAX_DEFAULT_SHARE = 0.05
"""The label-free default flags at most this share of the model's training sessions. With
the fence at median + 4 MAD, a cap of 5% gave the best F1 at the default, as a share of the
oracle F1, over ADBench's contaminated sets and the clean generated sets together (median
0.59 against 0.49 for the earlier median + 3 MAD capped at 2%; docs/FEATURES.md, "The
label-free operating point"); the uncapped fence flags 6-12% of some heavy-tailed score
distributions, a queue no team works."""
VETTED_RULE = "q995"
"""The default over a vetted training window: flag 0.5% of normal sessions. On the generated
sets (clean, labelled training windows) it gave a median 0.83 of the oracle F1 against 0.76
for the fence (docs/FEATURES.md); a fence on known-normal scores flags the normal tail."""
MAX_REFERENCE_ROWS = 50_000
"""Training sessions scored for the reference (evenly spaced in time when there are more)."""
MIN_VALIDATION_POSITIVES = 3
MIN_UNSUPERVISED_VALIDATION_POSITIVES = 20
"""Labelled anomalies a vetted window's validation part needs before an unsupervised model
takes its best-F1 threshold there: the model never saw those labels, so the threshold is its
only fit to them, and 20 is what the risk calibration (core.risk) asks for too. Fewer, and
the 99.5th percentile of the normal training scores stays the default."""
LEGACY_SHARE = 0.01


@dataclass(frozen=True)
class OperatingPoint:
    """A default threshold and where it came from (shown to the analyst)."""

    threshold: float
    rule: str  # "best_f1_validation", "contamination", a label-free rule, or "store_share"
    source: str
    reference: ScoreReference | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "rule": self.rule, "source": self.source}

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Percentile of each score among the model's training scores (NaN without one)."""
        if self.reference is None:
            return np.full(len(scores), np.nan)
        return self.reference.percentile(np.asarray(scores, np.float64))


def _sample(n: int) -> np.ndarray:
    if n <= MAX_REFERENCE_ROWS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_REFERENCE_ROWS).astype(np.int64))


def reference_and_point(
    model: Any, train_data: Any, is_anomalous: np.ndarray, *, validation_fraction: float,
    supervised: bool, contamination: float | None = None, vetted: bool = False,
) -> tuple[ScoreReference, OperatingPoint, RiskCalibration]:
    """Score the training sessions (rows in time order), pick the default threshold and fit
    the risk mapping (a probability where the validation part holds enough labels of both
    kinds, else the training percentile: core.risk). ``vetted``: the training sessions are
    labelled (``core.pipeline.regime``)."""
    rows = _sample(len(train_data))
    scores = np.asarray(model.score(train_data.take(rows)), np.float64)
    n_val = int(len(rows) * validation_fraction)
    split = len(rows) - n_val
    labels = np.asarray(is_anomalous, bool)[rows]
    normal = ~labels
    reference = ScoreReference.from_scores(scores[:split][normal[:split]],
                                           scores[split:][normal[split:]])
    point = choose_point(reference, scores[split:], labels[split:], supervised=supervised,
                         contamination=contamination, vetted=vetted)
    return reference, point, fit_risk(scores[split:], labels[split:], reference.pooled)


def choose_point(reference: ScoreReference, val_scores: np.ndarray, val_labels: np.ndarray,
                 *, supervised: bool, contamination: float | None = None,
                 vetted: bool = False) -> OperatingPoint:
    """The default threshold by the rules of this module's docstring."""
    if contamination is not None:
        value = threshold_by_rule(reference.pooled, contamination=contamination)
        return OperatingPoint(value, "contamination",
                              f"flags the top {contamination:.2%} of training sessions "
                              "(the contamination given at training)", reference)
    if supervised and MIN_VALIDATION_POSITIVES <= int(val_labels.sum()) < len(val_labels):
        value = best_f1_threshold(val_scores, val_labels)
        if value is not None:
            return OperatingPoint(value, "best_f1_validation",
                                  f"best F1 on the validation window ({int(val_labels.sum())} "
                                  f"labelled anomalies of {len(val_labels):,} sessions)",
                                  reference)
    positives = int(np.asarray(val_labels, bool).sum())
    if vetted and MIN_UNSUPERVISED_VALIDATION_POSITIVES <= positives < len(val_labels):
        value = best_f1_threshold(val_scores, val_labels)
        if value is not None:
            return OperatingPoint(value, "best_f1_validation",
                                  f"best F1 on the validation window ({positives} labelled "
                                  f"anomalies of {len(val_labels):,} sessions; the model "
                                  "itself trained without labels)", reference)
    if vetted:
        value = threshold_by_rule(reference.pooled, VETTED_RULE)
        return OperatingPoint(value, VETTED_RULE,
                              f"label-free: {RULE_TEXT[VETTED_RULE]} of the training scores, "
                              "whose sessions are all labelled normal (flags 0.5% of normal "
                              "sessions)", reference)
    fence = threshold_by_rule(reference.pooled, DEFAULT_RULE)
    cap = threshold_by_rule(reference.pooled, contamination=MAX_DEFAULT_SHARE)
    value = max(fence, cap)
    share = 100.0 - float(reference.percentile(np.array([value]))[0])
    rule = f"{RULE_TEXT[DEFAULT_RULE]} of the training scores"
    why = (rule if fence >= cap else
           f"{rule}, raised to flag at most {MAX_DEFAULT_SHARE:.0%} of training sessions")
    return OperatingPoint(value, DEFAULT_RULE,
                          f"label-free: {why} ({share:.1f}% of training sessions lie above "
                          "it)", reference)


def operating_point(store: Store, model_id: str) -> OperatingPoint:
    """The model's stored operating point (or the legacy rule for older models)."""
    row = model_row(store, model_id)
    metrics = json_object(row.get("metrics"))
    point, ref = metrics.get("operating_point"), metrics.get("score_reference")
    if point and ref:
        return OperatingPoint(float(point["threshold"]), str(point["rule"]),
                              str(point["source"]), ScoreReference.from_dict(ref))
    scores = store.scores.of_model(model_id)["score"].to_numpy(np.float64)
    scores = scores[np.isfinite(scores)]
    value = float(np.quantile(scores, 1 - LEGACY_SHARE)) if len(scores) else float("inf")
    return OperatingPoint(value, "store_share",
                          f"top {LEGACY_SHARE:.0%} of the store's scores (this model predates "
                          "training references: retrain it for a label-free default)")
