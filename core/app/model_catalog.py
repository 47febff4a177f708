"""The model catalog (issue #25, item 4): what each registered model is, how it trained, how
it does on its own time window, which policy uses it; retiring a model; training runs started
in the background (the dashboard's Models page and ``anomalyst models``).

Retirement is kept in the model's metrics JSON (``metrics.retired = {"at", "by"}``), not in a
new column: it needs no schema version (no store has to be migrated for a flag read with the
row), and the row, its folder and its scores stay as they were. A retired model is left out
of the catalog's default listing (``include_retired=False``) and its pickers; the model the
alert policy in force scores with cannot be retired.

A training run is ``python -m core.app.model_catalog run RUN_FILE``: a detached process (its
own session, so it outlives the browser tab and the dashboard's script run) that runs
``python -m cli.main train --detector NAME --db PATH`` and records its status, start, end,
exit code, the new model id, the log's tail and the latest loss its progress bar printed in
``<store dir>/training_runs/<run id>.json`` (its log beside it).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import ConfigError, ModelError
from core.pipeline.registry import ENSEMBLE

if TYPE_CHECKING:
    from core.store import Store

ROOT = Path(__file__).resolve().parents[2]
RUNS_DIR = "training_runs"
LOG_TAIL_LINES = 40
CALIBRATION_BINS = 10


# --- reading ---------------------------------------------------------------------------------
def _metrics(text: Any) -> dict[str, Any]:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return {}
    try:
        found = json.loads(str(text))
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def time_split(card: dict[str, Any]) -> str:
    """Where a model's training time went, in words ("12.3 s building its features, 0.4 s
    fitting"), or "not recorded" for a model trained before the split was kept.

        >>> time_split({"input_seconds": 12.34, "fit_seconds": 0.4, "spec": "features"})
        '12.3 s building its features, 0.4 s fitting'
        >>> time_split({"input_seconds": None, "fit_seconds": None})
        'not recorded'
        >>> time_split({"combines_members": True, "train_seconds": 2.25})
        "2.2 s choosing its members' weights"
    """
    total = _seconds(card.get("train_seconds"))
    if card.get("combines_members") and total is not None:
        return f"{total:,.1f} s choosing its members' weights"
    built, fitted = _seconds(card.get("input_seconds")), _seconds(card.get("fit_seconds"))
    if built is None or fitted is None or built != built or fitted != fitted:
        return "not recorded"
    what = "sequences" if str(card.get("spec") or "").startswith("sequences") else "features"
    return f"{built:,.1f} s building its {what}, {fitted:,.1f} s fitting"


def _time(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).isoformat()


def _folder(store: Store, row: dict[str, Any]) -> Path | None:
    """The model's folder, without checking its digest (only its size is read)."""
    recorded = Path(str(row.get("path") or ""))
    base = None if str(store.path) == ":memory:" else Path(store.path).parent
    candidates = []
    if base is not None:
        candidates.append(base / "models" / recorded.name if recorded.is_absolute()
                          else base / recorded)
    origin = row.get("origin_path")
    if isinstance(origin, str) and origin:
        candidates.append(Path(origin))
    if recorded.is_absolute():
        candidates.append(recorded)
    return next((c for c in candidates if c.is_dir()), None)


def _size(folder: Path | None) -> int | None:
    if folder is None:
        return None
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _spec_summary(spec_text: Any) -> str:
    spec = _metrics(spec_text)
    kind = str(spec.get("kind", "features"))
    inner = spec.get("features") if isinstance(spec.get("features"), dict) else spec
    parts = [kind]
    types = inner.get("event_types") if isinstance(inner, dict) else None
    if isinstance(types, list):
        parts.append(f"{len(types)} event type{'' if len(types) == 1 else 's'}")
    names = inner.get("feature_names") or inner.get("names") if isinstance(inner, dict) else None
    if isinstance(names, list):
        parts.append(f"{len(names)} features")
    vocab = spec.get("vocab") or spec.get("vocabulary")
    if isinstance(vocab, list | dict):
        parts.append(f"vocabulary of {len(vocab)}")
    if isinstance(inner, dict) and inner.get("text"):
        parts.append("text embeddings")
    if isinstance(inner, dict) and inner.get("history"):
        parts.append("history features")
    extras = _extras_summary(inner.get("extras") if isinstance(inner, dict) else None)
    if extras:
        parts.append(extras)
    return ", ".join(parts)


