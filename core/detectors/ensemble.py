"""The ensemble's arithmetic: rank-normalise each member's score, weight, sum (pure numpy).

Not a registered :class:`~core.detectors.base.Detector`: its input is other models' scores,
not features or sequences. ``core.pipeline.ensemble`` reads those scores from the store.

Each member's score is mapped to its empirical CDF over a reference set (the member's scores
on its training window), summarised by 1001 quantiles at plotting positions (j + 0.5) / 1001.
Between quantiles the CDF is interpolated linearly; beyond the outermost ones it continues as
a hyperbolic tail, 1 - F falling as 1 / (1 + distance / scale) with the scale of the outer 1%
of the reference, so a session more extreme than anything in training still outranks a less
extreme one instead of tying at 1 (an exponential tail reaches 1.0 in floating point within
a few scales).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> combiner = EnsembleCombiner.fit(["a", "b"], [rng.normal(size=500), rng.normal(size=500)],
    ...                                 [0.75, 0.25])
    >>> score, contributions = combiner.combine(np.array([[0.0, 0.0], [9.0, 9.0]]))
    >>> bool(np.allclose(contributions.sum(axis=1), score)), bool(score[1] > 0.99)
    (True, True)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from core.errors import ConfigError, ModelError
from core.files import atomic_dir

N_QUANTILES = 1001
PROBS = (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES
"""Plotting positions of the stored quantiles: strictly inside (0, 1), leaving room for tails."""
TAIL_SPAN = N_QUANTILES // 100
"""The tails' scale is that of an exponential through the outermost 1% of the quantiles."""
COMBINATIONS = ("rank", "tail")
"""How members' rank-normalised scores r add up: "rank" averages r (ensembles trained with
labels, and every ensemble saved before "tail" existed); "tail" averages -log(1 - r), each
member's tail surprise (Fisher's way of combining p-values), so one member that is sure a
session is extreme is not outvoted by members that see nothing (label-free ensembles; see
``EnsembleCombiner.transform``)."""
FORMAT_VERSION = 1
CONFIG_FILE = "ensemble.json"
QUANTILES_FILE = "quantiles.safetensors"


def tail_surprise(ranks: np.ndarray) -> np.ndarray:
    """-log(1 - r) of rank-normalised scores r (finite: r is kept below 1).

        >>> [round(float(v), 3) for v in tail_surprise(np.array([0.5, 0.99, 1.0]))]
        [0.693, 4.605, 36.737]
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    return -np.log1p(-np.minimum(ranks, np.nextafter(1.0, 0.0)))


def reference_quantiles(scores: np.ndarray) -> np.ndarray:
    """The N_QUANTILES quantiles of ``scores`` at :data:`PROBS` (float64)."""
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ModelError(
            "an ensemble member must have finite scores on its training window, got none. "
            "Score the member on the whole store first (`anomalyst score --model ID`)."
        )
    return np.quantile(values, PROBS)


def rank_normalise(quantiles: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Empirical CDF (0, 1) of ``scores`` against a reference summarised by ``quantiles``."""
    s = np.asarray(scores, dtype=np.float64)
    xs, inverse = np.unique(quantiles, return_inverse=True)
    ps = np.bincount(inverse, weights=PROBS) / np.bincount(inverse)  # ties: mean position
    out = np.interp(s, xs, ps)
    spread = float(xs[-1] - xs[0])
    floor = spread / N_QUANTILES if spread > 0 else max(abs(float(xs[0])), 1.0) * 1e-3
    k = TAIL_SPAN
    beta_hi = max((quantiles[-1] - quantiles[-1 - k])
                  / np.log((1 - PROBS[-1 - k]) / (1 - PROBS[-1])), floor)
    beta_lo = max((quantiles[k] - quantiles[0]) / np.log(PROBS[k] / PROBS[0]), floor)
    hi, lo = s > xs[-1], s < xs[0]
    out[hi] = 1.0 - (1.0 - ps[-1]) / (1.0 + (s[hi] - xs[-1]) / beta_hi)
    out[lo] = ps[0] / (1.0 + (xs[0] - s[lo]) / beta_lo)
    return out


