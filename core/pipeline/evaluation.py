"""Evaluating every scored model on labelled sessions (ground truth and analysts' decisions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.evaluate import evaluate_scores
from core.lookups import labelled_scores, score_table
from core.policy import AlertPolicy, policy_in_force
from core.schema import LABEL_SOURCES
from core.store import Store


def evaluate_models(
    store: Store,
    *,
    from_ts: dt.datetime | None = None,
    session_ids: Sequence[str] | None = None,
    sources: Sequence[str] = LABEL_SOURCES,
    model_ids: Sequence[str] | None = None,
    ks: Sequence[int] = (100,),
) -> list[dict[str, Any]]:
    """Metrics per scored model, on labelled sessions after ``from_ts`` (default: each model's
    own train end, so no model is judged on what it trained on) or in ``session_ids``. The
    model the alert policy scores with also gets ``policy``: precision, recall and F1 of the
    policy's verdicts (the one definition of "flagged") on the same sessions."""
    results = []
    policy = policy_in_force(store)
    verdicts = _verdicts(store, policy)
    models = store.models.scored()
    if model_ids is not None:
        models = models[models["model_id"].isin(list(model_ids))]
    wanted = set(session_ids) if session_ids is not None else None
    for model in models.itertuples():
        frame = labelled_scores(store, model.model_id, sources)
        frame = frame[frame["is_anomaly"].notna()]
        if wanted is not None:
            frame = frame[frame["session_id"].isin(wanted)]
            window = "given sessions"
        else:
            start = from_ts or (None if pd.isna(model.train_end) else model.train_end)
            if start is not None:
                frame = frame[frame["start_ts"] >= start]
            window = f"sessions from {start}" if start is not None else "all sessions"
        labels = frame["is_anomaly"].astype(bool).to_numpy()
        entry: dict[str, Any] = {
            "model_id": model.model_id, "detector": model.detector, "window": window,
            "n_sessions": int(len(frame)), "n_anomalous": int(labels.sum()),
        }
        if len(frame) and 0 < labels.sum() < len(labels):
            scenarios = np.where(labels, frame["scenario"].astype(str).to_numpy(), "normal")
            entry.update(evaluate_scores(frame["score"].to_numpy(np.float64), labels,
                                         scenarios=scenarios, ks=tuple(ks)))
        else:
            entry["note"] = "needs labelled anomalous and normal sessions in the window"
        if policy is not None and model.model_id == policy.model_id and len(frame):
            entry["policy"] = _policy_metrics(
                policy.version, verdicts.reindex(frame["session_id"], fill_value=False)
                .to_numpy(bool), labels)
        results.append(entry)
    return results


def _verdicts(store: Store, policy: AlertPolicy | None) -> pd.Series:
    """session_id -> the policy's verdict."""
    if policy is None:
        return pd.Series(dtype=bool)
    table = score_table(store, [policy.model_id])
    return pd.Series(policy.flags(table), index=table["session_id"].to_numpy())


def _policy_metrics(version: int, flagged: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    tp = int((flagged & labels).sum())
    n_flagged, n_anomalous = int(flagged.sum()), int(labels.sum())
    precision = tp / n_flagged if n_flagged else float("nan")
    recall = tp / n_anomalous if n_anomalous else float("nan")
    f1 = (2 * precision * recall / (precision + recall)) if tp else 0.0
    return {"version": version, "n_flagged": n_flagged, "precision": precision,
            "recall": recall, "f1": f1}
