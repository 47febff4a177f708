"""Threshold tables, curves and summary metrics for anomaly scores (pure numpy).

Convention: higher score = more anomalous, and a threshold ``t`` flags every score ``>= t``.
:class:`ThresholdTable` sorts once and keeps cumulative true/false positive counts at each
distinct score, so any threshold is answered in O(log n) with ``searchsorted``.

>>> import numpy as np
>>> table = ThresholdTable.from_scores(np.array([0.9, 0.8, 0.8, 0.1]), np.array([1, 0, 1, 0]))
>>> op = table.at(0.8)
>>> (op.tp, op.fp, op.n_alerts, round(op.precision, 3))
(2, 1, 3, 0.667)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.errors import ConfigError

MAX_CURVE_POINTS = 1000
"""Curves are thinned to about this many points: plenty for a plot, small enough for a browser."""


@dataclass(frozen=True)
class OperatingPoint:
    """Confusion counts and rates when every score >= ``threshold`` is flagged.

    Rates with a zero denominator are NaN (precision with no alerts, recall with no positives,
    fpr with no negatives); f1 is 0 when precision and recall are both 0.
    """

    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float
    fpr: float
    n_alerts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Curve:
    """PR and ROC points over descending thresholds, thinned to <= ~MAX_CURVE_POINTS.

    All arrays have the same length k. ROC starts at (0, 0) (threshold +inf) and ends at (1, 1).
    """

    thresholds: np.ndarray  # (k,) descending; the first is +inf (nothing flagged)
    precision: np.ndarray  # (k,) NaN where nothing is flagged
    recall: np.ndarray  # (k,)
    fpr: np.ndarray  # (k,)
    tpr: np.ndarray  # (k,) same as recall


def _as_arrays(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ConfigError(
            f"scores and labels must have the same length, got {s.shape[0]} and {y.shape[0]}."
        )
    if not np.all(np.isfinite(s)):
        raise ConfigError(
            f"scores must be finite, got {int((~np.isfinite(s)).sum())} NaN/inf values. "
            "Check the detector's output."
        )
    if y.dtype != bool:
        uniq = np.unique(y)
        if not np.all(np.isin(uniq, [0, 1])):
            raise ConfigError(f"labels must be 0/1 or bool, got values {uniq[:5].tolist()}.")
        y = y.astype(bool)
    return s, y


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


class ThresholdTable:
    """Cumulative confusion counts at every distinct score, built with one sort.

    Attributes:
        thresholds: (m,) distinct scores, descending.
        tp, fp: (m,) counts of positives / negatives with score >= thresholds[i].
        n_pos, n_neg: totals.
    """

    def __init__(self, thresholds: np.ndarray, tp: np.ndarray, fp: np.ndarray,
                 n_pos: int, n_neg: int) -> None:
        self.thresholds = thresholds
        self.tp = tp
        self.fp = fp
        self.n_pos = int(n_pos)
        self.n_neg = int(n_neg)
        self._ascending = thresholds[::-1]  # view for searchsorted

    @classmethod
    def from_scores(cls, scores: Any, labels: Any) -> ThresholdTable:
        """Sort once (descending) and keep cumulative TP/FP at each distinct score."""
        s, y = _as_arrays(scores, labels)
        order = np.argsort(-s, kind="stable")
        return cls.from_sorted(s[order], y[order])

    @classmethod
    def from_sorted(cls, s_sorted: np.ndarray, y_sorted: np.ndarray) -> ThresholdTable:
        """From finite scores already sorted descending and their bool labels: no sort,
        one pass (the Thresholds page keeps the sort order of a model's scores and only
        re-counts when a decision changes a label)."""
        tp_cum = np.cumsum(y_sorted, dtype=np.int64)
        fp_cum = np.cumsum(~y_sorted, dtype=np.int64)
        # last index of each run of equal scores: ties are flagged together
        if len(s_sorted):
            last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
        else:
            last = np.zeros(0, dtype=np.int64)
        n_pos = int(tp_cum[-1]) if len(tp_cum) else 0
        return cls(s_sorted[last], tp_cum[last], fp_cum[last], n_pos, len(y_sorted) - n_pos)

    def __len__(self) -> int:
        return self.n_pos + self.n_neg

    def _counts(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tp, fp) of ``score >= t`` for each t."""
        # Number of distinct scores >= t = m - (number of distinct scores < t).
        m = len(self.thresholds)
        k = m - np.searchsorted(self._ascending, thresholds, side="left")
        tp = np.where(k > 0, self.tp[np.maximum(k - 1, 0)] if m else 0, 0)
        fp = np.where(k > 0, self.fp[np.maximum(k - 1, 0)] if m else 0, 0)
        return np.asarray(tp, dtype=np.int64), np.asarray(fp, dtype=np.int64)

    def at_many(self, thresholds: Any) -> dict[str, np.ndarray]:
        """Vectorised :meth:`at`: a dict of arrays, one entry per OperatingPoint field."""
        t = np.asarray(thresholds, dtype=np.float64).ravel()
        tp, fp = self._counts(t)
        fn, tn = self.n_pos - tp, self.n_neg - fp
        precision = _div(tp, tp + fp)
        recall = _div(tp, np.full_like(tp, self.n_pos))
        with np.errstate(invalid="ignore"):
            f1 = np.where(tp > 0, _div(2 * tp, 2 * tp + fp + fn), 0.0)
        if self.n_pos == 0:
            f1 = np.full(len(t), np.nan)
        return {
            "threshold": t,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "fpr": _div(fp, np.full_like(fp, self.n_neg)),
            "n_alerts": tp + fp,
        }

    def at(self, threshold: float) -> OperatingPoint:
        """Counts and rates when every score >= ``threshold`` is flagged. O(log n)."""
        row = self.at_many([threshold])
        return OperatingPoint(
            threshold=float(threshold),
            tp=int(row["tp"][0]),
            fp=int(row["fp"][0]),
            fn=int(row["fn"][0]),
            tn=int(row["tn"][0]),
            precision=float(row["precision"][0]),
            recall=float(row["recall"][0]),
            f1=float(row["f1"][0]),
            fpr=float(row["fpr"][0]),
            n_alerts=int(row["n_alerts"][0]),
        )

    def curve(self, max_points: int = MAX_CURVE_POINTS) -> Curve:
        """PR and ROC points at the distinct scores, thinned to about ``max_points``."""
        thr = np.r_[np.inf, self.thresholds]
        tp = np.r_[0, self.tp]
        fp = np.r_[0, self.fp]
        if len(thr) > max_points:
            keep = np.unique(np.r_[np.linspace(0, len(thr) - 1, max_points).astype(np.int64)])
            thr, tp, fp = thr[keep], tp[keep], fp[keep]
        recall = _div(tp, np.full_like(tp, self.n_pos))
        return Curve(
            thresholds=thr,
            precision=_div(tp, tp + fp),
            recall=recall,
            fpr=_div(fp, np.full_like(fp, self.n_neg)),
            tpr=recall,
        )

    def _require(self, *, positives: bool = False, negatives: bool = False) -> None:
        if len(self) == 0:
            raise ConfigError("scores must not be empty, got 0 sessions. Score some sessions.")
        if positives and self.n_pos == 0:
            raise ConfigError(
                "labels must contain at least one positive, got none. Add labels (ground truth "
                "or analysts' decisions) before tuning on recall or F1."
            )
        if negatives and self.n_neg == 0:
            raise ConfigError(
                "labels must contain at least one negative, got none. A false-positive rate "
                "needs normal sessions."
            )

    def best_f1(self) -> OperatingPoint:
        """The operating point with the highest F1 (the highest threshold among equals)."""
        self._require(positives=True)
        fn = self.n_pos - self.tp
        f1 = 2 * self.tp / (2 * self.tp + self.fp + fn)
        return self.at(float(self.thresholds[int(np.argmax(f1))]))

    def threshold_for_fpr(self, max_fpr: float = 0.01) -> float:
        """The lowest threshold whose false-positive rate is <= ``max_fpr``.

        Returns +inf when even the top score exceeds the budget (flag nothing).
        """
        if not 0.0 <= max_fpr <= 1.0:
            raise ConfigError(f"max_fpr must be in [0, 1], got {max_fpr}.")
        self._require(negatives=True)
        ok = np.flatnonzero(self.fp <= max_fpr * self.n_neg + 1e-9)
        return float(self.thresholds[ok[-1]]) if len(ok) else float("inf")

    def threshold_for_alerts(self, k: int) -> float:
        """The lowest threshold that flags at most ``k`` sessions (+inf when even ties exceed k).

        Ties at the threshold are flagged together, so fewer than k may be flagged.
        """
        if k < 0:
            raise ConfigError(f"k must be >= 0, got {k}.")
        self._require()
        ok = np.flatnonzero(self.tp + self.fp <= k)
        return float(self.thresholds[ok[-1]]) if len(ok) else float("inf")

    def roc_auc(self) -> float:
        """Area under ROC (ties count half, as in scikit-learn); NaN without both classes."""
        if self.n_pos == 0 or self.n_neg == 0:
            return float("nan")
        tpr = np.r_[0, self.tp] / self.n_pos
        fpr = np.r_[0, self.fp] / self.n_neg
        return float(np.trapezoid(tpr, fpr))

    def average_precision(self) -> float:
        """Step-wise area under PR, as scikit-learn's average_precision_score; NaN w/o positives."""
        if self.n_pos == 0:
            return float("nan")
        recall = self.tp / self.n_pos
        precision = self.tp / (self.tp + self.fp)
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))

    def precision_at_k(self, k: int) -> float:
        """Precision among the top ``k`` scores (ties at the k-th score broken by input order is
        avoided: the whole tie group counts proportionally)."""
        if k <= 0:
            raise ConfigError(f"k must be >= 1, got {k}.")
        self._require()
        k = min(k, len(self))
        n_at = self.tp + self.fp
        i = int(np.searchsorted(n_at, k, side="left"))  # first distinct score reaching k alerts
        prev_n = int(n_at[i - 1]) if i > 0 else 0
        prev_tp = int(self.tp[i - 1]) if i > 0 else 0
        group_n = int(n_at[i]) - prev_n
        group_tp = int(self.tp[i]) - prev_tp
        tp_at_k = prev_tp + group_tp * (k - prev_n) / group_n
        return float(tp_at_k / k)