def _extras_summary(extras: Any, shown: int = 6) -> str | None:
    """The extra source columns a spec turned into features, with their types.

        >>> _extras_summary({"columns": [{"name": "signup_time", "kind": "datetime"},
        ...                              {"name": "age", "kind": "numeric"}],
        ...                  "ignored": [["order_ref", "text with 900 distinct values"]]})
        'extra columns signup_time (datetime), age (numeric); 1 ignored'
    """
    if not isinstance(extras, dict):
        return None
    columns = [c for c in extras.get("columns") or () if isinstance(c, dict)]
    ignored = len(extras.get("ignored") or ())
    if not columns and not ignored:
        return None
    named = [f"{c.get('name')} ({c.get('kind')})" for c in columns[:shown]]
    if len(columns) > shown:
        named.append(f"{len(columns) - shown} more")
    text = f"extra columns {', '.join(named)}" if named else "no extra columns used"
    return text + (f"; {ignored} ignored" if ignored else "")


def _policy_uses(store: Store) -> tuple[str | None, int | None, dict[str, list[int]]]:
    """(model in force, its version, model -> every published version naming it)."""
    from core.policy import policy_in_force

    policy = policy_in_force(store)
    versions: dict[str, list[int]] = {}
    for row in store.policies.history():
        versions.setdefault(row.model_id, []).append(row.version)
    if policy is None:
        return None, None, versions
    return policy.model_id, policy.version, versions


def catalog(store: Store, *, include_retired: bool = True) -> pd.DataFrame:
    """One row per registered model, oldest first: model_id, detector, created, train_start,
    train_end, n_train, n_scores, device, train_seconds (input_seconds building its features
    or sequences, fit_seconds fitting; None for models trained before they were recorded),
    size_bytes, feature_hash, digest, spec, policy ("in force (vN)", "vN, vM" or ""),
    in_force, retired (bool), retired_at, retired_by."""
    rows = store.models.catalog()
    in_force, version, versions = _policy_uses(store)
    out = []
    for row in rows.to_dict(orient="records"):
        metrics = _metrics(row.get("metrics"))
        retired = metrics.get("retired") if isinstance(metrics.get("retired"), dict) else None
        mid = str(row["model_id"])
        used = versions.get(mid, [])
        policy = ", ".join(f"v{v}" for v in sorted(used))
        if mid == in_force:
            policy = f"in force (v{version})" + (f"; {policy}" if policy else "")
        seconds = metrics.get("train_seconds")
        out.append({
            "model_id": mid, "detector": str(row["detector"]),
            "created": _time(row.get("created_at")), "train_start": _time(row.get("train_start")),
            "train_end": _time(row.get("train_end")),
            "n_train": None if pd.isna(row.get("n_train")) else int(row["n_train"]),
            "n_scores": int(row.get("n_scores") or 0),
            "device": row.get("device") if isinstance(row.get("device"), str) else None,
            "train_seconds": _seconds(seconds),
            "input_seconds": _seconds(metrics.get("input_seconds")),
            "fit_seconds": _seconds(metrics.get("fit_seconds")),
            "size_bytes": _size(_folder(store, row)),
            "feature_hash": row.get("feature_hash") if isinstance(row.get("feature_hash"), str)
            else None,
            "digest": row.get("digest") if isinstance(row.get("digest"), str) else None,
            "spec": _spec_summary(row.get("feature_spec")),
            "policy": policy, "in_force": mid == in_force,
            "retired": retired is not None,
            "retired_at": (retired or {}).get("at"), "retired_by": (retired or {}).get("by"),
        })
    frame = pd.DataFrame(out, columns=[
        "model_id", "detector", "created", "train_start", "train_end", "n_train", "n_scores",
        "device", "train_seconds", "input_seconds", "fit_seconds", "size_bytes", "feature_hash",
        "digest", "spec", "policy", "in_force", "retired", "retired_at", "retired_by"])
    if not include_retired:
        frame = frame[~frame["retired"].astype(bool)].reset_index(drop=True)
    return frame


