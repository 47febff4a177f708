"""A typology guess for a session: the fraud scenario of its nearest labelled anomalies.

The pool is every session labelled anomalous with a scenario (analyst decisions first, then
ground truth; 'unspecified' and 'normal' left out), as unit vectors
(``core.similar.vectors``). A guess takes the ``k`` nearest pool sessions and weighs each one's
vote by its similarity; the confidence is the winning scenario's share of the weight. The
guess is "no close match" when the nearest pool session is farther than the pool's own
leave-one-out nearest distances at ``CUT_QUANTILE`` (calibrated on the pool, so the cut moves
with the representation and the data), or when the winner's share is below ``MIN_SHARE`` (a
split vote).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from core.similar.vectors import VectorIndex, distance, loo_distance_cut

K = 15
"""Neighbours that vote."""
MIN_SHARE = 0.5
"""Below this share of the vote the answer is "no close match" (split vote)."""
CUT_QUANTILE = 0.95
"""The distance cut: this quantile of the pool's leave-one-out nearest distances."""
MIN_POOL = 3
"""Fewer labelled anomalies with a scenario than this: no guess at all."""
NO_MATCH = "no close match"
SKIPPED_SCENARIOS = ("unspecified", "normal", "")


def typology_name(scenario: str | None) -> str:
    """A readable name: 'card_testing' -> 'card testing'."""
    text = str(scenario or "").replace("_", " ").replace("-", " ").strip()
    return " ".join(text.split()) or "unspecified"


@dataclass(frozen=True)
class TypologyGuess:
    """What a session looks like, with the evidence behind the answer."""

    session_id: str
    scenario: str | None
    """The guessed scenario as stored (e.g. 'card_testing'); None for no close match."""
    confidence: float
    """The winning scenario's share of the similarity-weighted vote (0-1)."""
    nearest_distance: float
    """Cosine distance to the nearest labelled anomaly."""
    cut: float
    """The distance cut (farther: no close match)."""
    why_none: str | None = None
    """Why there is no guess ('far' or 'split'), None with a guess."""
    votes: dict[str, float] = field(default_factory=dict)
    """scenario -> share of the vote, largest first."""
    n_pool: int = 0

    @property
    def name(self) -> str:
        return typology_name(self.scenario) if self.scenario else NO_MATCH

    @property
    def text(self) -> str:
        """'Looks like card testing (confidence 0.86)' or 'No close match (...)'."""
        if self.scenario is not None:
            return f"Looks like {self.name} (confidence {self.confidence:.2f})"
        if self.why_none == "far":
            return (f"No close match: the nearest labelled anomaly is at distance "
                    f"{self.nearest_distance:.2f}, beyond the cut {self.cut:.2f}")
        if self.why_none == "empty":
            return "No close match: no labelled anomaly with a scenario yet"
        best = next(iter(self.votes.items()), None)
        lead = f"; {typology_name(best[0])} leads with {best[1]:.2f}" if best else ""
        return f"No close match: the nearest labelled anomalies disagree{lead}"

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "scenario": self.scenario, "name": self.name,
                "confidence": round(float(self.confidence), 4),
                "nearest_distance": _finite(self.nearest_distance), "cut": _finite(self.cut),
                "why_none": self.why_none, "text": self.text,
                "votes": {k: round(float(v), 4) for k, v in self.votes.items()},
                "n_pool": self.n_pool}


def _finite(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


@dataclass
class TypologyModel:
    """Labelled anomalies with a scenario, indexed; ``guess`` answers for unit vectors."""

    index: VectorIndex
    scenarios: np.ndarray  # per index row
    cut: float
    k: int = K
    min_share: float = MIN_SHARE

    @classmethod
    def fit(cls, session_ids: Sequence[str], vectors: np.ndarray, scenarios: Sequence[str], *,
            k: int = K, min_share: float = MIN_SHARE, quantile: float = CUT_QUANTILE,
            seed: int = 0) -> TypologyModel:
        index = VectorIndex(np.asarray(session_ids, dtype=object), vectors)
        cut = loo_distance_cut(index, quantile=quantile, seed=seed)
        return cls(index, np.asarray(scenarios, dtype=object), cut, k, min_share)

    def __len__(self) -> int:
        return len(self.index)

    @cached_property
    def _codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(scenario names, each row's index into them)."""
        return np.unique(self.scenarios.astype(str), return_inverse=True)

    def guess(self, session_id: str, vector: np.ndarray) -> TypologyGuess:
        """The guess for one session (excluded from its own neighbours)."""
        return self.guess_many([session_id], vector[None, :])[0]

    def guess_many(self, session_ids: Sequence[str], vectors: np.ndarray) -> list[TypologyGuess]:
        """One guess per row of ``vectors``; each session is left out of its own vote."""
        ids = [str(s) for s in session_ids]
        if len(self) < MIN_POOL:
            return [TypologyGuess(s, None, 0.0, float("inf"), self.cut, "empty",
                                  n_pool=len(self)) for s in ids]
        rows, sims = self.index.nearest_many(vectors, self.k, exclude=ids)
        names, codes = self._codes
        out = []
        for i, sid in enumerate(ids):
            ok = np.isfinite(sims[i])
            r, s = rows[i][ok], sims[i][ok].astype(np.float64)
            weights = np.clip(s, 1e-3, None)  # a similarity <= 0 still votes, barely
            votes = np.bincount(codes[r], weights=weights, minlength=len(names))
            order = [j for j in np.argsort(-votes, kind="stable") if votes[j] > 0]
            total = float(votes.sum()) or 1.0
            shares = {str(names[j]): float(votes[j]) / total for j in order}
            nearest = float(distance(s[0])) if len(s) else float("inf")
            top, share = next(iter(shares.items()), (None, 0.0))
            if nearest > self.cut:
                out.append(TypologyGuess(sid, None, share, nearest, self.cut, "far", shares,
                                         len(self)))
            elif share < self.min_share:
                out.append(TypologyGuess(sid, None, share, nearest, self.cut, "split", shares,
                                         len(self)))
            else:
                out.append(TypologyGuess(sid, top, share, nearest, self.cut, None, shares,
                                         len(self)))
        return out


def typology_pool(labels: pd.DataFrame) -> pd.DataFrame:
    """session_id, scenario of the labelled anomalies a guess can learn from."""
    if labels.empty:
        return pd.DataFrame({"session_id": pd.Series([], dtype=object),
                             "scenario": pd.Series([], dtype=object)})
    keep = labels["is_anomaly"].astype(bool) & ~labels["scenario"].fillna("").astype(str).isin(
        SKIPPED_SCENARIOS)
    pool = labels.loc[keep, ["session_id", "scenario"]]
    pool = pool.assign(session_id=pool["session_id"].astype(str).to_numpy(dtype=object),
                       scenario=pool["scenario"].astype(str).to_numpy(dtype=object))
    # sorted: a seeded sample of the pool must not depend on the order the labels came in
    return pool.sort_values("session_id", kind="stable").reset_index(drop=True)
