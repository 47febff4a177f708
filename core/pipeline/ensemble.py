"""The ensemble model: combines scored models by rank-normalised, AP-weighted scores.

An ensemble is a registered model (``models.detector = 'ensemble'``) whose folder holds
``ensemble.json`` (members, weights) and ``quantiles.safetensors`` (each member's 1001
reference quantiles); see :mod:`core.detectors.ensemble` for the arithmetic.

- Reference: each member's scores on its own training window (sessions before its train end).
- Weights: each member's average precision minus the base rate (floored at a small epsilon),
  normalised to sum 1, on labelled sessions (ground truth and analysts) between the member's
  train end and a validation cut halfway from the latest member train end to the end of the
  data. The ensemble's train end is that cut, so ``anomalyst evaluate`` judges it only on
  sessions its weights never saw. With no usable labels the weights are equal (and the
  metrics say so), and the train end is the latest member's.
- Scoring covers the sessions every member has scored; the others are skipped and counted.
  Each session's contributions (weight x rank per member) go to ``score_contributions`` in the
  same transaction as its score.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.detectors.ensemble import (
    MIN_STACKING_ANOMALIES,
    EnsembleCombiner,
    agreement_weights,
    ap_weights,
    choose_weights,
    sane_members,
    stacked_weights,
    tail_surprise,
)
from core.detectors.registry import combines_members, weighed_without_labels
from core.errors import ConfigError, ModelError
from core.evaluate import ThresholdTable
from core.operating_point import ScoreReference
from core.pipeline.operating_point import MAX_DEFAULT_SHARE, choose_point, operating_point
from core.pipeline.registry import (
    ENSEMBLE,
    default_train_end,
    model_folder,
    model_row,
    models_dir_for,
    partial_folder,
    register_model_folder,
)
from core.pipeline.results import ScoreResult, TrainResult
from core.risk import fit_risk
from core.schema import LABEL_SOURCES
from core.store import Store

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.5
"""The weights are validated on the first half (in time) of what follows the members' training."""
WEIGHT_EPSILON = 1e-3
"""A member no better than chance keeps this (pre-normalisation) weight rather than zero."""
LABEL_FREE = ("agreement", "agreement_sane")
"""Weightings chosen without labels (see ``_combination``)."""
MIN_VALIDATION_ANOMALIES = 5
"""Fewer labelled anomalous validation sessions than this give equal weights: the AP of one or
two positives is the rank of one or two sessions, noise rather than evidence."""


@dataclass(frozen=True)
class EnsembleScoreResult(ScoreResult):
    """A ScoreResult that also counts sessions skipped because a member had not scored them."""

    n_skipped: int = 0


def default_members(store: Store) -> list[str]:
    """The newest scored model of each detector kind (ensembles excluded), by detector name."""
    return store.ensembles.default_members(ENSEMBLE)


