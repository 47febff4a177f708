"""Training a registered detector on the store's sessions and registering the model.

Unsupervised detectors train on sessions before ``train_end`` (default: the first 70% of the
data's time span) and leave out every session labelled anomalous, by any source. Supervised
detectors (``requires_labels``) train on every session before ``train_end``, labelled
anomalies included, with labels from ``core.pipeline.supervised``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.detectors import build_detector, get_detector_class
from core.detectors.registry import combines_members
from core.errors import ConfigError
from core.faults import crash_point
from core.features import TrainingScope
from core.features.column_names import looks_like_identifier
from core.features.extras import ExtraSelection
from core.features.history import HistorySpec
from core.features.session import holds_singletons
from core.pipeline.calendar import hold_short_cycles
from core.pipeline.history_default import history_choice
from core.pipeline.inputs import build_input, save_input_spec
from core.pipeline.operating_point import reference_and_point
from core.pipeline.regime import is_vetted, regime_overrides
from core.pipeline.registry import (
    default_train_end,
    models_dir_for,
    partial_folder,
    register_model_folder,
)
from core.pipeline.results import TrainResult
from core.pipeline.supervised import anomalous_sessions, fit_arguments, require_labels
from core.store import Store

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def train_model(
    store: Store,
    detector: str,
    *,
    train_end: dt.datetime | None = None,
    train_sessions: Sequence[str] | None = None,
    epochs: int | None = None,
    device: str = "auto",
    quiet: bool = False,
    config: dict[str, Any] | None = None,
    models_dir: Path | None = None,
    extras: ExtraSelection | None = None,
    contamination: float | None = None,
    fit: Callable[[Any, Any, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Fit ``detector`` on the store's training sessions, save it, register it, return its id.

    The feature spec (event types, what counts as novel, extra columns) is learned from the
    training sessions only; ``extras`` allows or denies extra columns by name. The model keeps
    its scores' distribution on its training sessions and its default operating point
    (core.pipeline.operating_point; ``contamination`` sets it as a share of training sessions).
    ``fit(model, data, fit_kwargs)`` fits elsewhere (core.scale.ray_train); default here.
    """
    if combines_members(detector):  # combines scored models: config {"members": [ids]} or latest
        from core.pipeline.ensemble import train_ensemble
        return train_ensemble(store, (config or {}).get("members"), models_dir=models_dir)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    cls = get_detector_class(detector)
    if store.summary.count_sessions() == 0:
        raise ConfigError(
            "The store must hold sessions to train on, got none. Ingest events first "
            "(`anomalyst ingest FILE` or `anomalyst generate --db PATH`)."
        )
    overrides = dict(config or {})
    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    if epochs is not None and "epochs" in fields:
        overrides["epochs"] = epochs
    if "device" in fields:
        overrides["device"] = device
    if "quiet" in fields:
        overrides["quiet"] = quiet
    model = build_detector(detector, **overrides)
    history_default = history_choice(model.config, cls.input_kind, given=overrides,
                                     shape=store.summary.session_shape)
    if history_default:  # saved in the model's config: the choice is the model's, not the store's
        overrides.update(history_default)
        model = build_detector(detector, **overrides)
    anomalous = anomalous_sessions(store)
    if cls.requires_labels:
        require_labels(detector, anomalous)  # before the input is built: fail fast

    history_request = HistorySpec() if getattr(model.config, "history_features", False) else None
    if train_sessions is not None:
        train_end = None
        scope = TrainingScope(session_ids=tuple(str(s) for s in train_sessions), extras=extras,
                              history=history_request, novelty_holdout=cls.novelty_held_out)
    else:
        train_end = train_end or default_train_end(store)
        scope = TrainingScope(until=train_end, extras=extras, history=history_request,
                              novelty_holdout=cls.novelty_held_out)
    input_started = time.perf_counter()
    built = build_input(store, cls.input_kind, progress=False if quiet else None,
                        training=scope)
    input_seconds = time.perf_counter() - input_started
    meta = built.meta
    if train_sessions is not None:
        wanted = set(scope.session_ids or ())
        in_train = meta["session_id"].isin(wanted).to_numpy()
        if not in_train.any():
            raise ConfigError(
                "train sessions must name sessions in the store, got none that match. Check "
                "the ids in the --train-sessions file."
            )
    else:
        in_train = (meta["start_ts"] < train_end).to_numpy() if train_end else np.ones(len(meta),
                                                                                       bool)
    is_anomalous = meta["session_id"].isin(anomalous).to_numpy()
    keep = in_train if cls.requires_labels else in_train & ~is_anomalous
    n_train = int(keep.sum())
    if n_train < 10:
        raise ConfigError(
            f"training needs at least 10 normal sessions before the train end, got {n_train}. "
            "Move --train-end later or ingest more data."
        )
    log.info("training %s on %d sessions (%d labelled anomalous left out)", detector, n_train,
             int((in_train & is_anomalous).sum()))
    labelled = meta["session_id"].astype(str).isin(getattr(anomalous, "labelled", ())).to_numpy()
    vetted = is_vetted(labelled[keep])
    regime = regime_overrides(model.config, vetted=vetted, given=overrides)
    if regime:  # the fields the pipeline decides by the window's regime
        model = build_detector(detector, **{**overrides, **regime})
    train_data = built.data.take(np.flatnonzero(keep))
    held: list[str] = []
    if cls.input_kind == "features" and not cls.requires_labels:
        fit_data, held = hold_short_cycles(train_data, meta["start_ts"].to_numpy()[keep])
        if held:
            log.info("the training window is shorter than the cycle of %s: held constant, "
                     "they do not count", ", ".join(held))
    else:
        fit_data = train_data
    fit_kwargs = fit_arguments(store, detector, train_data, meta["session_id"].to_numpy()[keep],
                               anomalous, train_end) if cls.requires_labels else {}
    fit_started = time.perf_counter()
    if fit is None:
        model.fit(fit_data, **fit_kwargs)
    else:
        fit(model, fit_data, fit_kwargs)
    fit_seconds = time.perf_counter() - fit_started

    model_id = f"{detector}-{started:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    partial = partial_folder(store, models_dir or models_dir_for(store), model_id)
    model.save(partial / "detector")
    save_input_spec(partial, built.spec)
    crash_point("train.after_save")
    seconds = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds()
    history = getattr(model, "history_", None)
    metrics: dict[str, Any] = {"train_seconds": round(seconds, 3),
                               "input_seconds": round(input_seconds, 3),
                               "fit_seconds": round(fit_seconds, 3)}
    if held:
        metrics["calendar_held"] = held
    metrics["training_window"] = {"vetted": vetted,
                                  "labelled_share": round(float(labelled[keep].mean()), 4)}
    if getattr(model.config, "trim_fraction", None):
        metrics["training_window"]["trim_fraction"] = model.config.trim_fraction
    if "epochs" in regime:
        metrics["training_window"]["epochs_cap"] = regime["epochs"]
    if "clip" in regime:
        metrics["training_window"]["clip"] = regime["clip"]
    if history is not None and hasattr(history, "to_dict"):
        metrics["history"] = history.to_dict()
    n_anomalous = int((keep & is_anomalous).sum()) if cls.requires_labels else 0
    # every session of the window, its labelled anomalies too: the reference keeps the normal
    # ones, and a labelled validation part can set the cut (core.pipeline.operating_point)
    window = train_data if cls.requires_labels else _reference_window(store, built, scope,
                                                                      cls, in_train)
    reference, point, risk = reference_and_point(
        model, window, is_anomalous[in_train], validation_fraction=_validation_fraction(model),
        supervised=cls.requires_labels, contamination=contamination, vetted=vetted)
    metrics["score_reference"] = reference.to_dict()
    metrics["operating_point"] = point.to_dict()
    metrics["risk_calibration"] = risk.to_dict()
    if cls.requires_labels:
        metrics["n_anomalous_train"] = n_anomalous
        for name in ("validation_ap", "event_validation_ap"):
            if hasattr(model, f"{name}_"):
                metrics[name] = getattr(model, f"{name}_")
    folder = register_model_folder(store, partial, {
        "model_id": model_id, "detector": detector, "created_at": started,
        "config": json.dumps(model.config.to_dict()), "feature_hash": built.feature_hash,
        "feature_spec": json.dumps(built.spec), "train_start": meta["start_ts"].min(),
        "train_end": train_end, "n_train": n_train, "metrics": json.dumps(metrics),
        "device": _device_of(model),
    })
    n_left_out = 0 if cls.requires_labels else int((in_train & is_anomalous).sum())
    notes = _notes(built.spec, held)
    if history_default.get("history_features"):
        notes += ("most sessions in the store are one event, so the model also reads each "
                  "session's history: its user's earlier activity and amounts, and what its "
                  "device, IP, merchant or card did before (pass --no-history to leave it out)",)
    if getattr(model.config, "trim_fraction", None):
        notes += (f"the training window is unlabelled ({labelled[keep].mean():.0%} of its "
                  f"sessions labelled), so it may hold anomalies: each batch's "
                  f"{model.config.trim_fraction:.0%} worst-reconstructed rows were left out "
                  "of the loss (label the window, or pass trim_fraction, to change this)",)
    if "epochs" in regime:
        notes += (f"on the unlabelled window it made at most {regime['epochs']} passes over the "
                  "data, so as not to learn the anomalies it may hold (pass epochs to change "
                  "this)",)
    return TrainResult(model_id, detector, folder, n_train, n_left_out, train_end, seconds,
                       n_anomalous, notes)


