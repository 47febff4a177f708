"""Labels for the supervised detectors, read from the store.

Session labels come from ground truth and analysts' decisions, one per session (an analyst's
decision overrides the ground truth: ``store.labels.session_labels``). Training sessions that
nobody labelled count as normal: labels are rare and an unlabelled session is far more often
normal than not. Event labels (for sequence detectors) are, per event: its own label when one
exists (analyst over ground truth); 0 in a session whose final label is normal (an analyst who
clears a session clears its events); unknown (NaN) in an anomalous session without event labels.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from core.datasets import EventSequences, FeatureMatrix
from core.detectors._refusals import unsupervised_detectors
from core.errors import ConfigError
from core.schema import LABEL_SOURCES
from core.store import Store


class AnomalousSessions(set[str]):
    """The ids of the sessions labelled anomalous, and ``n_labelled``: how many sessions
    carry a final label at all (so "no labels" and "labels, none anomalous" differ), and
    ``labelled``: their ids."""

    n_labelled: int = 0
    labelled: frozenset[str] = frozenset()


def anomalous_sessions(store: Store) -> AnomalousSessions:
    """Ids of the sessions whose final label (analyst over ground truth) is anomalous."""
    labels = store.labels.session_labels(LABEL_SOURCES)
    out = AnomalousSessions(labels.loc[labels["is_anomaly"].astype(bool), "session_id"])
    out.labelled = frozenset(labels["session_id"].astype(str))
    out.n_labelled = len(out.labelled)
    return out


def require_labels(detector: str, anomalous: set[str]) -> None:
    """ConfigError naming the unsupervised detectors when the store has no anomalous label:
    one message when it has no labels, another when its labels are all normal."""
    if anomalous:
        return
    unsupervised = unsupervised_detectors()
    n_labelled = getattr(anomalous, "n_labelled", 0)
    if n_labelled:
        raise ConfigError(
            f"`{detector}` must be trained on some sessions labelled anomalous, got labels on "
            f"{n_labelled:,} sessions and every one normal. A classifier needs anomalous "
            "examples: confirm some (`anomalyst case decide ... --decision fraud_confirmed`, "
            "`anomalyst ingest-labels`), or use an unsupervised detector, which learns from "
            f"normal sessions alone: {unsupervised}."
        )
    raise ConfigError(
        f"`{detector}` must be trained on labelled sessions, got none in the store. "
        "Ingest labels with `anomalyst ingest-labels`, decide cases, or use an "
        f"unsupervised detector: {unsupervised}."
    )


def training_labels(
    detector: str, session_ids: np.ndarray, anomalous: set[str], train_end: dt.datetime | None,
) -> np.ndarray:
    """float (n,) 0/1 label of each training session; ConfigError without both classes."""
    require_labels(detector, anomalous)
    y = pd.Series(session_ids).isin(anomalous).to_numpy(dtype=np.float64)
    if y.sum() == 0:
        window = f"before the train end {train_end}" if train_end else "in the given sessions"
        raise ConfigError(
            f"`{detector}` must be trained on labelled anomalous sessions, got none {window} "
            f"({len(anomalous):,} in the store). Move --train-end later, or use an "
            f"unsupervised detector: {unsupervised_detectors()}."
        )
    if y.sum() == len(y):
        raise ConfigError(
            f"`{detector}` must be trained on normal sessions too, got only anomalous ones "
            f"({len(y):,}). Widen the training window."
        )
    return y


def training_event_labels(store: Store, data: EventSequences, y: np.ndarray) -> np.ndarray:
    """float (n, L) event labels of the training sequences: 1, 0 or NaN (see module doc)."""
    mask = np.asarray(data.mask, dtype=bool)
    out = np.full(mask.shape, np.nan)
    normal = y == 0
    out[normal[:, None] & mask] = 0.0
    known = store.labels.training_event_labels(LABEL_SOURCES)
    if known.empty:
        return out
    by_event = pd.Series(known["is_anomaly"].astype(float).to_numpy(),
                         index=known["event_id"].to_numpy())
    rows, cols = np.nonzero(mask & ~normal[:, None])
    values = pd.Series(data.event_ids[rows, cols]).map(by_event).to_numpy(dtype=np.float64)
    out[rows, cols] = values
    return out


def fit_arguments(
    store: Store, detector: str, data: FeatureMatrix | EventSequences,
    session_ids: np.ndarray, anomalous: set[str], train_end: dt.datetime | None,
) -> dict[str, np.ndarray]:
    """Keyword arguments ``y`` (and ``event_labels`` for sequences) for a supervised fit."""
    y = training_labels(detector, session_ids, anomalous, train_end)
    if isinstance(data, EventSequences):
        return {"y": y, "event_labels": training_event_labels(store, data, y)}
    return {"y": y}
