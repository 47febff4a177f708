"""The model registry: a model's row, its folder, loading it, the default train end, and
which models are the latest.

The rows live in the store (``store.models``); the folders beside it (``models_dir_for``),
written whole or not at all (core.pipeline.model_folders). Training, scoring, the ensemble
and explanations reach models only through here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ModelError
from core.pipeline.inputs import load_input_spec
from core.pipeline.model_folders import (
    model_folder,
    partial_folder,
    register_model_folder,
    sweep_partial_folders,
)
from core.store import Store

__all__ = [
    "DEFAULT_TRAIN_SHARE",
    "ENSEMBLE",
    "LoadedModel",
    "default_train_end",
    "input_kind_of",
    "latest_models",
    "load_model",
    "model_folder",
    "model_row",
    "models_dir_for",
    "partial_folder",
    "register_model_folder",
    "sweep_partial_folders",
]

ENSEMBLE = "ensemble"
"""The detector name of ensembles: they combine other models' scores. A literal, not
``EnsembleCombiner.kind``: importing core.detectors loads torch, and pages that only read the
registry must not (tests/core/app/test_investigate.py); a test checks the two agree."""

DEFAULT_TRAIN_SHARE = 0.7
"""Without --train-end, train on the first 70% of the time span and keep 30% for evaluation."""


def model_row(store: Store, model_id: str) -> dict[str, Any]:
    """The registered model ``model_id``; ModelError listing the known ids otherwise."""
    row = store.models.by_id(model_id)
    if row is None:
        known = store.models.ids()
        raise ModelError(
            f"model must be one of the registered models ({', '.join(known) or 'none'}), got "
            f"{model_id!r}. Train one with `anomalyst train --detector NAME`."
        )
    return row


def models_dir_for(store: Store) -> Path:
    """Model folders live beside the store file (``<store dir>/models``)."""
    if str(store.path) == ":memory:":
        return Path("data") / "models"
    return store.path.parent / "models"


def default_train_end(store: Store) -> dt.datetime | None:
    """70% into the data's span, far-out timestamps left out (``robust_time_span``)."""
    first, last = store.summary.robust_time_span()
    if first is None or last is None:
        return None
    return first + (last - first) * DEFAULT_TRAIN_SHARE


def latest_models(store: Store) -> list[str]:
    """The newest model of each detector that is not retired; ensembles last, since they
    combine the others' scores (score them after their members)."""
    from core.detectors.registry import combines_members

    listing = store.models.listing()
    latest = listing[~listing["retired"].astype(bool)].groupby("detector")["model_id"].last()
    ids = [str(m) for d, m in latest.items() if not combines_members(str(d))]
    return ids + [str(m) for d, m in latest.items() if combines_members(str(d))]


def input_kind_of(detector: str, spec: dict[str, Any]) -> str:
    """'features' or 'sequences': what the detector reads (its spec's kind when unknown)."""
    from core.detectors import available_detectors, get_detector_class  # torch: only here

    if detector in available_detectors():
        return get_detector_class(detector).input_kind
    return str(spec.get("kind", "features"))


@dataclass(frozen=True)
class LoadedModel:
    """A registered detector model, loaded from its folder."""

    model_id: str
    detector_name: str
    detector: Any
    spec: dict[str, Any]
    input_kind: str
    train_end: Any
    feature_hash: Any = None
    """What the registry recorded for the features it was trained on."""

    def require_same_features(self) -> None:
        """ModelError when the folder's input spec is not the one the registry recorded."""
        if self.spec.get("hash") != self.feature_hash:
            raise ModelError(
                f"model {self.model_id} must be scored on the features it was trained on, but "
                f"its inputs.json ({self.spec.get('hash')}) differs from the registry "
                f"({self.feature_hash}). Train the model again."
            )


def load_model(store: Store, model_id: str, *, row: dict[str, Any] | None = None
               ) -> LoadedModel:
    """Load detector model ``model_id`` (``row``: its registry row, when already read)."""
    from core.detectors import load_detector  # torch: only when a model is loaded

    row = model_row(store, model_id) if row is None else row
    folder = model_folder(row, store)
    spec = load_input_spec(folder)
    detector = load_detector(folder / "detector")
    train_end = row.get("train_end")
    train_end = None if train_end is None or pd.isna(train_end) else train_end
    return LoadedModel(model_id, str(row["detector"]), detector, spec,
                       input_kind_of(str(row["detector"]), spec), train_end,
                       row.get("feature_hash"))
