"""One risk score, 0-100, from any detector's raw score.

A detector's raw score has its own scale (a reconstruction error of 35.4, a probability of
0.9998, a z-score of 7). An analyst needs one number that means the same thing everywhere:

- **with enough labels** on the model's validation window it is a *probability* (x100) that
  the session is anomalous, fitted by isotonic regression on the ranks of the scores (monotone,
  so the detector's order is kept) and checked by its expected calibration error, measured on
  folds the calibration did not see;
- **without** it is the score's *percentile* among the model's own training sessions
  (``core.operating_point.ScoreReference``): 99 means "higher than 99% of what the model
  learned as normal", which says how unusual, not how likely to be fraud.

``RiskCalibration.kind`` says which, so a page can say so.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scores = np.r_[rng.normal(0, 1, 900), rng.normal(3, 1, 100)]
    >>> labels = np.r_[np.zeros(900), np.ones(100)].astype(bool)
    >>> cal = fit_risk(scores, labels, reference=np.sort(scores[:900]))
    >>> cal.kind
    'probability'
    >>> bool(cal.risk(np.array([-2.0]))[0] < cal.risk(np.array([5.0]))[0])
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.operating_point import percentile_of

MIN_POSITIVES = 20
"""Labelled anomalous validation sessions needed before risk is read as a probability."""
MIN_NEGATIVES = 50
N_BINS = 10
N_FOLDS = 5
N_KNOTS = 101
"""Points kept of the fitted calibration curve (it is stored with the model as JSON)."""


@dataclass(frozen=True)
class Reliability:
    """Predicted probability against observed frequency, per equal-width bin."""

    mean_predicted: np.ndarray
    observed: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap between the two."""
        total = self.count.sum()
        if total == 0:
            return float("nan")
        gap = np.abs(self.mean_predicted - self.observed)
        return float(np.nansum(gap * self.count) / total)

    def to_dict(self) -> dict[str, Any]:
        return {"mean_predicted": _floats(self.mean_predicted),
                "observed": _floats(self.observed), "count": [int(c) for c in self.count]}


def reliability(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS
                ) -> Reliability:
    """Bin probabilities into ``n_bins`` equal-width bins of [0, 1]; empty bins are NaN."""
    p = np.clip(np.asarray(probabilities, np.float64), 0.0, 1.0)
    y = np.asarray(labels, np.float64)
    keep = np.isfinite(p)
    p, y = p[keep], y[keep]
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(bins, weights=p, minlength=n_bins) / count
        observed = np.bincount(bins, weights=y, minlength=n_bins) / count
    return Reliability(mean_predicted, observed, count)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               n_bins: int = N_BINS) -> float:
    """ECE with equal-width bins (Guo et al. 2017)."""
    return reliability(probabilities, labels, n_bins).ece


@dataclass(frozen=True)
class RiskCalibration:
    """Maps a model's raw scores to risk 0-100; ``kind`` is "probability" or "percentile"."""

    kind: str
    reference: np.ndarray
    """Sorted quantiles of the training scores (``ScoreReference.pooled``): percentiles, and
    the scale the probability is fitted on."""
    knots_rank: np.ndarray = field(default_factory=lambda: np.empty(0))
    knots_probability: np.ndarray = field(default_factory=lambda: np.empty(0))
    ece: float | None = None
    """Out-of-fold expected calibration error on the validation window (probability only)."""
    reliability: Reliability | None = None
    n_labelled: int = 0
    n_positive: int = 0

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Each score's percentile (0-100) among the training scores; NaN stays NaN."""
        return percentile_of(scores, self.reference)

    def risk(self, scores: np.ndarray) -> np.ndarray:
        """Risk 0-100: probability x 100, or the training percentile."""
        pct = self.percentile(scores)
        if self.kind != "probability":
            return pct
        out = np.interp(pct, self.knots_rank, self.knots_probability) * 100.0
        return np.where(np.isfinite(pct), out, np.nan)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "reference": _floats(self.reference),
            "knots_rank": _floats(self.knots_rank),
            "knots_probability": _floats(self.knots_probability),
            "ece": self.ece, "n_labelled": self.n_labelled, "n_positive": self.n_positive,
            "reliability": self.reliability.to_dict() if self.reliability else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskCalibration:
        rel = data.get("reliability")
        return cls(
            kind=str(data["kind"]), reference=_array(data["reference"]),
            knots_rank=_array(data.get("knots_rank", [])),
            knots_probability=_array(data.get("knots_probability", [])),
            ece=data.get("ece"), n_labelled=int(data.get("n_labelled", 0)),
            n_positive=int(data.get("n_positive", 0)),
            reliability=Reliability(_array(rel["mean_predicted"]), _array(rel["observed"]),
                                    np.asarray(rel["count"], np.int64)) if rel else None,
        )


def fit_risk(validation_scores: np.ndarray, validation_labels: np.ndarray | None,
             reference: np.ndarray, *, seed: int = 0) -> RiskCalibration:
    """Calibrate on labelled validation sessions when there are enough, else percentiles.

    The fit is isotonic regression of the label on the score's training percentile; its ECE
    is measured out of fold (``N_FOLDS`` stratified folds), so it is not flattered by the fit.
    """
    ref = np.asarray(reference, np.float64)
    ref = np.sort(ref[np.isfinite(ref)])
    if validation_labels is None:
        return RiskCalibration("percentile", ref)
    scores = np.asarray(validation_scores, np.float64)
    labels = np.asarray(validation_labels, bool)
    keep = np.isfinite(scores)
    scores, labels = scores[keep], labels[keep]
    n_pos = int(labels.sum())
    n_neg = int((~labels).sum())
    if n_pos < MIN_POSITIVES or n_neg < MIN_NEGATIVES or len(ref) == 0:
        return RiskCalibration("percentile", ref, n_labelled=len(labels), n_positive=n_pos)
    ranks = percentile_of(scores, ref)
    out_of_fold = np.empty(len(ranks))
    for train_idx, test_idx in _stratified_folds(labels, N_FOLDS, seed):
        model = _isotonic(ranks[train_idx], labels[train_idx])
        out_of_fold[test_idx] = model.predict(ranks[test_idx])
    rel = reliability(out_of_fold, labels)
    model = _isotonic(ranks, labels)
    grid = np.linspace(0.0, 100.0, N_KNOTS)
    return RiskCalibration("probability", ref, grid, model.predict(grid), rel.ece, rel,
                           len(labels), n_pos)


def _isotonic(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
        x, y.astype(np.float64))


def _stratified_folds(labels: np.ndarray, k: int, seed: int
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    for value in (True, False):
        idx = np.flatnonzero(labels == value)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    everything = np.arange(len(labels))
    return [(everything[fold != f], everything[fold == f]) for f in range(k)]


def user_risk(session_risk: np.ndarray, user_ids: np.ndarray) -> dict[Any, float]:
    """A user's risk: the highest risk among the sessions given (the caller picks the window)."""
    out: dict[Any, float] = {}
    for user, value in zip(user_ids, np.asarray(session_risk, np.float64), strict=True):
        if np.isfinite(value) and value > out.get(user, -np.inf):
            out[user] = float(value)
    return out


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64)]


def _array(values: list[Any]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], np.float64)