def _row(store: Store, model_id: str) -> dict[str, Any]:
    row = store.models.by_id(model_id)
    if row is None:
        known = store.models.ids()
        raise ModelError(f"model must be one of the registered models "
                         f"({', '.join(known) or 'none'}), got {model_id!r}. List them with "
                         f"`anomalyst models list --all`.")
    return row


def loss_curves(history: dict[str, Any] | None) -> pd.DataFrame:
    """Long table of the training curves in ``history`` (TrainingHistory.to_dict, or a
    boosted model's per-round metric): step, series ("train", "validation", or a component
    such as "recon (train)" or "kl (validation)"), value. Empty when the detector keeps no
    history."""
    history = history or {}
    columns = ["step", "series", "value"]
    parts: list[pd.DataFrame] = []

    def add(name: str, values: Any, steps: Any = None) -> None:
        if not isinstance(values, list | tuple) or not values:
            return
        vals = pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(np.float64)
        xs = (np.asarray(steps, np.float64) if isinstance(steps, list | tuple)
              and len(steps) == len(vals) else np.arange(1, len(vals) + 1, dtype=np.float64))
        parts.append(pd.DataFrame({"step": xs, "series": name, "value": vals}))

    steps = history.get("steps")
    add("train", history.get("train_loss"), steps)
    add("validation", history.get("val_loss"), steps)
    if "val_metric" in history:  # gradient-boosted trees: one value per boosting round
        add(f"validation {history.get('metric') or 'metric'}", history.get("val_metric"))
    # a VAE's terms (core.detectors.torch_detector.ComponentHistory): components and
    # val_components, each {name: one value per check}
    for key, split in (("components", "train"), ("val_components", "validation")):
        components = history.get(key)
        if not isinstance(components, dict):
            continue
        for name, values in components.items():
            if isinstance(values, dict):  # {split: values}
                for part, series in values.items():
                    label = {"val": "validation"}.get(str(part), str(part))
                    add(f"{name} ({label})", series, steps)
            else:
                add(f"{name} ({split})", values, steps)
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def describe(store: Store, model_id: str) -> dict[str, Any]:
    """Everything ``catalog`` says of ``model_id``, plus its config, training history summary,
    operating point, risk calibration kind and the loss curves (records); JSON-safe."""
    row = _row(store, model_id)
    listed = catalog(store)
    entry = listed[listed["model_id"] == model_id].iloc[0].to_dict()
    metrics = _metrics(row.get("metrics"))
    history = metrics.get("history") if isinstance(metrics.get("history"), dict) else {}
    summary = {k: v for k, v in history.items() if not isinstance(v, list | dict)}
    calibration = metrics.get("risk_calibration") or {}
    point = metrics.get("operating_point") or {}
    entry.update({
        "config": _metrics(row.get("config")),
        "history": summary,
        "curves": loss_curves(history).to_dict(orient="records"),
        "operating_point": {k: point.get(k) for k in ("threshold", "rule", "source")},
        "risk_kind": calibration.get("kind"), "risk_ece": calibration.get("ece"),
        "validation_ap": metrics.get("validation_ap"),
        "left_out": left_out(metrics, _metrics(row.get("feature_spec"))),
        "window_regime": window_regime(metrics),
        "history_features": history_features(_metrics(row.get("feature_spec"))),
    })
    if str(row["detector"]) == ENSEMBLE:  # no window, features or fit of its own
        entry.update({
            "combines_members": True,
            "window_regime": combination_in_words(metrics.get("weight_source")),
            "history_features": "as its members read them",
        })
    return json_ready(entry)


WEIGHT_SOURCES = {
    "best_member": "uses one member: the one with the best average precision on its "
                   "validation window",
    "validation_ap": "weights each member by its average precision on its validation window",
    "stacked": "stacks its members: a logistic regression on their scores, fitted on its "
               "validation window's labels",
    "agreement": "no labels: weights each member by its agreement with the others",
    "agreement_sane": "no labels: weights each member by its agreement with the others, "
                      "leaving out members with near-constant scores",
}