@dataclass(frozen=True)
class EnsembleCombiner:
    """Members (model ids), their weights (sum 1), reference quantiles (members, 1001) and
    how ranks combine (``COMBINATIONS``)."""

    kind: ClassVar[str] = "ensemble"
    """The name ensemble models are stored under (``models.detector``, their saved files)."""
    combines_members: ClassVar[bool] = True
    """Its scores combine other models' scores: its members explain it."""
    explain_preference: ClassVar[int] = 3
    """Shown before every single detector when models rank a session equally high."""

    members: tuple[str, ...]
    weights: np.ndarray
    quantiles: np.ndarray
    combination: str = "rank"

    def __post_init__(self) -> None:
        if self.combination not in COMBINATIONS:
            raise ModelError(f"ensemble combination must be one of {COMBINATIONS}, got "
                             f"{self.combination!r}. Retrain the ensemble.")
        weights = np.asarray(self.weights, dtype=np.float64)
        quantiles = np.asarray(self.quantiles, dtype=np.float64)
        m = len(self.members)
        if len(set(self.members)) != m or m < 2:
            raise ConfigError(
                f"ensemble members must be at least 2 distinct models, got {list(self.members)}."
                " Name two or more scored models."
            )
        if weights.shape != (m,) or quantiles.shape != (m, N_QUANTILES):
            raise ModelError(
                f"ensemble weights and quantiles must have shapes ({m},) and ({m}, "
                f"{N_QUANTILES}), got {weights.shape} and {quantiles.shape}. Retrain the ensemble."
            )
        if not (np.all(weights >= 0) and abs(weights.sum() - 1.0) < 1e-6):
            raise ModelError(f"ensemble weights must be >= 0 and sum to 1, got {weights}.")
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "quantiles", quantiles)

    @classmethod
    def fit(
        cls, members: Sequence[str], references: Sequence[np.ndarray],
        weights: Sequence[float] | np.ndarray, combination: str = "rank",
    ) -> EnsembleCombiner:
        """Quantiles of each member's reference scores; weights as given (normalised here)."""
        w = np.asarray(weights, dtype=np.float64)
        if w.sum() <= 0:
            raise ConfigError(f"ensemble weights must have a positive sum, got {list(w)}.")
        return cls(tuple(members), w / w.sum(),
                   np.stack([reference_quantiles(r) for r in references]), combination)

    def ranks(self, scores: np.ndarray) -> np.ndarray:
        """(n, members) scores -> (n, members) rank-normalised scores in (0, 1)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(self.members):
            raise ModelError(
                f"ensemble input must be (sessions, {len(self.members)}) member scores, got "
                f"shape {scores.shape}."
            )
        return np.stack([rank_normalise(self.quantiles[j], scores[:, j])
                         for j in range(len(self.members))], axis=1)

    def combine(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ensemble score (n,), contributions w_m * rank_m (n, members)); score = row sum."""
        contributions = self.transform(self.ranks(scores)) * self.weights[None, :]
        return contributions.sum(axis=1), contributions

    def transform(self, ranks: np.ndarray) -> np.ndarray:
        """Rank-normalised scores -> what is averaged: themselves ("rank"), or each one's tail
        surprise -log(1 - r) ("tail"; r beyond the reference keeps rising through the
        quantiles' fitted tail, so the surprise keeps growing, finite).

        Measured (issue #19; zscore, isolation forest, ecdf_tails, autoencoder and vae on the
        ten ADBench sets' raw features, one seed, agreement weights): mean AP 0.427 with
        "tail" against 0.385 with "rank" (median 0.430 against 0.344); smtp 0.063 -> 0.501
        and mammography 0.146 -> 0.189, where one member alone sees the anomalies; shuttle
        0.973 -> 0.945 and thyroid 0.550 -> 0.531 the largest losses.
        """
        ranks = np.asarray(ranks, dtype=np.float64)
        if self.combination == "rank":
            return ranks
        return tail_surprise(ranks)

    # -- persistence ----------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """16 hex digits over members, weights and quantiles (recorded in the registry)."""
        digest = hashlib.sha256(json.dumps(list(self.members)).encode())
        digest.update(np.ascontiguousarray(self.weights).tobytes())
        digest.update(np.ascontiguousarray(self.quantiles).tobytes())
        if self.combination != "rank":  # rank ensembles keep the fingerprint they had
            digest.update(self.combination.encode())
        return digest.hexdigest()[:16]

    def save(self, folder: str | os.PathLike[str], extra: dict | None = None) -> Path:
        """Write ensemble.json + quantiles.safetensors into ``folder`` (atomically replaced)."""
        with atomic_dir(folder) as tmp:
            save_file({"quantiles": np.ascontiguousarray(self.quantiles),
                       "weights": np.ascontiguousarray(self.weights)},
                      str(tmp / QUANTILES_FILE), metadata={"kind": self.kind})
            document = {"format_version": FORMAT_VERSION, "kind": self.kind,
                        "members": list(self.members), "weights": self.weights.tolist(),
                        "combination": self.combination,
                        "n_quantiles": N_QUANTILES, "fingerprint": self.fingerprint,
                        **(extra or {})}
            (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> EnsembleCombiner:
        """Rebuild from ``save``'s files; ModelError when they are missing or do not agree."""
        path = Path(folder)
        try:
            document = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            arrays = load_file(str(path / QUANTILES_FILE))
            version, members = document["format_version"], document["members"]
            combiner = cls(tuple(members), arrays["weights"], arrays["quantiles"],
                           str(document.get("combination", "rank")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, SafetensorError) as exc:
            raise ModelError(
                f"ensemble folder {path} must hold {CONFIG_FILE} and {QUANTILES_FILE}, got an "
                f"unreadable or incomplete folder ({exc}). Train the ensemble again."
            ) from exc
        if version != FORMAT_VERSION or document.get("fingerprint") != combiner.fingerprint:
            raise ModelError(
                f"ensemble files in {path} must agree with each other (format {FORMAT_VERSION}),"
                f" got format {version} and a fingerprint mismatch. Train the ensemble again."
            )
        return combiner


# ----------------------------------------------------------------------- choosing the weights
MIN_DISTINCT_QUANTILES = 20
"""A member whose reference has fewer distinct quantiles than this is near-constant: it cannot
rank sessions, and a rank average would only dilute the others."""
MIN_STACKING_ANOMALIES = 20
"""Labelled anomalies in the validation window needed to learn stacking weights."""


def sane_members(quantiles: np.ndarray) -> np.ndarray:
    """Per member (rows of ``quantiles``): True when its reference scores can rank sessions."""
    return np.array([np.unique(q).size >= MIN_DISTINCT_QUANTILES for q in quantiles])


def agreement_weights(ranks: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Label-free weights: each usable member's correlation with the mean rank of the other
    usable members (floored at 0), so a member that disagrees with the consensus counts less
    (in the spirit of Rayana & Akoglu's selective ensembles). Equal when fewer than 3 members
    are usable or no correlation is positive."""
    m = ranks.shape[1]
    usable = np.asarray(usable, bool)
    equal = usable / max(usable.sum(), 1)
    if usable.sum() < 3 or len(ranks) < 10:
        return equal
    weights = np.zeros(m)
    idx = np.flatnonzero(usable)
    for j in idx:
        others = ranks[:, [k for k in idx if k != j]].mean(axis=1)
        if np.std(ranks[:, j]) > 0 and np.std(others) > 0:
            weights[j] = max(float(np.corrcoef(ranks[:, j], others)[0, 1]), 0.0)
    return weights / weights.sum() if weights.sum() > 0 else equal


def stacked_weights(ranks: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Non-negative weights of a logistic regression on members' ranks (None when every
    coefficient is <= 0 or a class is missing)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, bool)
    if y.all() or not y.any():
        return None
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    model.fit(ranks, y)
    weights = np.clip(model.coef_[0], 0.0, None)
    return weights / weights.sum() if weights.sum() > 0 else None


SELECTION_RESAMPLES = 50
"""Bootstrap resamples of the validation window on which the weightings are compared."""
AP_WEIGHT_EPSILON = 1e-3
"""A member no better than chance keeps this (pre-normalisation) AP weight rather than 0."""

Weighting = Callable[[np.ndarray, np.ndarray], "np.ndarray | None"]


def _ap(scores: np.ndarray, y: np.ndarray) -> float:
    from core.evaluate import ThresholdTable

    return float(ThresholdTable.from_scores(scores, y).average_precision())


def best_member_weights(ranks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """All weight on the member with the best average precision (ties: the first)."""
    y = np.asarray(labels, bool)
    aps = [_ap(ranks[:, j], y) for j in range(ranks.shape[1])]
    one_hot = np.zeros(ranks.shape[1])
    one_hot[int(np.argmax(aps))] = 1.0
    return one_hot


def ap_weights(ranks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each member's average precision minus the base rate (floored), normalised."""
    y = np.asarray(labels, bool)
    w = np.array([max(_ap(ranks[:, j], y) - y.mean(), AP_WEIGHT_EPSILON)
                  for j in range(ranks.shape[1])])
    return w / w.sum()


def choose_weights(
    ranks: np.ndarray, labels: np.ndarray, candidates: dict[str, Weighting], *,
    resamples: int = SELECTION_RESAMPLES, seed: int = 0,
) -> tuple[str, np.ndarray, dict[str, dict[str, float]]]:
    """(name, weights, figures) of the weighting that predicts best on sessions it did not
    see: the best single member and each of ``candidates`` (a function of (ranks, labels)
    giving weights, or None) are fitted on a bootstrap resample of the labelled validation
    sessions and judged by average precision on the sessions left out of it, over
    ``resamples`` resamples; the winner is then fitted on all of them.

    Judging each weighting on the sessions it was fitted on (as before) favours the best
    single member twice: its choice among a dozen noisy APs is itself fitted to the window.
    On the demo data the window's best member (zscore, AP 0.60 there) was the worst of three
    on the sessions after it (0.26 against 0.63); the out-of-sample comparison asks whether a
    choice holds up, not whether it fits. Ties go to the best member, then in order.
    """
    y = np.asarray(labels, bool)
    options: dict[str, Weighting] = {"best_member": best_member_weights, **candidates}
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y)
    oob: dict[str, list[float]] = {name: [] for name in options}
    for _ in range(resamples if len(positives) >= 2 and len(negatives) >= 2 else 0):
        bag = np.concatenate([rng.choice(positives, len(positives)),
                              rng.choice(negatives, len(negatives))])
        out = np.setdiff1d(np.arange(len(y)), bag)
        if not y[out].any() or y[out].all():
            continue
        for name, fit in options.items():
            w = fit(ranks[bag], y[bag])
            oob[name].append(_ap(ranks[out] @ w, y[out]) if w is not None else np.nan)
    mean_oob = {name: float(np.nanmean(v)) if v and not np.isnan(v).all() else -1.0
                for name, v in oob.items()}
    name = max(mean_oob, key=lambda n: mean_oob[n])  # first of equals: best_member
    weights = options[name](ranks, y)
    if weights is None:  # the winner cannot be fitted on the whole window: the best member
        name, weights = "best_member", best_member_weights(ranks, y)
    in_sample = {n: _ap(ranks @ w, y) for n, f in options.items()
                 if (w := f(ranks, y)) is not None}
    return name, weights, {"out_of_sample": {k: round(v, 6) for k, v in mean_oob.items()},
                           "in_sample": in_sample}
