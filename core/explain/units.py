"""The units attributions are measured in: a detector's score, or its log-odds.

A classifier's calibrated probability saturates: between 0.9990 and 0.9998 lies most of what
separates a borderline card-testing session from a blatant one, and removing an event moves the
probability by 1e-4 while it moves the log-odds by 1.6. Attributions of a probability output
(``Detector.outputs_probability``) are therefore computed on ``log(p / (1 - p))``, where effects
add up and are not squashed, and are labelled as log-odds.

    >>> import numpy as np
    >>> log_odds(np.array([0.5, 0.9998])).round(2).tolist()
    [0.0, 8.52]
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCORE = "score"
LOG_ODDS = "log-odds"
EPS = 1e-9
"""Probabilities are clipped to [EPS, 1 - EPS] before the log-odds (±20.7)."""


def log_odds(p: np.ndarray) -> np.ndarray:
    """float64 ``log(p / (1 - p))`` of probabilities, clipped away from 0 and 1."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


def from_units(value: float, units: str) -> float:
    """A value in ``units`` back to the detector's score (the probability for log-odds)."""
    return float(1.0 / (1.0 + np.exp(-value))) if units == LOG_ODDS else float(value)


def units_of(detector: Any) -> str:
    """LOG_ODDS for a detector whose score is a probability, else SCORE."""
    return LOG_ODDS if bool(getattr(detector, "outputs_probability", False)) else SCORE


def in_units(scores: np.ndarray, units: str) -> np.ndarray:
    """Scores as float64 in ``units``."""
    values = np.asarray(scores, dtype=np.float64)
    return log_odds(values) if units == LOG_ODDS else values
