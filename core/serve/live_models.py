"""The alert policy's model, loaded once and scored on a few sessions at a time.

A single detector model scores the sessions' inputs (``build_input`` scoped to them) as
``score_model`` would. An ensemble scores each member the same way, then combines the members'
scores with its own ``EnsembleCombiner`` (rank-normalised against each member's training
reference, weighted) as ``score_ensemble`` would; members sharing an input spec share one
input build, and members of weight 0 are not scored (their contribution is 0 whatever they
say). Every score written (members', the ensemble's, its contributions, a sequence
model's per-event scores) replaces those sessions' earlier ones, in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.datasets import EventSequences
from core.errors import ModelError
from core.store import Store


@dataclass(frozen=True)
class LiveModel:
    """A loaded model (``single``) or an ensemble (``combiner`` over ``members``)."""

    model_id: str
    single: Any = None  # core.pipeline.registry.LoadedModel
    combiner: Any = None  # core.detectors.ensemble.EnsembleCombiner
    members: tuple[Any, ...] = ()


def load_live_model(store: Store, model_id: str) -> LiveModel:
    """Load ``model_id`` (and, for an ensemble, every member) and check their files."""
    from core.detectors.ensemble import EnsembleCombiner
    from core.detectors.registry import combines_members
    from core.pipeline.registry import load_model, model_folder, model_row

    row = model_row(store, model_id)
    if not combines_members(str(row["detector"])):
        model = load_model(store, model_id, row=row)
        model.require_same_features()
        return LiveModel(model_id, single=model)
    combiner = EnsembleCombiner.load(model_folder(row, store))
    if combiner.fingerprint != row["feature_hash"]:
        raise ModelError(f"ensemble {model_id} files must match the registry, got another "
                         "fingerprint on disk. Train the ensemble again.")
    members = []
    for member_id in combiner.members:
        member = load_model(store, member_id, row=model_row(store, member_id))
        member.require_same_features()
        members.append(member)
    return LiveModel(model_id, combiner=combiner, members=tuple(members))


def score_sessions(store: Store, live: LiveModel, session_ids: list[str],
                   scored_at: Any) -> pd.DataFrame:
    """session_id, score of ``live``'s model on ``session_ids`` (those it could score), with
    every score written to the store."""
    inputs: dict[str, Any] = {}
    if live.single is not None:
        scores, events = _score(store, live.single, session_ids, inputs)
        with (store.scores.staged(scores, events=events), store.transaction()):
            store.scores.replace(live.model_id, scored_at=scored_at, only_new=True,
                                 with_events=events is not None)
        return scores
    # A member with weight 0 adds nothing to the score (an ensemble trained with labels often
    # keeps only its best member): it is not scored live, its column is 0.
    active = [m for m, w in zip(live.members, live.combiner.weights, strict=True) if w > 0]
    per_member = {m.model_id: _score(store, m, session_ids, inputs) for m in active}
    wide = None
    for member_id, (scores, _) in per_member.items():
        part = scores.rename(columns={"score": member_id})
        wide = part if wide is None else wide.merge(part, on="session_id")  # scored by all
    assert wide is not None
    matrix = np.column_stack([
        wide[m.model_id].to_numpy(np.float64) if m.model_id in per_member
        else np.zeros(len(wide)) for m in live.members])
    score, contributions = live.combiner.combine(matrix)
    sessions = wide["session_id"].to_numpy()
    combined = pd.DataFrame({"session_id": sessions, "score": score})
    shares = pd.DataFrame({
        "session_id": np.repeat(sessions, len(live.members)),
        "member_id": np.tile(np.array(live.combiner.members, dtype=object), len(sessions)),
        "contribution": contributions.ravel()})
    write_scores(store, live, {m: scores for m, (scores, _) in per_member.items()}, combined,
                 shares, scored_at, events={m: e for m, (_, e) in per_member.items()})
    return combined


def _score(store: Store, model: Any, session_ids: list[str], inputs: dict[str, Any]
           ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Session scores (and a sequence model's per-event scores) for ``session_ids``; inputs
    are built once per (kind, spec) and kept in ``inputs``."""
    from core.pipeline.inputs import build_input

    key = model.input_kind + json.dumps(model.spec, sort_keys=True, default=str)
    if key not in inputs:
        inputs[key] = build_input(store, model.input_kind, model.spec, session_ids=session_ids)
    built = inputs[key]
    data = built.data
    scores = np.asarray(model.detector.score(data), dtype=np.float64)
    frame = pd.DataFrame({"session_id": built.meta["session_id"].to_numpy(), "score": scores})
    if model.detector.event_score_meaning is None or not isinstance(data, EventSequences):
        return frame, None
    per_event = np.asarray(model.detector.score_events(data), dtype=np.float64)
    rows, cols = np.nonzero(data.mask)
    values = per_event[rows, cols]
    ok = np.isfinite(values)
    return frame, pd.DataFrame({
        "session_id": data.session_ids[rows[ok]], "event_id": data.event_ids[rows[ok], cols[ok]],
        "position": cols[ok].astype(np.int32), "score": values[ok]})


def write_scores(store: Store, live: LiveModel, member_scores: dict[str, pd.DataFrame],
                 combined: pd.DataFrame, shares: pd.DataFrame | None, scored_at: Any, *,
                 events: dict[str, pd.DataFrame | None] | None = None) -> None:
    """Replace the sessions' scores of an ensemble's members, of the ensemble and its
    contributions (``shares``), in one transaction; a single model: ``combined`` alone."""
    events = events or {}
    with store.transaction():
        if live.single is not None:
            with store.scores.staged(combined):
                store.scores.replace(live.model_id, scored_at=scored_at, only_new=True)
            return
        for member_id, scores in member_scores.items():
            per_event = events.get(member_id)
            with store.scores.staged(scores, events=per_event):
                store.scores.replace(member_id, scored_at=scored_at, only_new=True,
                                     with_events=per_event is not None)
        with store.scores.staged(combined, contributions=shares):
            store.scores.replace(live.model_id, scored_at=scored_at, only_new=True)
            store.ensembles.replace_contributions(live.model_id, only_new=True)
