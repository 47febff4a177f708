"""The engine's façade for the CLI and the dashboard: train, score, evaluate."""

from __future__ import annotations

from core.pipeline.evaluation import evaluate_models, labelled_scores
from core.pipeline.registry import default_train_end, model_row
from core.pipeline.results import ScoreResult, TrainResult
from core.pipeline.scoring import score_model
from core.pipeline.training import train_model

__all__ = [
    "ScoreResult",
    "TrainResult",
    "default_train_end",
    "evaluate_models",
    "labelled_scores",
    "model_row",
    "score_model",
    "train_model",
]
