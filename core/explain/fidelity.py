"""How faithful per-event contributions are: against labelled events, and by deleting events.

* Top-k hit: is at least one injected (labelled anomalous) event among the k events with the
  largest contribution? Compared with ``chance_hit``, the same probability for a random
  ranking: in a session where most events are injected, any ranking hits.
* Deletion: removing the top-k events should lower the score more than removing k random
  events (``deletion_test``); both use the same drop-and-shift as occlusion.

    >>> round(chance_hit(n_events=10, n_injected=1, k=3), 6)
    0.3
    >>> import numpy as np
    >>> top_k_hit(np.array([0.1, 0.9, 0.2, 0.0]), np.array([False, True, False, False]), k=1)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np
import pandas as pd

from core.datasets import EventSequences
from core.explain.sequence import drop_events, n_real_events
from core.store import Store


def top_k(contributions: np.ndarray, k: int = 3) -> np.ndarray:
    """Positions of the ``k`` largest contributions (NaN last; ties by position)."""
    values = np.nan_to_num(np.asarray(contributions, float), nan=-np.inf)
    return np.argsort(-values, kind="stable")[:k]


def top_k_hit(contributions: np.ndarray, injected: np.ndarray, k: int = 3) -> bool:
    """Whether an injected event is among the ``k`` largest contributions."""
    return bool(np.asarray(injected, bool)[top_k(contributions, k)].any())


def top_k_recall(contributions: np.ndarray, injected: np.ndarray, k: int = 3) -> float:
    """|top-k ∩ injected| / min(k, n_injected): 1 when the top k are all injected (or hold
    every injected event)."""
    injected = np.asarray(injected, bool)
    n = int(injected.sum())
    if n == 0:
        return float("nan")
    return float(injected[top_k(contributions, k)].sum()) / min(k, n)


def chance_hit(n_events: int, n_injected: int, k: int = 3) -> float:
    """P(a random ranking puts an injected event in its top k)."""
    k = min(k, n_events)
    if n_injected <= 0 or n_events <= 0:
        return 0.0
    return 1.0 - comb(n_events - n_injected, k) / comb(n_events, k)


@dataclass(frozen=True)
class DeletionResult:
    """Score drops (score before minus after) when removing the top k or k random events."""

    score: float
    drop_top: float
    drop_random: float  # mean over the random draws


def deletion_test(detector: Any, data: EventSequences, row: int, contributions: np.ndarray,
                  *, k: int = 3, n_random: int = 20, seed: int = 0) -> DeletionResult | None:
    """Remove the top-``k`` events, and ``n_random`` draws of ``k`` random events, from session
    ``row`` and rescore; None when the session has no more than ``k`` events."""
    n = n_real_events(data, row)
    if n <= k:
        return None
    rng = np.random.default_rng(seed)
    sets = [top_k(contributions[:n], k)] + [rng.choice(n, k, replace=False)
                                            for _ in range(n_random)]
    scores = np.asarray(detector.score(drop_events(data, row, sets)), dtype=np.float64)
    full = float(detector.score(data.take(np.array([row])))[0])
    return DeletionResult(full, full - float(scores[0]), float(full - scores[1:].mean()))


def injected_events(store: Store) -> pd.DataFrame:
    """Ground-truth event labels: session_id, event_id, is_anomaly, scenario."""
    return store.explanations.event_labels()