def combination_in_words(weight_source: Any) -> str:
    """How an ensemble weighs its members, in words (``core.pipeline.ensemble``).

        >>> combination_in_words("stacked_tail").endswith("(scores read as tail surprises)")
        True
        >>> combination_in_words(None)
        'combines its members (how was not recorded)'
    """
    source = str(weight_source or "")
    words = WEIGHT_SOURCES.get(source.removesuffix("_tail"))
    if words is None:
        return "combines its members (how was not recorded)"
    return words + (" (scores read as tail surprises)" if source.endswith("_tail") else "")


def history_features(spec: dict[str, Any]) -> str:
    """Whether the model reads the point-in-time history, and of which entities, in words.

        >>> history_features({"features": {"history": {"enabled": True,
        ...                                            "entity_columns": ["merchant_id"]}}})
        "on: the user's earlier sessions and amounts; each merchant_id's recent activity"
        >>> history_features({"features": {}}), history_features({})
        ('off', 'off')
    """
    history = (spec.get("features") or {}).get("history") or {}
    if not history.get("enabled"):
        return "off"
    text = "on: the user's earlier sessions and amounts"
    entities = list(history.get("entity_columns") or ())
    if entities:
        text += f"; each {', '.join(entities)}'s recent activity"
    return text


def left_out(metrics: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """What training left out of the model's features, a short reason each."""
    out = [f"{name} (the training window is shorter than its cycle)"
           for name in metrics.get("calendar_held") or ()]
    extras = (spec.get("features") or {}).get("extras") or {}
    out += [f"extra column {name}: {why}" for name, why in extras.get("ignored") or ()]
    return out


def window_regime(metrics: dict[str, Any]) -> str:
    """How the training window's labels shaped training, in words (core.pipeline.regime).

        >>> print(window_regime({"training_window": {
        ...     "vetted": False, "labelled_share": 0.0, "trim_fraction": 0.1, "epochs_cap": 100}}))
        unlabelled (0% labelled): each batch's worst 10% left out of the loss; at most 100 passes
        >>> window_regime({"training_window": {"vetted": True, "labelled_share": 1.0}})
        'vetted (100% labelled): every row learned'
        >>> window_regime({"training_window": {"vetted": True, "labelled_share": 1.0,
        ...                                    "clip": 100.0}})
        'vetted (100% labelled): every row learned; inputs clipped at 100 deviations, not 10'
        >>> window_regime({})
        'not recorded'
    """
    window = metrics.get("training_window")
    if not isinstance(window, dict) or "vetted" not in window:
        return "not recorded"
    share = window.get("labelled_share")
    labelled = (f" ({share:.0%} labelled)"
                if isinstance(share, int | float) and not isinstance(share, bool) else "")
    head = ("vetted" if window["vetted"] else "unlabelled") + labelled
    how = []
    trim, cap = window.get("trim_fraction"), window.get("epochs_cap")
    if isinstance(trim, int | float) and trim > 0:
        how.append(f"each batch's worst {trim:.0%} left out of the loss")
    if isinstance(cap, int) and cap > 0:
        how.append(f"at most {cap} passes")
    if not how:
        how.append("every row learned")
    clip = window.get("clip")
    if isinstance(clip, int | float) and not isinstance(clip, bool):
        how.append(f"inputs clipped at {clip:g} deviations, not 10")
    return f"{head}: " + "; ".join(how)


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat()
    return value


# --- evaluation on the model's own window ----------------------------------------------------
def evaluation(store: Store, model_id: str, sources: tuple[str, ...] = ("ground_truth",
                                                                        "analyst")
               ) -> dict[str, Any]:
    """How ``model_id`` does on labelled sessions after its own train end: n_sessions,
    n_anomalous, window, roc_auc, average_precision, recall_at_fpr, recall_by_scenario, and
    the curves as frames: ``roc`` (fpr, tpr), ``pr`` (recall, precision), ``calibration``
    (bin, mean_risk, observed, count: risk as a probability against the observed anomaly
    share). ``note`` says why metrics are missing (no scores, one class only)."""
    from core.evaluate import ThresholdTable, evaluate_scores
    from core.lookups import labelled_scores
    from core.risk import RiskCalibration, reliability

    row = _row(store, model_id)
    frame = labelled_scores(store, model_id, sources)
    frame = frame[frame["is_anomaly"].notna()]
    start = row.get("train_end")
    start = None if start is None or pd.isna(start) else start
    if start is not None:
        frame = frame[frame["start_ts"] >= start]
    labels = frame["is_anomaly"].astype(bool).to_numpy()
    window = ("all sessions" if start is None
              else f"sessions from {pd.Timestamp(start):%Y-%m-%d %H:%M:%S} UTC")
    out: dict[str, Any] = {
        "model_id": model_id, "window": window, "n_sessions": int(len(frame)),
        "n_anomalous": int(labels.sum()),
        "roc": pd.DataFrame(columns=["fpr", "tpr"]),
        "pr": pd.DataFrame(columns=["recall", "precision"]),
        "calibration": pd.DataFrame(columns=["bin", "mean_risk", "observed", "count"]),
        "risk_kind": None,
    }
    if not len(frame) or not 0 < labels.sum() < len(labels):
        out["note"] = ("needs scores and both labelled anomalous and normal sessions after "
                       "the train end")
        return out
    scores = frame["score"].to_numpy(np.float64)
    scenarios = np.where(labels, frame["scenario"].astype(str).to_numpy(), "normal")
    found = evaluate_scores(scores, labels, scenarios=scenarios)
    for key in ("roc_auc", "average_precision", "recall_at_fpr", "max_fpr", "best_f1"):
        out[key] = found.get(key)
    out["recall_by_scenario"] = found.get("recall_by_scenario", {})
    curve = ThresholdTable.from_scores(scores, labels).curve()
    out["roc"] = pd.DataFrame({"fpr": curve.fpr, "tpr": curve.tpr})
    pr = pd.DataFrame({"recall": curve.recall, "precision": curve.precision})
    out["pr"] = pr[pr["precision"].notna()].reset_index(drop=True)
    calibration = _metrics(row.get("metrics")).get("risk_calibration")
    if isinstance(calibration, dict) and calibration.get("reference"):
        risk = RiskCalibration.from_dict(calibration)
        out["risk_kind"] = risk.kind
        rel = reliability(risk.risk(scores) / 100.0, labels, CALIBRATION_BINS)
        table = pd.DataFrame({"bin": np.arange(CALIBRATION_BINS) / CALIBRATION_BINS,
                              "mean_risk": rel.mean_predicted, "observed": rel.observed,
                              "count": rel.count})
        out["calibration"] = table[table["count"] > 0].reset_index(drop=True)
        out["ece"] = rel.ece
    return out


COMPARE_LABELS = {
    "detector": "detector", "created": "created", "train_start": "trained from",
    "train_end": "trained up to", "n_train": "sessions trained on",
    "n_scores": "sessions scored", "device": "device", "train_seconds": "training time (s)",
    "input_seconds": "building its input (s)", "fit_seconds": "fitting (s)",
    "size_bytes": "size on disk (bytes)", "feature_hash": "feature spec hash",
    "digest": "files digest (SHA-256)", "spec": "input", "policy": "alert policy",
    "in_force": "the policy in force uses it", "retired": "retired",
    "retired_at": "retired at", "retired_by": "retired by",
    "n_sessions": "sessions judged (after its train end)",
    "n_anomalous": "labelled anomalies among them", "roc_auc": "ROC-AUC",
    "average_precision": "average precision", "recall_at_fpr": "recall at 1% FPR",
    "ece": "calibration error (ECE)"}
"""Row names of ``compare``'s table, in words (properties not named keep their key)."""


def _compare_value(value: Any) -> Any:
    """A cell of ``compare``'s table: times to the minute, fractions to 3 places."""
    if isinstance(value, dt.datetime | pd.Timestamp):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, str) and len(value) >= 16 and value[4] == "-" and value[10] == "T":
        return value[:16].replace("T", " ")  # an ISO time from the catalogue
    if isinstance(value, float) and not isinstance(value, bool):
        return None if math.isnan(value) else round(value, 3)
    return value