def _notes(spec: dict[str, Any], held: list[str]) -> tuple[str, ...]:
    """Sentences on how the features read the data: calendar columns held, extra columns
    ignored, extra columns read as instants."""
    notes = []
    if held:
        notes.append(f"left out {', '.join(held)}: the training window is shorter than "
                     "their cycle (a day for the hour, a week for the weekend)")
    extras = (spec.get("features") or {}).get("extras") or {}
    for name, why in extras.get("ignored", ()):
        notes.append(f"extra column {name!r} left out: {why}")
    for column in extras.get("columns", ()):
        if column.get("kind") == "datetime":
            notes.append(f"extra column {column['name']!r} holds dates or times: the model "
                         "reads the time from it to each event (extra_since_log)")
        elif column.get("kind") == "categorical" and looks_like_identifier(column["name"]):
            notes.append(f"extra column {column['name']!r} is named like an identifier: the "
                         "model reads it as a category (how rare each value is, values never "
                         "seen), not as a number")
    return tuple(notes)


def _reference_window(store: Store, built: Any, scope: TrainingScope, cls: type,
                      in_train: np.ndarray) -> Any:
    """The training window as the default threshold reads it: as new sessions will look.

    A feature detector trained on novelty counted in-sample (``novelty_held_out`` False: the
    ``vae``) has its reference scored on the count held out, when the training events hold an
    event type or transition only one session has (core.features.novelty): in-sample, no
    training session is novel, ~5% of new normal sessions were on a 300-type chain, and the
    99.5th percentile of the training scores flagged ten times the share it meant to."""
    rows = np.flatnonzero(in_train)
    if (cls.input_kind != "features" or cls.novelty_held_out
            or not holds_singletons(store.con, scope)):
        return built.data.take(rows)
    held = build_input(store, "features", progress=False,
                       training=dataclasses.replace(scope, novelty_holdout=True))
    if not np.array_equal(held.meta["session_id"].to_numpy(), built.meta["session_id"].to_numpy()):
        log.warning("the events changed while the reference was built: in-sample novelty kept")
        return built.data.take(rows)
    return held.data.take(rows)


def _validation_fraction(model: Any) -> float:
    return float(getattr(model.config, "validation_fraction", 0.1) or 0.1)


def _device_of(model: Any) -> str:
    net = getattr(model, "net_", None)
    if net is None:
        return "cpu"
    try:
        return str(next(net.parameters()).device)
    except StopIteration:
        return "cpu"