def train_ensemble(
    store: Store,
    member_ids: Sequence[str] | None = None,
    *,
    models_dir: Path | None = None,
    sources: Sequence[str] = LABEL_SOURCES,
    min_validation_anomalies: int = MIN_VALIDATION_ANOMALIES,
) -> TrainResult:
    """Fit reference quantiles and weights for ``member_ids`` (None: :func:`default_members`),
    save the ensemble beside the store and register it. Score it with ``score_model``."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    members = list(member_ids) if member_ids is not None else default_members(store)
    rows = [_member_row(store, mid) for mid in members]
    if len(members) < 2 or len(set(members)) != len(members):
        raise ConfigError(
            f"ensemble members must be at least 2 distinct scored models, got {members}. Train "
            "and score more detectors, or name them with --members ID,ID."
        )
    fallback_end = default_train_end(store)
    ends = [_train_end(row, fallback_end) for row in rows]
    references = [store.ensembles.reference_scores(mid, before=end)
                  for mid, end in zip(members, ends, strict=True)]
    wide = _member_scores(store, members)
    last = store.summary.robust_time_span()[1]  # far-out timestamps left out, like the ends
    cut = max(ends) + (last - max(ends)) * VALIDATION_SHARE
    _, validation, note = _weights(store, wide, members, ends, cut, sources,
                                   min_validation_anomalies)
    equal = EnsembleCombiner.fit(members, references, np.ones(len(members)))
    labels = store.labels.session_labels(sources)
    y_all = wide[["session_id"]].merge(labels[["session_id", "is_anomaly"]], on="session_id",
                                       how="left")["is_anomaly"]
    start = wide["start_ts"].to_numpy()
    in_val = (start >= np.datetime64(max(ends))) & (start < np.datetime64(cut))
    labelled = y_all.notna().to_numpy()
    y_val = y_all.fillna(False).astype(bool).to_numpy()
    ranks = equal.ranks(_matrix(wide, len(members)))
    train_rows = (start < np.datetime64(max(ends))) & ~y_val
    method, choice = _combination(ranks[in_val & labelled], y_val[in_val & labelled], note,
                                  equal.quantiles, members, ranks[train_rows],
                                  [weighed_without_labels(str(r["detector"])) for r in rows])
    weights = choice.pop("weights")
    if "excluded" in choice:
        note = choice["excluded"] if note is None else f"{note}; {choice['excluded']}"
    combiner = EnsembleCombiner.fit(members, references, weights, choice.pop(
        "combination", "tail" if method in LABEL_FREE else "rank"))
    combined = combiner.transform(ranks) @ combiner.weights
    reference = ScoreReference.from_scores(combined[train_rows], combined[in_val & ~y_val])
    point = choose_point(reference, combined[in_val & labelled], y_val[in_val & labelled],
                         supervised=method not in LABEL_FREE,
                         contamination=None if method not in LABEL_FREE
                         else _members_flag_rate(store, members, combiner.weights))
    if method in LABEL_FREE:
        point = dataclasses.replace(point, rule="members_flag_rate", source=(
            f"label-free: the members' median default flag rate on their training sessions "
            f"({_members_flag_rate(store, members, combiner.weights):.2%})"))

    model_id = f"{ENSEMBLE}-{started:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    partial = partial_folder(store, models_dir or models_dir_for(store), model_id)
    weight_source = method
    train_end = cut if method not in LABEL_FREE else max(ends)
    config = {"members": members, "detectors": [r["detector"] for r in rows],
              "weights": dict(zip(members, combiner.weights.tolist(), strict=True)),
              "weight_source": weight_source, "validation_share": VALIDATION_SHARE,
              "combination": combiner.combination}
    combiner.save(partial, extra={"config": config})
    seconds = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds()
    metrics: dict[str, Any] = {
        "train_seconds": round(seconds, 3), "weight_source": weight_source,
        "weights": config["weights"], "validation": validation,
        "reference_sizes": {m: int(len(r)) for m, r in zip(members, references, strict=True)},
        "validation_window": [min(ends).isoformat(), cut.isoformat()],
        "combination": choice, "score_reference": reference.to_dict(),
        "operating_point": point.to_dict(),
        "risk_calibration": fit_risk(combined[in_val & labelled], y_val[in_val & labelled],
                                     reference.pooled).to_dict(),
    }
    if note is not None:
        metrics["note"] = note
    n_validation = max((v.get("n", 0) for v in validation.values()), default=0)
    folder = register_model_folder(store, partial, {
        "model_id": model_id, "detector": ENSEMBLE, "created_at": started,
        "config": json.dumps(config), "feature_hash": combiner.fingerprint,
        "feature_spec": json.dumps({"kind": ENSEMBLE, "members": members}),
        "train_start": wide["start_ts"].min() if len(wide) else None,
        "train_end": train_end, "n_train": n_validation,
        "metrics": json.dumps(metrics), "device": "cpu",
    })
    log.info("ensemble %s of %s, weights %s (%s)", model_id, members,
             np.round(combiner.weights, 3).tolist(), weight_source)
    return TrainResult(model_id, ENSEMBLE, folder, n_validation, 0, train_end, seconds)


def score_ensemble(store: Store, model_id: str, *, only_new: bool = False) -> EnsembleScoreResult:
    """Score the sessions every member has scored; write scores and contributions in one
    transaction, replacing the ensemble's earlier ones (idempotent, like ``score_model``)."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = model_row(store, model_id)
    folder = model_folder(row, store)
    combiner = EnsembleCombiner.load(folder)
    if combiner.fingerprint != row["feature_hash"]:
        raise ModelError(
            f"ensemble {model_id} files must match the registry, got fingerprint "
            f"{combiner.fingerprint} on disk and {row['feature_hash']} registered. Train the "
            "ensemble again."
        )
    members = list(combiner.members)
    for mid in members:
        _member_row(store, mid)
    wide = _member_scores(store, members, model_id if only_new else None)
    in_scope = (store.scores.unscored_count(model_id) if only_new
                else store.summary.count_sessions())
    n_skipped = in_scope - len(wide)
    if n_skipped:
        log.warning("ensemble %s: %d of %d sessions skipped (not scored by every member: "
                    "score the members first)", model_id, n_skipped, in_scope)
    if only_new and wide.empty:
        return EnsembleScoreResult(model_id, 0, 0, 0.0, n_skipped)
    score, contributions = combiner.combine(_matrix(wide, len(members)))
    sessions = wide["session_id"].to_numpy()
    new_scores = pd.DataFrame({"session_id": sessions, "score": score})
    new_contributions = pd.DataFrame({
        "session_id": np.repeat(sessions, len(members)),
        "member_id": np.tile(np.array(members, dtype=object), len(sessions)),
        "contribution": contributions.ravel(),
    })
    with (store.scores.staged(new_scores, contributions=new_contributions),
          store.transaction()):
        store.scores.replace(model_id, scored_at=started, only_new=only_new)
        store.ensembles.replace_contributions(model_id, only_new=only_new)
    seconds = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds()
    return EnsembleScoreResult(model_id, len(new_scores), 0, seconds, n_skipped)


