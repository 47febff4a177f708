"""Building a detector's input from the store, and remembering how it was built.

A model folder holds the detector (``detector/``) and ``inputs.json``: how its input was built
(the feature spec, or the sequence vocabulary and length). Scoring rebuilds the input from that
file, so a model always sees the columns it was trained on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import core.pipeline.feature_cache as feature_cache
from core.datasets import EventSequences, FeatureMatrix
from core.errors import ModelError
from core.features import FeatureSpec, TrainingScope, build_session_features
from core.store import Store

log = logging.getLogger(__name__)

INPUTS_FILE = "inputs.json"
DEFAULT_MAX_LEN = 64


@dataclass(frozen=True)
class DetectorInput:
    """A detector's data plus per-session meta (session_id, user_id, start_ts) in row order."""

    data: FeatureMatrix | EventSequences
    meta: pd.DataFrame
    spec: dict[str, Any]

    @property
    def feature_hash(self) -> str:
        return str(self.spec.get("hash", ""))


def build_input(
    store: Store, input_kind: str, spec: dict[str, Any] | None = None,
    *, session_ids: list[str] | None = None, max_len: int = DEFAULT_MAX_LEN,
    progress: bool | None = None, training: TrainingScope | None = None,
) -> DetectorInput:
    """Features or sequences for every session (or ``session_ids``), built as ``spec`` says.

    Features with a saved ``spec`` are read from the feature cache when it holds a full build
    for the current events (every session, or the rows of ``session_ids``: an explanation's
    few hundred sessions); a full build is otherwise built and written to it
    (core.pipeline.feature_cache). ``progress=False`` hides the text-embedding progress bar.
    Without a spec, ``training`` names the training events the new spec learns its
    vocabularies from (event types, novelty, extra columns; the sequences' vocabulary).
    """
    if input_kind == "features":
        if spec:
            cached = (feature_cache.read(store, spec) if session_ids is None else
                      feature_cache.read_rows(store, spec, session_ids))
            if cached is not None:
                log.info("session features: %d sessions read from the feature cache",
                         len(cached[1]))
                return DetectorInput(cached[0], cached[1], spec)
        feature_spec = FeatureSpec.from_dict(spec["features"]) if spec else None
        built = build_session_features(store.con, spec=feature_spec, session_ids=session_ids,
                                       progress=progress,
                                       training=None if feature_spec else training)
        out_spec = {"kind": "features", "features": built.spec.to_dict(), "hash": built.spec.hash}
        if spec and session_ids is None:  # not a training build: a spec learned in this
            # process rounds differently (~1e-7) from the saved one, and scores must not
            # depend on which build the cache happens to hold
            feature_cache.write(store, out_spec, built.matrix, built.meta)
        return DetectorInput(built.matrix, built.meta, out_spec)
    from core.features.sequences import SequenceSpec, build_event_sequences

    seq_spec = SequenceSpec.from_dict(spec["sequences"]) if spec else None
    vocab = None
    if seq_spec is None and training is not None:
        from core.features.sequences import build_vocab

        vocab = build_vocab(store.con, until=training.until, session_ids=training.session_ids)
    built_seq = build_event_sequences(
        store.con, spec=seq_spec, max_len=max_len if seq_spec is None else seq_spec.max_len,
        session_ids=session_ids, vocab=vocab,
    )
    spec_dict = built_seq.spec.to_dict()
    out_spec = {"kind": "sequences", "sequences": spec_dict, "hash": _spec_hash(spec_dict)}
    return DetectorInput(built_seq.sequences, built_seq.meta, out_spec)


def _spec_hash(spec: dict[str, Any]) -> str:
    """A stable fingerprint of a sequence spec (vocabulary, scaling, length, version)."""
    import hashlib

    payload = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def save_input_spec(folder: Path, spec: dict[str, Any]) -> None:
    (folder / INPUTS_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")


def load_input_spec(folder: Path) -> dict[str, Any]:
    path = folder / INPUTS_FILE
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{path} must be a readable JSON file, got an error: {exc}. The model folder is "
            "damaged: train the model again."
        ) from exc
    if not isinstance(spec, dict) or spec.get("kind") not in ("features", "sequences"):
        raise ModelError(f"{path} must describe a features or sequences input. Retrain the model.")
    return spec
