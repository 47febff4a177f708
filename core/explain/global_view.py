"""The global view: mean |SHAP| per feature over a feature model's flagged sessions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core import lookups
from core.errors import ModelError
from core.explain.session import background_ids, feature_matrix
from core.explain.shap_features import FeatureExplainer, mean_abs_shap
from core.pipeline.inputs import build_input
from core.pipeline.registry import load_model
from core.store import Store
from core.thresholds import thresholds_in_force

MAX_SESSIONS = 100
"""At most this many flagged sessions (the highest scores) enter the global view: each costs
time, and the mean over 100 is steady to a few percent (docs/BENCHMARKS.md, 'Measurements
behind design choices')."""


def flagged_session_ids(store: Store, model_id: str) -> list[str]:
    """Sessions ``model_id`` flags at the thresholds in force, highest score first."""
    table = lookups.score_table(store, [model_id])
    flagged = table[thresholds_in_force(store, model_id).flags(table, model_id)]
    return flagged.sort_values(f"score:{model_id}", ascending=False, kind="stable")[
        "session_id"].tolist()


def global_shap(store: Store, model_id: str, *, session_ids: list[str] | None = None,
                max_sessions: int = MAX_SESSIONS) -> pd.DataFrame:
    """feature, mean_abs_shap, mean_shap over the model's flagged sessions (or
    ``session_ids``), at most ``max_sessions`` of them; ``n_sessions`` in ``attrs``."""
    model = load_model(store, model_id)
    if model.input_kind != "features":
        raise ModelError(
            f"the global SHAP view must be asked of a feature model, got {model.detector_name} "
            f"({model_id}), a sequence model. Pick an autoencoder, zscore, ... model."
        )
    ids = (flagged_session_ids(store, model_id) if session_ids is None else list(session_ids))
    ids = ids[:max_sessions]
    if not ids:
        frame = mean_abs_shap([])
        frame.attrs["n_sessions"] = 0
        return frame
    bg = background_ids(store, model.train_end)
    built = build_input(store, "features", model.spec, session_ids=list(dict.fromkeys(
        [*ids, *bg])))
    index = {str(s): i for i, s in enumerate(built.meta["session_id"])}
    matrix = feature_matrix(built)
    explainer = FeatureExplainer(model_id, model.detector,
                                 matrix.take(np.array([index[s] for s in bg])))
    attributions = [explainer.explain(matrix, index[s]) for s in ids]
    frame = mean_abs_shap(attributions)
    frame.attrs["n_sessions"] = len(ids)
    frame.attrs["max_additivity_error"] = max(a.additivity_error for a in attributions)
    return frame