def evaluate_scores(
    scores: Any,
    labels: Any,
    scenarios: Sequence[str] | np.ndarray | None = None,
    ks: Sequence[int] = (100,),
    max_fpr: float = 0.01,
) -> dict[str, Any]:
    """Summary metrics of one detector's scores against 0/1 labels.

    Returns a dict with ``n``, ``n_positive``, ``roc_auc``, ``average_precision``, ``best_f1``,
    ``best_f1_threshold``, ``threshold_at_fpr``, ``recall_at_fpr`` (at ``max_fpr``, default
    1%), ``precision_at_k`` ({k: value}) and ``recall_by_scenario`` ({scenario: recall at the
    same FPR threshold}, only with ``scenarios``: one name per row, used for positives). Metrics
    that need both classes are NaN when a class is missing; empty input raises ConfigError.
    """
    table = ThresholdTable.from_scores(scores, labels)
    table._require()
    out: dict[str, Any] = {
        "n": len(table),
        "n_positive": table.n_pos,
        "roc_auc": table.roc_auc(),
        "average_precision": table.average_precision(),
        "best_f1": float("nan"),
        "best_f1_threshold": float("nan"),
        "max_fpr": max_fpr,
        "threshold_at_fpr": float("nan"),
        "recall_at_fpr": float("nan"),
        "precision_at_k": {int(k): table.precision_at_k(int(k)) for k in ks},
    }
    if table.n_pos:
        best = table.best_f1()
        out["best_f1"], out["best_f1_threshold"] = best.f1, best.threshold
    if table.n_neg:
        thr = table.threshold_for_fpr(max_fpr)
        out["threshold_at_fpr"] = thr
        out["recall_at_fpr"] = table.at(thr).recall if table.n_pos else float("nan")
    if scenarios is not None:
        out["recall_by_scenario"] = _recall_by_scenario(
            scores, labels, scenarios, out["threshold_at_fpr"]
        )
    return out


def _recall_by_scenario(
    scores: Any, labels: Any, scenarios: Sequence[str] | np.ndarray, threshold: float
) -> dict[str, float]:
    s, y = _as_arrays(scores, labels)
    names = np.asarray(scenarios, dtype=object).ravel()
    if names.shape != s.shape:
        raise ConfigError(
            f"scenarios must have one name per score, got {names.shape[0]} for {s.shape[0]}."
        )
    if np.isnan(threshold):
        return {}
    flagged = s >= threshold
    out: dict[str, float] = {}
    for name in sorted({str(v) for v in names[y]}):  # a handful of scenarios, not rows
        rows = y & (names == name)
        out[name] = float(flagged[rows].mean())
    return out
