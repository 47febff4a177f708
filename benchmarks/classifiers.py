"""Classifier detectors: speed at length 64 and detection quality on the sample data.

    python -m benchmarks.classifiers [--quick] [--json] [--users 2000 --days 30 --seed 7]
                                     [--threads N] [--speed-only]

Speed (synthetic sequences, every session a full 64 events, the worst case; default configs):
transformer scoring with attentions off (the sdpa path) and with attentions (the eager view),
the seconds of one training epoch over 100,000 sequences (timed on a fraction and
extrapolated; the output says which fraction), and the same for the CNN+GRU and the MLP (on a
89-feature matrix). Sequences/s on realistic lengths (the sample data's sessions, mostly short)
are printed too, since batches are cut to their longest session.

Quality: the sample data in a fresh store, every detector trained through
``core.pipeline.train_model`` with its default time split (supervised detectors on every
session before the 70% point, labelled anomalies included; unsupervised ones without them),
scored, and judged by ``core.pipeline.evaluate_models`` on the labelled sessions after each
model's train end: ROC-AUC, AP, recall at 1% FPR and per scenario. Event level: among test
sessions with anomalous event labels, how often a detector's three highest-scored events hold
an injected anomalous event, next to the rate a random ranking would reach.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._util import peak_rss_mb
from benchmarks.detection import (
    build_sample_store,
    clock,
    describe_machine,
    device_info,
    emit_json,
    print_table,
)

LENGTH = 64
TARGETS = {"transformer_score_per_s": 5_000, "transformer_epoch_100k_s": 120}
SUPERVISED = ("transformer", "cnn_gru", "mlp")
REFERENCE = ("zscore", "isolation_forest", "autoencoder", "sequence_autoencoder",
             "transformer_mlm")


# ------------------------------------------------------------------------------------- speed
def synthetic_sequences(n: int, seed: int = 0, full: bool = True) -> Any:
    """n sessions of LENGTH events (``full``) or 2..LENGTH events, 8 event types, 6 channels."""
    from core.datasets import EventSequences

    rng = np.random.default_rng(seed)
    lengths = np.full(n, LENGTH) if full else rng.integers(2, LENGTH + 1, n)
    mask = np.arange(LENGTH)[None, :] < lengths[:, None]
    tokens = np.where(mask, rng.integers(2, 10, (n, LENGTH)), 0)
    numeric = np.where(mask[:, :, None], rng.normal(size=(n, LENGTH, 6)), 0).astype(np.float32)
    return EventSequences(np.arange(n).astype(str).astype(object), tokens, numeric, mask,
                          np.full((n, LENGTH), "", dtype=object),
                          {f"type_{k}": k + 2 for k in range(8)},
                          tuple(f"channel_{c}" for c in range(6)))


def _rate(func: Any, n: int, repeat: int = 3) -> float:
    """Items per second: the median of ``repeat`` runs (after one warm-up)."""
    func()
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        walls.append(time.perf_counter() - start)
    return n / float(np.median(walls))


def speed(quick: bool, device: str) -> list[dict[str, Any]]:
    from core.datasets import FeatureMatrix
    from core.detectors import build_detector

    rows: list[dict[str, Any]] = []
    n_score = 4_096 if quick else 16_384
    n_train = 2_000 if quick else 5_000
    data = synthetic_sequences(n_score)
    y = (np.random.default_rng(1).random(n_score) < 0.05).astype(float)
    common = {"quiet": True, "device": device, "validation_fraction": 0.0}
    rng = np.random.default_rng(2)
    features = FeatureMatrix(np.arange(n_score * 8).astype(str).astype(object),
                             rng.normal(size=(n_score * 8, 89)).astype(np.float32),
                             tuple(f"f{i}" for i in range(89)))
    y_features = (rng.random(n_score * 8) < 0.05).astype(float)
    for name in SUPERVISED:
        detector = build_detector(name, epochs=1, **common)
        is_mlp = detector.input_kind == "features"
        train = features.take(np.arange(n_train * 8)) if is_mlp else data.take(
            np.arange(n_train))
        labels = y_features[: len(train)] if is_mlp else y[:n_train]
        wall, _, _ = clock(lambda d=detector, t=train, lab=labels: d.fit(t, lab))
        epoch_100k = wall * 100_000 / len(train)
        scored = features if is_mlp else data
        row = {"detector": name, "n_fit": len(train), "epoch_100k_s": epoch_100k,
               "score_per_s": _rate(lambda d=detector, s=scored: d.score(s), len(scored))}
        if name == "transformer":
            part = data.take(np.arange(512))
            row["attention_per_s"] = _rate(lambda d=detector, p=part: d.attentions(p), len(part))
            short = synthetic_sequences(n_score, seed=3, full=False)
            row["score_mixed_len_per_s"] = _rate(lambda d=detector, s=short: d.score(s),
                                                 n_score)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------- quality
def quality(db: Path, models_dir: Path, quick: bool) -> tuple[list[dict[str, Any]],
                                                               list[dict[str, Any]]]:
    from core.pipeline import evaluate_models, score_model, train_model
    from core.store import Store

    epochs = {"transformer": 2 if quick else 6, "cnn_gru": 2 if quick else 6,
              "mlp": 5 if quick else 20, "autoencoder": 3 if quick else 10,
              "sequence_autoencoder": 2 if quick else 5, "transformer_mlm": 1 if quick else 3}
    rows: list[dict[str, Any]] = []
    trained: dict[str, Any] = {}
    with Store.open(db) as store:
        for name in (*SUPERVISED, *REFERENCE):
            row: dict[str, Any] = {"detector": name}
            try:
                wall, _, result = clock(lambda n=name: train_model(
                    store, n, epochs=epochs.get(n), quiet=True, models_dir=models_dir))
                score_wall, _, _ = clock(lambda r=result: score_model(store, r.model_id))
                trained[name] = result
                row.update(fit_s=wall, score_s=score_wall, n_train=result.n_train,
                           n_anomalous_train=result.n_anomalous)
            except Exception as exc:  # a failing detector is a result, not a crash
                row["error"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            rows.append(row)
        ids = {r.model_id: n for n, r in trained.items()}
        for entry in evaluate_models(store, model_ids=list(ids)):
            row = next(r for r in rows if r["detector"] == ids[entry["model_id"]])
            row.update(roc_auc=entry.get("roc_auc"), ap=entry.get("average_precision"),
                       recall_at_1pct_fpr=entry.get("recall_at_fpr"),
                       recall_by_scenario=entry.get("recall_by_scenario", {}),
                       n_test=entry["n_sessions"], n_test_anomalous=entry["n_anomalous"])
        events = event_level(store, trained)
    return rows, events


def event_level(store: Any, trained: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-3 hit rate of per-event scores on test sessions with anomalous event labels."""
    from core.detectors import load_detector
    from core.pipeline.inputs import build_input, load_input_spec
    from core.schema import LABEL_SOURCES

    labels = store.labels.training_event_labels(LABEL_SOURCES)
    anomalous_events = set(labels.loc[labels["is_anomaly"].astype(bool), "event_id"])
    out = []
    chance_done = False
    for name, result in trained.items():
        detector = load_detector(result.path / "detector")
        if not hasattr(detector, "score_events"):
            continue
        built = build_input(store, "sequences", load_input_spec(result.path))
        test = (built.meta["start_ts"] >= result.train_end).to_numpy()
        data = built.data.take(np.flatnonzero(test))
        is_anomalous = np.isin(data.event_ids, list(anomalous_events)) & data.mask
        rows = np.flatnonzero(is_anomalous.any(axis=1))
        if not len(rows):
            continue
        scores = detector.score_events(data.take(rows))
        hits = []
        for i, row in enumerate(rows):
            top = np.argsort(-np.nan_to_num(scores[i], nan=-np.inf), kind="stable")[:3]
            hits.append(bool(is_anomalous[row, top].any()))
        out.append({"detector": name, "sessions": len(rows), "top3_hit_rate": float(np.mean(hits))})
        if not chance_done:
            n_events = data.mask[rows].sum(axis=1)
            n_bad = is_anomalous[rows].sum(axis=1)
            k = np.minimum(3, n_events)
            miss = [math.comb(int(n - b), int(kk)) / math.comb(int(n), int(kk))
                    for n, b, kk in zip(n_events, n_bad, k, strict=True)]
            out.append({"detector": "(random ranking)", "sessions": len(rows),
                        "top3_hit_rate": float(1 - np.mean(miss)),
                        "anomalous_event_share": float(n_bad.sum() / n_events.sum())})
            chance_done = True
    return out