def compare(store: Store, a: str, b: str, sources: tuple[str, ...] = ("ground_truth",
                                                                      "analyst")
            ) -> pd.DataFrame:
    """Side by side: one row per property (detector, train end, AP, ...), a column per model
    (``compare_in_words`` names the rows for people)."""
    listed = catalog(store).set_index("model_id")
    columns = {}
    for mid in (a, b):
        _row(store, mid)
        entry = listed.loc[mid].to_dict()
        found = evaluation(store, mid, sources)
        entry.update({k: found.get(k) for k in (
            "n_sessions", "n_anomalous", "roc_auc", "average_precision", "recall_at_fpr",
            "ece")})
        for name, value in (found.get("recall_by_scenario") or {}).items():
            entry[f"recall: {name}"] = value
        columns[mid] = entry
    frame = pd.DataFrame(columns)
    frame.index.name = "property"
    return frame


def compare_in_words(frame: pd.DataFrame) -> pd.DataFrame:
    """``compare``'s table for people: rows named in words (``COMPARE_LABELS``), times to the
    minute, fractions to 3 places.

        >>> table = pd.DataFrame({"m1": ["2026-09-10T19:14:32.527200", 0.91234]},
        ...                      index=pd.Index(["train_end", "roc_auc"], name="property"))
        >>> compare_in_words(table)["m1"].tolist()
        ['2026-09-10 19:14', 0.912]
        >>> compare_in_words(table).index.tolist()
        ['trained up to', 'ROC-AUC']
    """
    out = frame.apply(lambda column: column.map(_compare_value)).astype(object)
    out.index = pd.Index([COMPARE_LABELS.get(str(k), str(k)) for k in frame.index],
                         name=frame.index.name)
    return out


