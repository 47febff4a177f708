"""SHAP values of a feature detector's anomaly score, by antithetic permutation sampling.

The algorithm is SHAP's permutation explainer with an independent (interventional) masker,
written out in numpy: for a random order of the features, start from each background row and
switch the session's features in one at a time; the mean score change when feature j is
switched in is its contribution in that order. Each order is walked forwards and backwards
(antithetic sampling) and contributions are averaged over orders. Every walk telescopes from
the background mean to the session's score, so ``base + sum(contributions) == score`` holds to
floating-point precision, whatever the number of orders.

Why not ``shap.Explainer(fn, shap.maskers.Independent(background, 100))``: it computes the same
estimator (a test compares the two), but its numba kernels compile on the first call of every
process, a wait of seconds (docs/BENCHMARKS.md, 'Measurements behind design choices') that an
analyst would sit through on the first explanation the dashboard shows. This version needs no
compilation.

    >>> import numpy as np
    >>> background = np.zeros((4, 3))
    >>> base, contributions, score = permutation_shap(
    ...     lambda x: x @ np.array([1.0, 2.0, 3.0]), np.ones(3), background)
    >>> contributions.round(6).tolist(), base, score
    ([1.0, 2.0, 3.0], 0.0, 6.0)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.datasets import FeatureMatrix
from core.detectors.base import Detector
from core.errors import ModelError
from core.explain.explanation import FeatureAttribution
from core.explain.units import LOG_ODDS, in_units, units_of

log = logging.getLogger(__name__)

N_BACKGROUND = 100
"""Background sessions: SHAP's own default for an independent masker; the base value's
standard error over 100 sessions is a tenth of the score's spread among normal sessions."""

N_PERMUTATIONS = 4
"""Antithetic permutation pairs per session. Additivity is exact for any number; more pairs
only steady the split between correlated features, and 4 pairs stay quick."""

TIME_BUDGET_S = 0.2
"""An explanation stops adding pairs once this much time is spent (at least one pair is
always walked): a slow scorer (an isolation forest, ~0.1 s per walk at 87 features) gets fewer
pairs rather than making the Why wait. ``n_permutations`` records the pairs walked."""

ScoreFn = Callable[[np.ndarray], np.ndarray]


def permutation_shap(fn: ScoreFn, x: np.ndarray, background: np.ndarray, *,
                     n_permutations: int = N_PERMUTATIONS, seed: int = 0,
                     ) -> tuple[float, np.ndarray, float]:
    """(base value, contributions (f,), score) of ``fn`` at ``x`` against ``background``.

    ``fn`` maps an (m, f) array to (m,) scores; it is called once per walk on (f + 1) * B rows.
    """
    base, contributions, score, _ = permutation_shap_within(
        fn, x, background, n_permutations=n_permutations, seed=seed)
    return base, contributions, score


def permutation_shap_within(fn: ScoreFn, x: np.ndarray, background: np.ndarray, *,
                            n_permutations: int = N_PERMUTATIONS, seed: int = 0,
                            time_budget_s: float | None = None,
                            ) -> tuple[float, np.ndarray, float, int]:
    """``permutation_shap`` that starts no new pair once ``time_budget_s`` is spent (the first
    always runs); also returns the pairs walked."""
    x = np.asarray(x, dtype=np.float64).ravel()
    background = np.atleast_2d(np.asarray(background, dtype=np.float64))
    n_features = x.shape[0]
    if background.shape[1] != n_features or len(background) == 0:
        raise ModelError(
            f"background must be a non-empty (n, {n_features}) array, got shape "
            f"{background.shape}. Pass background rows with the session's features."
        )
    if n_permutations < 1:
        raise ModelError(f"n_permutations must be >= 1, got {n_permutations}.")
    rng = np.random.default_rng(seed)
    steps = np.arange(n_features + 1)[:, None]  # step k switches in the first k of the order
    totals = np.zeros(n_features)
    base = score = 0.0
    started = time.perf_counter()
    pairs = 0
    for _ in range(n_permutations):
        if pairs and time_budget_s is not None and (
                time.perf_counter() - started) > time_budget_s:
            break
        pairs += 1
        order = rng.permutation(n_features)
        for walk in (order, order[::-1]):
            rank = np.empty(n_features, dtype=np.int64)
            rank[walk] = np.arange(n_features)
            switched = rank[None, :] < steps  # (f + 1, f)
            rows = np.where(switched[:, None, :], x[None, None, :], background[None, :, :])
            out = np.asarray(fn(rows.reshape(-1, n_features)), dtype=np.float64)
            means = out.reshape(n_features + 1, len(background)).mean(axis=1)  # (f + 1,)
            totals[walk] += np.diff(means)
            base, score = float(means[0]), float(means[-1])
    return base, totals / (2 * pairs), score, pairs