def ensemble_contributions(store: Store, model_id: str, session_id: str) -> pd.DataFrame:
    """member_id, detector, contribution for one session (largest first); they sum to its
    ensemble score."""
    return store.ensembles.contributions(model_id, session_id)


# -------------------------------------------------------------------------------- internals
def _members_flag_rate(store: Store, members: list[str], weights: np.ndarray) -> float:
    """The median share of training sessions that the weighted members' own default
    thresholds flag: the ensemble's label-free operating point flags that share of its
    training sessions (its rank-average scores suit no fence rule). Bounded to [0.1%,
    MAX_DEFAULT_SHARE]."""
    rates = []
    for member, weight in zip(members, weights, strict=True):
        if weight <= 0:
            continue
        point = operating_point(store, member)
        pct = float(point.percentile(np.array([point.threshold]))[0])
        if np.isfinite(pct):
            rates.append(1.0 - pct / 100.0)
    rate = float(np.median(rates)) if rates else 0.01
    return min(max(rate, 0.001), MAX_DEFAULT_SHARE)


def _combination(
    ranks: np.ndarray, labels: np.ndarray, note: str | None,
    quantiles: np.ndarray, members: list[str], train_ranks: np.ndarray,
    label_free_ok: Sequence[bool] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(method, details with "weights") of the ensemble.

    With enough labelled validation anomalies: of the AP-weighted average, stacking
    (logistic weights, with at least MIN_STACKING_ANOMALIES) and the best single member, each
    over the members' ranks and over their tail surprises (``tail_surprise``; names ending
    "_tail"), the one with the best average precision out of sample (``choose_weights``:
    fitted on bootstrap resamples of the validation window, judged on the sessions each left
    out), fitted on the whole window. Ranks average a session that two members put at their
    very top and a third only in its top 2% below the best-F1 threshold; the surprises can keep
    it above when the window's labels choose them (docs/ARCHITECTURE.md, "Ensemble").
    Without: weights by each member's agreement with the others on the training window
    (``agreement_weights``) over the members that can rank sessions (near-constant ones get
    weight 0, and the note names them) and that may be weighed without labels
    (``label_free_ok``, from the detector's ``weighed_without_labels``; the others get weight 0
    and the note names them too).
    """
    if note is None and len(ranks):
        candidates: dict[str, Any] = {"validation_ap": ap_weights}
        if int(labels.sum()) >= MIN_STACKING_ANOMALIES:
            candidates["stacked"] = stacked_weights
        method, weights, aps = choose_weights(ranks, labels, candidates)
        t_method, t_weights, t_aps = choose_weights(tail_surprise(ranks), labels, candidates)
        out_of_sample = {**aps["out_of_sample"],
                         **{f"{k}_tail": v for k, v in t_aps["out_of_sample"].items()}}
        in_sample = {**aps["in_sample"],
                     **{f"{k}_tail": v for k, v in t_aps["in_sample"].items()}}
        tail = t_aps["out_of_sample"][t_method] > aps["out_of_sample"][method]
        method = f"{t_method}_tail" if tail else method
        return method, {"weights": t_weights if tail else weights, "method": method,
                        "combination": "tail" if tail else "rank",
                        "validation_ap": in_sample, "out_of_sample_ap": out_of_sample}
    sane = sane_members(quantiles)
    if sane.sum() == 0:
        raise ModelError(
            "ensemble members must rank sessions, got only near-constant scores from every "
            "member. Check the members' data, or train other detectors."
        )
    allowed = (np.ones(len(members), bool) if label_free_ok is None
               else np.asarray(label_free_ok, bool))
    usable = sane & allowed
    if usable.sum() == 0:  # only specialists: better weighed by agreement than not at all
        usable = sane
    out: dict[str, Any] = {"weights": agreement_weights(train_ranks, usable),
                           "method": "agreement"}
    excluded = []
    if not sane.all():
        excluded.append("left out (near-constant scores on their training window): "
                        + ", ".join(members[i] for i in np.flatnonzero(~sane)))
    if (sane & ~usable).any():
        excluded.append("left out without labels (specialists that only labels can weigh): "
                        + ", ".join(members[i] for i in np.flatnonzero(sane & ~usable)))
    if excluded:
        out["excluded"] = "; ".join(excluded)
    if not sane.all():
        return "agreement_sane", out
    return "agreement", out


def _member_row(store: Store, member_id: str) -> dict[str, Any]:
    row = model_row(store, member_id)  # ModelError naming the registered ids when unknown
    if combines_members(str(row["detector"])):
        raise ModelError(
            f"ensemble members must be detector models, got the ensemble {member_id!r}. Name "
            "the models it combines instead."
        )
    if not store.scores.count(member_id):
        raise ModelError(
            f"ensemble member {member_id} must have scores, got none. Score it first: "
            f"`anomalyst score --model {member_id}`."
        )
    return row


def _train_end(row: dict[str, Any], fallback: dt.datetime | None) -> dt.datetime:
    end = row.get("train_end")
    if end is None or pd.isna(end):
        end = fallback
    if end is None:
        raise ConfigError("the store must hold sessions, got none. Ingest events first.")
    return pd.Timestamp(end).to_pydatetime()


def _member_scores(store: Store, members: list[str], model_id: str | None = None) -> pd.DataFrame:
    """session_id, start_ts, scores (list in member order) for sessions all members scored."""
    return store.ensembles.member_scores(members, not_scored_by=model_id)


def _matrix(wide: pd.DataFrame, n_members: int) -> np.ndarray:
    if wide.empty:
        return np.zeros((0, n_members))
    return np.vstack(wide["scores"].to_numpy()).astype(np.float64)


def _weights(
    store: Store, wide: pd.DataFrame, members: list[str], ends: list[dt.datetime],
    cut: dt.datetime, sources: Sequence[str], min_anomalies: int,
) -> tuple[np.ndarray, dict[str, dict[str, Any]], str | None]:
    """(weights, per-member validation numbers, a note when the weights fell back to equal)."""
    m = len(ends)
    labels = store.labels.session_labels(sources)
    frame = wide.merge(labels[["session_id", "is_anomaly"]], on="session_id", how="inner")
    scores = _matrix(frame, m)
    y_all = frame["is_anomaly"].astype(bool).to_numpy()
    start = frame["start_ts"].to_numpy()
    weights = np.zeros(m)
    validation: dict[str, dict[str, Any]] = {}
    for j, end in enumerate(ends):
        window = (start >= np.datetime64(end)) & (start < np.datetime64(cut))
        y = y_all[window]
        entry: dict[str, Any] = {"n": int(window.sum()), "n_anomalous": int(y.sum())}
        if max(min_anomalies, 1) <= y.sum() < len(y):
            ap = ThresholdTable.from_scores(scores[window, j], y).average_precision()
            entry |= {"average_precision": float(ap), "base_rate": float(y.mean())}
            weights[j] = max(ap - y.mean(), WEIGHT_EPSILON)
        validation[members[j]] = entry
    if any("average_precision" not in v for v in validation.values()):
        return (np.full(m, 1.0 / m), validation,
                f"equal weights: fewer than {max(min_anomalies, 1)} labelled anomalous (or no "
                "normal) sessions in some member's validation window")
    return weights / weights.sum(), validation, None
