"""What training and scoring hand back; shared by the detector and ensemble paths."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainResult:
    """What ``train_model`` registered."""

    model_id: str
    detector: str
    path: Path
    n_train: int
    n_excluded_anomalous: int
    train_end: dt.datetime | None
    seconds: float
    n_anomalous: int = 0
    """Labelled anomalous sessions trained on (supervised detectors; 0 otherwise)."""
    notes: tuple[str, ...] = ()
    """What the training left out of the features, and why (shown by the front ends)."""


@dataclass(frozen=True)
class ScoreResult:
    model_id: str
    n_sessions: int
    n_events: int
    seconds: float
