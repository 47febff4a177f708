"""A model's label-free operating point: thresholds read off its own training scores.

Every model keeps the distribution of its scores on the sessions it trained on (a
*reference*: sorted quantiles of the training part and of the latest, validation part). The
default threshold is a rule applied to that distribution, never a share of whatever the store
holds, so it does not move when the store fills with anomalies or with normal traffic.

    >>> import numpy as np
    >>> ref = ScoreReference.from_scores(np.arange(1000.0), np.arange(100.0))
    >>> round(threshold_by_rule(ref.train, "q99"), 1)
    989.0
    >>> [round(float(p), 1) for p in ref.percentile(np.array([-1.0, 500.0, 5000.0]))]
    [0.0, 54.6, 100.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ConfigError

N_QUANTILES = 1001
"""Points kept of each reference distribution (every 0.1 percentile)."""

RULES = ("q995", "q99", "q95", "tukey", "tukey3", "mad3", "mad4", "log_mad3", "log_tukey")
"""Label-free rules, each a function of the training scores alone (see ``threshold_by_rule``).
The default was chosen by benchmarks.operating_point (docs/FEATURES.md)."""

DEFAULT_RULE = "mad4"

RULE_TEXT = {"q995": "the 99.5th percentile", "q99": "the 99th percentile",
             "q95": "the 95th percentile",
             "tukey": "Q3 + 1.5 IQR", "tukey3": "Q3 + 3 IQR", "mad3": "median + 3 MAD",
             "mad4": "median + 4 MAD", "log_mad3": "median + 3 MAD of the log scores",
             "log_tukey": "Q3 + 1.5 IQR of the log scores"}
"""Each rule in words, as the dashboard and the CLI say where a threshold came from."""


@dataclass(frozen=True)
class ScoreReference:
    """Sorted quantiles of a model's scores on its training and validation sessions."""

    train: np.ndarray
    validation: np.ndarray
    n_train: int
    n_validation: int

    @classmethod
    def from_scores(cls, train: np.ndarray, validation: np.ndarray) -> ScoreReference:
        return cls(_quantiles(train), _quantiles(validation), int(np.isfinite(train).sum()),
                   int(np.isfinite(validation).sum()))

    @property
    def pooled(self) -> np.ndarray:
        """Training and validation quantiles together, weighted by their sizes."""
        if self.n_validation == 0:
            return self.train
        if self.n_train == 0:
            return self.validation
        weights = np.concatenate([np.full(len(self.train), self.n_train / len(self.train)),
                                  np.full(len(self.validation),
                                          self.n_validation / len(self.validation))])
        values = np.concatenate([self.train, self.validation])
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(weights[order])
        grid = np.linspace(0, cum[-1], N_QUANTILES)
        return values[order][np.minimum(np.searchsorted(cum, grid), len(values) - 1)]

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Percentile (0-100) of each score among the training sessions' scores."""
        return percentile_of(scores, self.pooled)

    def to_dict(self) -> dict[str, Any]:
        return {"train": [float(v) for v in self.train],
                "validation": [float(v) for v in self.validation],
                "n_train": self.n_train, "n_validation": self.n_validation}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ScoreReference:
        return cls(np.asarray(values.get("train", []), np.float64),
                   np.asarray(values.get("validation", []), np.float64),
                   int(values.get("n_train", 0)), int(values.get("n_validation", 0)))


def percentile_of(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Percentile (0-100) of each score among sorted reference quantiles; ties at the middle
    of their run, NaN for a NaN score or an empty reference."""
    ref = np.asarray(reference, np.float64)
    scores = np.asarray(scores, np.float64)
    if len(ref) == 0:
        return np.full(scores.shape, np.nan)
    grid = np.linspace(0.0, 100.0, len(ref))
    low = np.interp(scores, ref, grid, left=0.0, right=100.0)
    high = 100.0 - np.interp(-scores, -ref[::-1], grid, left=0.0, right=100.0)
    out = np.where(np.isfinite(scores), (low + high) / 2.0, np.nan)
    return np.clip(out, 0.0, 100.0)


def _quantiles(scores: np.ndarray) -> np.ndarray:
    finite = np.asarray(scores, np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return np.empty(0)
    return np.quantile(finite, np.linspace(0.0, 1.0, N_QUANTILES))


def threshold_by_rule(sorted_scores: np.ndarray, rule: str = DEFAULT_RULE,
                      contamination: float | None = None) -> float:
    """The threshold a rule reads off ascending training scores (or their quantiles).

    ``contamination`` (the share of training sessions expected to be anomalous) overrides the
    rule: the threshold is then the (1 - contamination) quantile.

    Rules: ``q995``/``q99``/``q95`` quantiles; ``tukey`` Q3 + 1.5 IQR and ``tukey3`` Q3 + 3 IQR;
    ``mad3`` / ``mad4`` median + 3 / 4 MAD (as a standard deviation); ``log_mad3`` and
    ``log_tukey`` the same on log(1 + (score - min) / median spread), for the right-skewed
    errors of reconstruction models. Each is at least the median, so an empty or constant
    reference never flags half the sessions by accident.
    """
    x = np.asarray(sorted_scores, np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("inf")
    if contamination is not None:
        if not 0.0 < contamination < 0.5:
            raise ConfigError(
                f"contamination must be in (0, 0.5), got {contamination}. Give the share of "
                "training sessions you expect to be anomalous, e.g. 0.01."
            )
        return float(np.quantile(x, 1.0 - contamination))
    q1, median, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    if rule == "q995":
        return float(np.quantile(x, 0.995))
    if rule == "q99":
        return float(np.quantile(x, 0.99))
    if rule == "q95":
        return float(np.quantile(x, 0.95))
    if rule in ("tukey", "tukey3"):
        return float(max(q3 + (1.5 if rule == "tukey" else 3.0) * (q3 - q1), median))
    if rule in ("mad3", "mad4"):
        mad = float(np.median(np.abs(x - median))) * 1.4826
        return float(median + float(rule[3]) * mad)
    if rule in ("log_mad3", "log_tukey"):
        low = float(x[0])
        spread = median - low
        if spread <= 0:
            spread = max(float(x[-1]) - low, 1e-12)
        u = np.log1p((x - low) / spread)
        u1, um, u3 = np.quantile(u, [0.25, 0.5, 0.75])
        if rule == "log_tukey":
            cut = max(u3 + 1.5 * (u3 - u1), um)
        else:
            cut = um + 3.0 * float(np.median(np.abs(u - um))) * 1.4826
        return float(low + np.expm1(cut) * spread)
    raise ConfigError(f"rule must be one of {', '.join(RULES)}, got {rule!r}.")


def best_f1_threshold(scores: np.ndarray, labels: Sequence[bool] | np.ndarray) -> float | None:
    """The score cut with the best F1 on labelled scores; None without both classes."""
    y = np.asarray(labels, bool)
    s = np.asarray(scores, np.float64)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    if y.sum() == 0 or y.all():
        return None
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    last = np.r_[s[1:] != s[:-1], True]  # cut after the last of each run of equal scores
    k = np.flatnonzero(last)
    precision, recall = tp[k] / (k + 1), tp[k] / y.sum()
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(s[k[int(np.argmax(f1))]])