def score_function(detector: Detector, names: tuple[str, ...], units: str = "score"
                   ) -> ScoreFn:
    """``detector.score`` as a function of a plain (m, f) array with columns ``names``, in
    ``units`` (``core.explain.units``: the score, or its log-odds)."""

    def fn(values: np.ndarray) -> np.ndarray:
        ids = np.full(len(values), "", dtype=object)
        return in_units(detector.score(FeatureMatrix(ids, np.asarray(values, np.float32),
                                                     names)), units)

    return fn


@dataclass
class FeatureExplainer:
    """SHAP for one fitted feature detector against a fixed background sample.

    Build it once per model (the background costs one feature build) and call
    ``explain(matrix, row)`` for as many sessions as needed.
    """

    model_id: str
    detector: Detector
    background: FeatureMatrix
    n_permutations: int = N_PERMUTATIONS
    seed: int = 0
    time_budget_s: float | None = TIME_BUDGET_S

    def __post_init__(self) -> None:
        if self.detector.input_kind != "features":
            raise ModelError(
                f"SHAP over features must explain a feature detector, got the sequence "
                f"detector {self.detector.kind!r}. Use occlusion or attention for it."
            )
        if len(self.background) == 0:
            raise ModelError(
                "background sample must hold at least one normal session, got none. Train "
                "the model on a window with normal sessions."
            )
        self.units = units_of(self.detector)
        self._fn = score_function(self.detector, tuple(self.background.names), self.units)

    def explain(self, matrix: FeatureMatrix, row: int = 0) -> FeatureAttribution:
        """The attribution of row ``row`` of ``matrix`` (columns as in the background)."""
        if tuple(matrix.names) != tuple(self.background.names):
            raise ModelError(
                "features to explain must have the background's columns, got another set. "
                "Build both with the model's saved feature spec."
            )
        x = np.asarray(matrix.values[row], dtype=np.float64)
        exact = getattr(self.detector, "score_shap", None)
        if callable(exact):  # the detector's own exact SHAP (gbdt: shap.TreeExplainer)
            base, rows, scores = exact(matrix.take(np.array([row])), self.background,
                                       log_odds=self.units == LOG_ODDS)
            contributions, score = np.asarray(rows, np.float64)[0], float(scores[0])
            return FeatureAttribution(
                model_id=self.model_id, names=tuple(matrix.names), values=x.copy(),
                shap=contributions, base_value=float(base), score=score,
                additivity_error=abs(float(base) + float(contributions.sum()) - score),
                n_background=len(self.background), n_permutations=0, units=self.units)
        base, contributions, fx, pairs = permutation_shap_within(
            self._fn, x, self.background.values, n_permutations=self.n_permutations,
            seed=self.seed, time_budget_s=self.time_budget_s)
        score = float(self._fn(x[None, :].astype(np.float64))[0])
        error = abs(base + float(contributions.sum()) - score)
        if abs(fx - score) > 1e-6 * max(1.0, abs(score)):
            log.warning("score of %s changed between calls (%.6g vs %.6g)", self.model_id, fx,
                        score)
        return FeatureAttribution(
            model_id=self.model_id, names=tuple(matrix.names), values=x.copy(),
            shap=contributions, base_value=base, score=score, additivity_error=error,
            n_background=len(self.background), n_permutations=pairs, units=self.units)

    def explain_many(self, matrix: FeatureMatrix) -> list[FeatureAttribution]:
        return [self.explain(matrix, i) for i in range(len(matrix))]


def mean_abs_shap(attributions: list[FeatureAttribution]) -> pd.DataFrame:
    """feature, mean_abs_shap, mean_shap over ``attributions`` (the global view), largest
    first; empty when there is nothing to average."""
    if not attributions:
        return pd.DataFrame(columns=["feature", "mean_abs_shap", "mean_shap"])
    names = attributions[0].names
    stacked = np.vstack([a.shap for a in attributions if a.names == names])
    frame = pd.DataFrame({"feature": list(names), "mean_abs_shap": np.abs(stacked).mean(axis=0),
                          "mean_shap": stacked.mean(axis=0)})
    return frame.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(
        drop=True)