# ----------------------------------------------------------------------------------- driver
def run(*, quick: bool = False, users: int = 2000, days: int = 30, seed: int = 7,
        skip_quality: bool = False) -> dict:
    if quick:
        users, days = min(users, 1000), min(days, 20)
    device = device_info()["device"]
    out: dict[str, Any] = {"machine": describe_machine(), **device_info(), "quick": quick,
                           "load_before": os.getloadavg()}
    out["speed"] = speed(quick, device)
    out["load_after_speed"] = os.getloadavg()
    if skip_quality:
        return out
    with tempfile.TemporaryDirectory(prefix="anomalyst-classifiers-") as tmp:
        db = Path(tmp) / "sample.duckdb"
        out["dataset"] = build_sample_store(db, users, days, seed)
        out["quality"], out["events"] = quality(db, Path(tmp) / "models", quick)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def report(results: dict[str, Any]) -> None:
    print(f"machine: {results['machine']}")
    load = ", ".join(f"{v:.1f}" for v in results["load_before"])
    after = ", ".join(f"{v:.1f}" for v in results["load_after_speed"])
    print(f"load average (1, 5, 15 min) before: {load}; after the speed runs: {after} "
          "(other processes share these cores when it is above 0)")
    print(f"\n== speed at length {LENGTH} (every session {LENGTH} events; default configs)")
    print_table(results["speed"], [
        ("detector", "detector"), ("score_per_s", "score seq/s"),
        ("attention_per_s", "with attentions seq/s"),
        ("score_mixed_len_per_s", "2-64 events seq/s"), ("epoch_100k_s", "epoch/100k s"),
        ("n_fit", "timed on")])
    print(f"epoch/100k s: one epoch timed on 'timed on' sessions (MLP: rows) and scaled to "
          f"100,000. Targets: transformer >= {TARGETS['transformer_score_per_s']:,} seq/s, "
          f"an epoch over 100k <= {TARGETS['transformer_epoch_100k_s']} s.")
    if "dataset" not in results:
        return
    ds = results["dataset"]
    print(f"\n== quality: {ds['description']}; {ds['events']:,} events, {ds['sessions']:,} "
          "sessions; judged after each model's train end")
    print_table(results["quality"], [
        ("detector", "detector"), ("roc_auc", "ROC-AUC"), ("ap", "AP"),
        ("recall_at_1pct_fpr", "R@1%FPR"), ("n_train", "train"),
        ("n_anomalous_train", "anomalous in train"), ("n_test_anomalous", "anomalous in test"),
        ("fit_s", "fit s"), ("score_s", "score s")])
    scenarios = sorted({s for r in results["quality"] for s in r.get("recall_by_scenario", {})})
    if scenarios:
        print("\nrecall at 1% FPR by scenario")
        print_table([{"detector": r["detector"], **r.get("recall_by_scenario", {})}
                     for r in results["quality"]],
                    [("detector", "detector"), *[(s, s) for s in scenarios]])
    for r in results["quality"]:
        if "error" in r:
            print(f"  {r['detector']} failed: {r['error']}")
    print("\n== event level: test sessions with anomalous event labels; share whose 3 "
          "highest-scored events include an anomalous one")
    print_table(results["events"], [("detector", "detector"), ("sessions", "sessions"),
                                     ("top3_hit_rate", "top-3 hit rate"),
                                     ("anomalous_event_share", "anomalous share of events")])
    print(f"\npeak memory {results['peak_rss_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer epochs")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality part")
    args = parser.parse_args()
    import logging

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.ERROR)
    results = run(quick=args.quick, users=args.users, days=args.days, seed=args.seed,
                  skip_quality=args.speed_only)
    report(results)
    if args.json:
        emit_json(results)


if __name__ == "__main__":
    main()
