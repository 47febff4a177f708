"""The learning effect of analysts' decisions: how the labelled set grew, how precision moved.

Precision is taken at the model's thresholds in force (each session's most specific saved
segment, else the default rule: ``core.thresholds.InForce``), over labelled sessions, once with
ground truth alone and once with ground truth plus analysts' decisions (an analyst's label
overrides the ground truth).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core import lookups
from core.errors import ConfigError
from core.store import Store
from core.thresholds import thresholds_in_force


@dataclass(frozen=True)
class LearningEffect:
    """Labelled-set growth and precision at the thresholds in force, without and with analysts.

    ``threshold`` is the one in force for segment ``all``; a session of a segment with its own
    saved threshold is flagged at that one. Precision is NaN when no labelled session is
    flagged.
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
    return store.cases.analyst_label_count()


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

    force = thresholds_in_force(store, model_id)
    segmented = any(s != "all" for s in force.saved)
    segments = store.scores.segments().set_index("session_id") if segmented else None
    out: dict[str, Any] = {}
    for name, sources in (("ground_truth", ("ground_truth",)),
                          ("with_analysts", ("ground_truth", "analyst"))):
        frame = lookups.labelled_scores(store, model_id, sources)
        known = frame[frame["is_anomaly"].notna()]
        out[f"n_labelled_{name}"] = int(len(known))
        scores = known["score"].to_numpy(np.float64)
        if segments is None:
            threshold = np.full(len(known), force.for_segment("all"))
        else:
            where = segments.reindex(known["session_id"])
            threshold = force.per_session(where["tenure"], where["country"])
        flagged = scores >= threshold
        hits = int((flagged & known["is_anomaly"].astype(bool).to_numpy()).sum())
        n_alerts = int(flagged.sum())
        out[f"precision_{name}"] = hits / n_alerts if n_alerts else float("nan")
        out[f"n_alerts_{name}"] = n_alerts
    return LearningEffect(model_id=model_id, threshold=force.for_segment("all"),
                          n_analyst_labels=analyst_label_count(store), **out)
