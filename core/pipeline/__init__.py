"""Training, scoring and evaluating models over the store.

The names below load on first use (PEP 562), so that reading a model's registry row or
operating point (``core.pipeline.registry``, ``core.pipeline.operating_point``) does not
import the detectors and torch: the dashboard's pages ask those on every rerun.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ScoreResult": "results", "TrainResult": "results",
    "default_train_end": "registry", "model_row": "registry",
    "evaluate_models": "evaluation", "labelled_scores": "evaluation",
    "score_model": "scoring", "train_model": "training",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'core.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core.pipeline.{_HOMES[name]}"), name)