# --- retiring ----------------------------------------------------------------------------
def retire(store: Store, model_id: str, *, by: str, undo: bool = False) -> str:
    """Retire ``model_id`` (or, with ``undo``, bring it back); a sentence saying what was done.

    ConfigError for the model the alert policy in force scores with: publish a policy on
    another model first."""
    from core.policy import policy_in_force

    row = _row(store, model_id)
    retired = _metrics(row.get("metrics")).get("retired")
    if undo:
        if not retired:
            return f"{model_id} is not retired."
        store.models.set_retired(model_id, None)
        return f"{model_id} is back in the pickers."
    if retired:
        return f"{model_id} was already retired."
    policy = policy_in_force(store)
    if policy is not None and policy.model_id == model_id:
        raise ConfigError(
            f"model to retire must not be the one the alert policy in force (v{policy.version})"
            f" scores with, got {model_id}. Publish a policy on another model first "
            "(Thresholds page, or `anomalyst policy publish`).")
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    store.models.set_retired(model_id, {"at": at, "by": by or "?"})
    return f"Retired {model_id}: hidden from the pickers, kept with its scores and files."


# --- training runs -----------------------------------------------------------------------
DETECTORS = ("zscore", "isolation_forest", "ecdf_tails", "ecdf_extremes", "autoencoder", "vae",
             "sequence_autoencoder", "sequence_vae", "mlp", "gbdt", "transformer", "cnn_gru",
             "transformer_mlm", "ensemble")
"""Detectors the Models page offers (named here: listing the registry would load torch; a
name the registry lacks makes the run fail with the CLI's list of detectors)."""
_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


def trainable_detectors(listed: pd.DataFrame | None = None) -> list[str]:
    """The known detectors, and any other one the store already has models of."""
    extra = [] if listed is None or listed.empty else sorted(
        set(listed["detector"].astype(str)) - set(DETECTORS))
    return [*DETECTORS, *(d for d in extra if _NAME.fullmatch(d))]


def runs_dir(db_path: str | os.PathLike[str]) -> Path:
    return Path(db_path).resolve().parent / RUNS_DIR


def _write(path: Path, data: dict[str, Any]) -> None:
    from core.files import atomic_file

    with atomic_file(path, "w", durable=False) as handle:
        handle.write(json.dumps(data, indent=1, default=str))


