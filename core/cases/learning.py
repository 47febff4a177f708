"""The learning effect of analysts' decisions: how the labelled set grew, how precision moved.

Precision is taken at the model's threshold in force for segment ``all`` (the saved one, else
the default rule), over labelled sessions, once with ground truth alone and once with ground
truth plus analysts' decisions (an analyst's label overrides the ground truth).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core import lookups
from core.errors import ConfigError
from core.evaluate import ThresholdTable
from core.pipeline.operating_point import operating_point
from core.store import Store


@dataclass(frozen=True)
class LearningEffect:
    """Labelled-set growth and precision at the threshold in force, without and with analysts.

    Precision is NaN when no labelled session is flagged at the threshold.
    """

    model_id: str
    threshold: float
    n_analyst_labels: int
    n_labelled_ground_truth: int
    n_labelled_with_analysts: int
    precision_ground_truth: float
    precision_with_analysts: float
    n_alerts_ground_truth: int
    n_alerts_with_analysts: int

    @property
    def n_added(self) -> int:
        """Sessions labelled only thanks to analysts."""
        return self.n_labelled_with_analysts - self.n_labelled_ground_truth

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_added": self.n_added}


def analyst_label_count(store: Store) -> int:
    """How many session labels analysts' decisions have written."""
    return int(store.scalar("analyst_label_count") or 0)


def learning_effect(store: Store, model_id: str | None = None) -> LearningEffect:
    """The effect of analysts' labels on ``model_id`` (default: the newest scored model)."""
    models = lookups.scored_models(store)
    if models.empty:
        raise ConfigError("the store must have a scored model, got none. Run `anomalyst train` "
                          "and `anomalyst score` first.")
    if model_id is None:
        model_id = str(models.sort_values("created_at")["model_id"].iloc[-1])
    elif model_id not in set(models["model_id"]):
        raise ConfigError(f"model must be a scored model, got {model_id!r}. Choose one of "
                          f"{', '.join(models['model_id'])}.")

    threshold = _threshold_in_force(store, model_id)
    out: dict[str, Any] = {}
    for name, sources in (("ground_truth", ("ground_truth",)),
                          ("with_analysts", ("ground_truth", "analyst"))):
        frame = lookups.labelled_scores(store, model_id, sources)
        known = frame[frame["is_anomaly"].notna()]
        out[f"n_labelled_{name}"] = int(len(known))
        if len(known):
            point = ThresholdTable.from_scores(known["score"].to_numpy(np.float64),
                                               known["is_anomaly"].astype(bool).to_numpy()
                                               ).at(threshold)
            out[f"precision_{name}"], out[f"n_alerts_{name}"] = point.precision, point.n_alerts
        else:
            out[f"precision_{name}"], out[f"n_alerts_{name}"] = float("nan"), 0
    return LearningEffect(model_id=model_id, threshold=threshold,
                          n_analyst_labels=analyst_label_count(store), **out)


def _threshold_in_force(store: Store, model_id: str) -> float:
    saved = store.frame("thresholds_for_model", {"model_id": model_id})
    row = saved[saved["segment"] == "all"]
    if not row.empty:
        return float(row["threshold"].iloc[0])
    return operating_point(store, model_id).threshold
