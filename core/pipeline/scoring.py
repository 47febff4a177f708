"""Scoring every (or every new) session with a registered model, written back to the store."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.detectors import load_detector
from core.errors import ModelError
from core.faults import crash_point
from core.pipeline.inputs import build_input, load_input_spec
from core.pipeline.model_folders import model_folder
from core.pipeline.training import model_row
from core.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreResult:
    model_id: str
    n_sessions: int
    n_events: int
    seconds: float


def score_model(store: Store, model_id: str, *, only_new: bool = False) -> ScoreResult:
    """Score sessions with ``model_id`` and replace its scores for them, in one transaction.

    Rerunning is idempotent: the same sessions get the same rows.
    """
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = model_row(store, model_id)
    if row["detector"] == "ensemble":  # scores come from its members' scores
        from core.pipeline.ensemble import score_ensemble
        return score_ensemble(store, model_id, only_new=only_new)
    folder = model_folder(row, store)
    detector = load_detector(folder / "detector")
    spec = load_input_spec(folder)
    if spec.get("hash") != row["feature_hash"]:
        raise ModelError(
            f"model {model_id} must be scored on the features it was trained on, but its "
            f"inputs.json ({spec.get('hash')}) differs from the registry ({row['feature_hash']})."
            " Train the model again."
        )
    session_ids = None
    if only_new:
        session_ids = store.frame("unscored_sessions", {"model_id": model_id})["session_id"]
        session_ids = session_ids.tolist()
        if not session_ids:
            return ScoreResult(model_id, 0, 0, 0.0)
    built = build_input(store, detector.input_kind, spec, session_ids=session_ids)
    scores = np.asarray(detector.score(built.data), dtype=np.float64)
    frame = pd.DataFrame({"session_id": built.meta["session_id"].to_numpy(), "score": scores})
    events = _event_scores(detector, built.data)
    con = store.con
    con.register("_new_scores", frame)
    if events is not None:
        con.register("_new_event_scores", events)
    try:
        with store.transaction():
            params = {"model_id": model_id}
            store.run("delete_scores_of" if only_new else "delete_scores", params)
            store.run("insert_scores", {**params, "scored_at": started})
            if events is not None:
                store.run("delete_event_scores_of" if only_new else "delete_event_scores", params)
                store.run("insert_event_scores", params)
            crash_point("score.before_commit")
    finally:
        con.unregister("_new_scores")
        if events is not None:
            con.unregister("_new_event_scores")
    seconds = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds()
    return ScoreResult(model_id, len(frame), 0 if events is None else len(events), seconds)


def _event_scores(detector, data) -> pd.DataFrame | None:
    """Long (session_id, event_id, position, score) rows for sequence detectors."""
    if not hasattr(detector, "score_events"):
        return None
    per_event = np.asarray(detector.score_events(data), dtype=np.float64)
    rows, cols = np.nonzero(data.mask)
    values = per_event[rows, cols]
    finite = np.isfinite(values)
    return pd.DataFrame({
        "session_id": data.session_ids[rows[finite]],
        "event_id": data.event_ids[rows[finite], cols[finite]],
        "position": cols[finite].astype(np.int32),
        "score": values[finite],
    })