def start_training(db_path: str | os.PathLike[str], detector: str, *, by: str = "",
                   epochs: int | None = None) -> str:
    """Start training ``detector`` on the store at ``db_path`` in a detached process; its run
    id. The run's file says how it goes (``training_runs``)."""
    if not _NAME.fullmatch(detector or ""):  # the run itself says if no such detector
        raise ConfigError(f"detector must be a detector name like {', '.join(DETECTORS[:3])}, "
                          f"got {detector!r}.")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}.")
    folder = runs_dir(db_path)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = f"{started:%Y%m%d-%H%M%S}-{detector}-{secrets.token_hex(2)}"
    # not --quiet: the progress bar (with the loss at each check) goes to the run's log
    command = [sys.executable, "-m", "cli.main", "train", "--detector", detector, "--db",
               str(Path(db_path).resolve())]
    if epochs is not None:
        command += ["--epochs", str(int(epochs))]
    run_file = folder / f"{run_id}.json"
    _write(run_file, {"run_id": run_id, "detector": detector, "status": "starting",
                      "started": started.isoformat(timespec="seconds"), "finished": None,
                      "exit_code": None, "model_id": None, "by": by, "command": command[1:],
                      "log": f"{run_id}.log", "log_tail": ""})
    subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments checked above
        [sys.executable, "-m", "core.app.model_catalog", "run", str(run_file)], cwd=ROOT,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
    return run_id


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


_LOSS = re.compile(r"loss=([-+0-9.eE]+)(?:, val=([-+0-9.eE]+))?")


def progress(log_tail: str) -> dict[str, float]:
    """The latest training and validation loss a progress bar printed (``loss``,
    ``val_loss``), or nothing."""
    found = _LOSS.findall(log_tail or "")
    if not found:
        return {}
    train, val = found[-1]
    out = {"loss": float(train)}
    if val:
        out["val_loss"] = float(val)
    return out


START_S = 120.0
"""A run still 'starting' after this long lost its runner."""


def _age_s(started: Any) -> float:
    try:
        then = dt.datetime.fromisoformat(str(started))
    except ValueError:
        return math.inf
    return (dt.datetime.now(dt.UTC).replace(tzinfo=None) - then).total_seconds()


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def _run(run_file: Path) -> int:
    """The detached runner: train, then record how it ended."""
    data = json.loads(run_file.read_text(encoding="utf-8"))
    log_path = run_file.parent / data["log"]
    out_path = log_path.with_suffix(".out")  # stdout: the new model's id, alone
    command = [sys.executable, *data["command"]]
    data.update(status="running", pid=os.getpid())
    _write(run_file, data)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    with os.fdopen(os.open(log_path, flags, 0o600), "ab") as log, \
            os.fdopen(os.open(out_path, flags | os.O_TRUNC, 0o600), "wb") as out:
        code = subprocess.call(command, cwd=ROOT, stdout=out, stderr=log,  # noqa: S603
                               stdin=subprocess.DEVNULL)
    tail = _tail(log_path)
    lines = [line.strip() for line in _tail(out_path).splitlines() if line.strip()]
    model_id = lines[-1] if code == 0 and lines else None
    data.update(status="finished" if code == 0 else "failed", exit_code=code,
                finished=dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(
                    timespec="seconds"), model_id=model_id, log_tail=tail, **progress(tail))
    _write(run_file, data)
    return code


def training_runs(db_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run recorded beside the store, newest first: run_id, detector, status
    (starting, running, finished, failed, lost: its process ended without a word), started,
    finished, exit_code, model_id, by, log_tail (the log so far while it runs)."""
    folder = runs_dir(db_path)
    if not folder.is_dir():
        return []
    runs = []
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("status") in ("starting", "running"):
            data["log_tail"] = _tail(folder / str(data.get("log", "")))
            data.update(progress(data["log_tail"]))
            if data.get("status") == "running" and not _alive(data.get("pid")):
                data["status"] = "lost"
            elif data.get("status") == "starting" and _age_s(data.get("started")) > START_S:
                data["status"] = "lost"  # the runner never began
        runs.append(data)
    return sorted(runs, key=lambda r: str(r.get("started", "")), reverse=True)


def any_running(runs: list[dict[str, Any]]) -> bool:
    return any(r.get("status") in ("starting", "running") for r in runs)


if __name__ == "__main__":  # python -m core.app.model_catalog run RUN_FILE
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        sys.exit(_run(Path(sys.argv[2])))
    sys.exit("usage: python -m core.app.model_catalog run RUN_FILE")
