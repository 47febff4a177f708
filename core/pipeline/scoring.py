"""Scoring every (or every new) session with a registered model, written back to the store."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from core.detectors.registry import combines_members
from core.faults import crash_point
from core.pipeline.inputs import build_input
from core.pipeline.registry import load_model, model_row
from core.pipeline.results import ScoreResult
from core.store import Store

log = logging.getLogger(__name__)


def score_model(store: Store, model_id: str, *, only_new: bool = False) -> ScoreResult:
    """Score sessions with ``model_id`` and replace its scores for them, in one transaction.

    Rerunning is idempotent: the same sessions get the same rows.
    """
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = model_row(store, model_id)
    if combines_members(str(row["detector"])):  # scores come from its members' scores
        from core.pipeline.ensemble import score_ensemble
        return score_ensemble(store, model_id, only_new=only_new)
    model = load_model(store, model_id, row=row)
    model.require_same_features()
    session_ids = None
    if only_new:
        session_ids = store.scores.unscored_sessions(model_id)
        if not session_ids:
            return ScoreResult(model_id, 0, 0, 0.0)
    built = build_input(store, model.detector.input_kind, model.spec, session_ids=session_ids)
    scores = np.asarray(model.detector.score(built.data), dtype=np.float64)
    frame = pd.DataFrame({"session_id": built.meta["session_id"].to_numpy(), "score": scores})
    events = _event_scores(model.detector, built.data)
    with store.scores.staged(frame, events=events), store.transaction():
        store.scores.replace(model_id, scored_at=started, only_new=only_new,
                             with_events=events is not None)
        crash_point("score.before_commit")
    seconds = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds()
    return ScoreResult(model_id, len(frame), 0 if events is None else len(events), seconds)


def _event_scores(detector, data) -> pd.DataFrame | None:
    """Long (session_id, event_id, position, score) rows for sequence detectors."""
    if detector.event_score_meaning is None:  # no per-event scores
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
