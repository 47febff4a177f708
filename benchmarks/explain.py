"""Explanations: faithfulness to injected events, the deletion test, and latency.

    python -m benchmarks.explain [--quick] [--json] [--users 5000 --days 30 --seed 7] [--threads 1]

One sample-data store (``benchmarks.detection.build_sample_store``) is built in a temporary
folder; the sequence detectors present (sequence_autoencoder, transformer, transformer_mlm)
and two feature detectors (autoencoder, zscore) are trained with ``core.pipeline`` (training
window: the first 70% of the time span) and score every session.

Faithfulness, per sequence model and per-event method, on sessions *after* the train end that
carry ground-truth event labels inside the model's window (the last L events): how often an
injected event is among the top-3 contributing events (hit@3), next to the chance of a random
ranking (chance@3: many scenarios inject most of a session's events, so any ranking hits), and
recall@3 (the share of the top 3 that are injected, out of min(3, injected)). Two sets: the
sessions the model flags (top 1% of its scores) and every labelled anomalous session. The
generator is not tuned to this: it is the same data as ``benchmarks.detection``.

Deletion test: removing the top-3 events (drop-and-shift, as occlusion) should lower the score
more than removing 3 random events (mean of 20 draws), on average over the flagged and
labelled sessions.

"mixed" is the labelled sessions whose injected events are at most half of the window: there
hit@3 can beat chance. ``event AUC`` is the mean, over sessions holding both injected and benign
events, of the within-session ROC-AUC of the contributions against the labels (0.5 = random).

Latency, one session at a time after a warm-up, median of up to 10 sessions: SHAP (our
permutation estimator, and shap's PermutationExplainer for reference, whose numba compilation
is timed separately), attention maps + rollout, occlusion, and ``explain_session`` end to end
(uncached) and from the cache. The machine may be shared: the load average is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.detection import (
    build_sample_store,
    describe_machine,
    device_info,
    emit_json,
    print_table,
)

SEQUENCE_DETECTORS = ("sequence_autoencoder", "transformer", "transformer_mlm")
FEATURE_DETECTORS = ("autoencoder", "zscore")
K = 3


def _median_time(func, items: list[Any]) -> float:  # noqa: ANN001
    times = []
    for item in items:
        start = time.perf_counter()
        func(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times) if times else float("nan")


def train_all(store, models_dir: Path, quick: bool) -> dict[str, str]:  # noqa: ANN001
    """Train and score each detector present; detector -> model id."""
    from core.detectors import available_detectors
    from core.pipeline import score_model, train_model

    epochs = {"autoencoder": 5 if quick else 10, "sequence_autoencoder": 2 if quick else 5,
              "transformer": 2 if quick else 5, "transformer_mlm": 2 if quick else 5}
    out = {}
    for name in (*FEATURE_DETECTORS, *SEQUENCE_DETECTORS):
        if name not in available_detectors():
            continue
        config = {"epochs": epochs[name]} if name in epochs else None
        start = time.perf_counter()
        result = train_model(store, name, quiet=True, config=config, models_dir=models_dir)
        score_model(store, result.model_id)
        print(f"  trained and scored {name} in {time.perf_counter() - start:.1f} s")
        out[name] = result.model_id
    return out


def faithfulness(store, model_id: str, quick: bool) -> dict[str, Any]:  # noqa: ANN001
    """hit@3 / chance@3 / recall@3 and the deletion test, per method, for one model."""
    from sklearn.metrics import roc_auc_score

    from core.explain.fidelity import (
        chance_hit,
        deletion_test,
        injected_events,
        top_k_hit,
        top_k_recall,
    )
    from core.explain.sequence import event_contributions
    from core.pipeline.inputs import build_input
    from core.pipeline.registry import load_model

    model = load_model(store, model_id)
    labels = injected_events(store)
    injected_ids = set(labels.loc[labels["is_anomaly"].astype(bool), "event_id"])
    scores = store.scores.of_model(model_id)
    threshold = float(np.quantile(scores["score"], 0.99))
    test = scores[scores["start_ts"] >= model.train_end] if model.train_end is not None else (
        scores)
    candidates = test[test["session_id"].isin(set(labels["session_id"]))]
    if quick:
        candidates = candidates.sort_values("score", ascending=False).head(150)
    built = build_input(store, "sequences", model.spec,
                        session_ids=candidates["session_id"].tolist())
    flagged = set(candidates.loc[candidates["score"] >= threshold, "session_id"])
    rows: dict[str, dict[str, list[float]]] = {}
    for i, session in enumerate(built.meta["session_id"]):
        k = int(built.data.mask[i].sum())
        injected = np.array([e in injected_ids for e in built.data.event_ids[i, :k]])
        if k == 0 or not injected.any():
            continue  # the injected events fall outside the model's window
        methods, _ = event_contributions(model.detector, built.data, i)
        for method, values in methods.items():
            subsets = ["labelled"]
            if session in flagged:
                subsets.append("flagged")
            if injected.mean() <= 0.5:
                subsets.append("mixed")
            for subset in subsets:
                r = rows.setdefault(f"{subset}:{method}", {k_: [] for k_ in (
                    "hit", "chance", "recall", "auc", "drop_top", "drop_random")})
                r["hit"].append(top_k_hit(values, injected, K))
                r["chance"].append(chance_hit(k, int(injected.sum()), K))
                r["recall"].append(top_k_recall(values, injected, K))
                if 0 < injected.sum() < k:
                    r["auc"].append(roc_auc_score(injected, np.nan_to_num(values, nan=-1e300)))
                deletion = deletion_test(model.detector, built.data, i, values, k=K)
                if deletion is not None:
                    r["drop_top"].append(deletion.drop_top)
                    r["drop_random"].append(deletion.drop_random)
    out = []
    for name, r in sorted(rows.items()):
        subset, method = name.split(":")
        top, rand = np.array(r["drop_top"]), np.array(r["drop_random"])
        out.append({
            "set": subset, "method": method, "n": len(r["hit"]),
            "hit@3": float(np.mean(r["hit"])), "chance@3": float(np.mean(r["chance"])),
            "recall@3": float(np.nanmean(r["recall"])),
            "n_auc": len(r["auc"]), "event_auc": float(np.mean(r["auc"])) if r["auc"] else None,
            "n_deletion": len(top),
            "drop_top3": float(top.mean()) if len(top) else None,
            "drop_random3": float(rand.mean()) if len(rand) else None,
            "top_beats_random": float((top > rand).mean()) if len(top) else None,
        })
    return {"threshold": threshold, "rows": out}


def latency(store, models: dict[str, str], n_sessions: int = 10,  # noqa: ANN001
            shap_reference: bool = True) -> list[dict[str, Any]]:
    """Median seconds per session of each explanation step (after one warm-up call), over
    ``n_sessions`` flagged sessions of each model; with ``shap_reference`` also the shap
    library's PermutationExplainer on the feature models."""
    rows: list[dict[str, Any]] = []
    for name, model_id in models.items():
        rows += _latency_of(store, name, model_id, n_sessions, shap_reference)
    return rows


def _latency_of(store, name: str, model_id: str, n_sessions: int,  # noqa: ANN001
                shap_reference: bool) -> list[dict[str, Any]]:
    from core.explain import explain_session, flagged_session_ids
    from core.explain.sequence import attention_maps, attention_rollout, cls_attention, occlusion
    from core.explain.session import background_ids
    from core.explain.shap_features import FeatureExplainer
    from core.pipeline.inputs import build_input
    from core.pipeline.registry import load_model

    rows: list[dict[str, Any]] = []
    model = load_model(store, model_id)
    # flagged sessions first; a model that flags none on a small run is timed on its top scores
    sessions = flagged_session_ids(store, model_id)[:n_sessions] or (
        store.scores.of_model(model_id).nlargest(n_sessions, "score")["session_id"].tolist())
    if model.input_kind == "features":
        bg = background_ids(store, model.train_end)
        built = build_input(store, "features", model.spec, session_ids=[*sessions, *bg])
        index = {s: i for i, s in enumerate(built.meta["session_id"])}
        explainer = FeatureExplainer(model_id, model.detector,
                                     built.data.take(np.array([index[s] for s in bg])))
        explainer.explain(built.data, index[sessions[0]])  # warm-up
        rows.append({"detector": name, "step": "SHAP (ours, 4 permutation pairs)",
                     "seconds": _median_time(lambda s: explainer.explain(
                         built.data, index[s]), sessions), "target_s": 2.0})
        if shap_reference:
            rows += _shap_library(model, built, index, sessions, bg, name)
    else:
        seqs = build_input(store, "sequences", model.spec, session_ids=sessions).data
        positions = list(range(len(sessions)))
        occlusion(model.detector, seqs, 0)  # warm-up
        rows.append({"detector": name, "step": "occlusion", "target_s": 1.0,
                     "seconds": _median_time(lambda i: occlusion(model.detector, seqs, i),
                                             positions)})
        if hasattr(model.detector, "attentions"):
            def attention(i: int) -> None:
                maps = attention_maps(model.detector, seqs, i)
                cls_attention(maps)
                attention_rollout(maps)

            attention(0)
            rows.append({"detector": name, "step": "attention + rollout", "target_s": 0.1,
                         "seconds": _median_time(attention, positions)})
    explain_session(store, sessions[0], model_id=model_id, use_cache=False, save=False)
    rows.append({"detector": name, "step": "explain_session, uncached (all methods, context, "
                 "reasons)", "seconds": _median_time(lambda s: explain_session(
                     store, s, model_id=model_id, use_cache=False, save=False), sessions)})
    for s in sessions:
        explain_session(store, s, model_id=model_id, use_cache=False, save=True)
    rows.append({"detector": name, "step": "explain_session, from the cache",
                 "seconds": _median_time(lambda s: explain_session(store, s, model_id=model_id),
                                         sessions)})
    return rows


def _shap_library(model, built, index, sessions, bg, name) -> list[dict[str, Any]]:  # noqa: ANN001
    """shap's PermutationExplainer on the same model and background, for reference."""
    import shap

    from core.explain.shap_features import score_function

    fn = score_function(model.detector, built.data.names)
    background = built.data.values[[index[s] for s in bg]].astype(np.float64)
    explainer = shap.Explainer(fn, shap.maskers.Independent(background, len(background)))
    start = time.perf_counter()
    explainer(built.data.values[[index[sessions[0]]]].astype(np.float64), silent=True)
    first = time.perf_counter() - start
    seconds = _median_time(lambda s: explainer(
        built.data.values[[index[s]]].astype(np.float64), silent=True), sessions)
    return [{"detector": name, "step": "SHAP (shap PermutationExplainer, default max_evals)",
             "seconds": seconds, "first_call_s": first, "target_s": 2.0}]


def run(*, quick: bool = False, users: int = 5000, days: int = 30, seed: int = 7,
        threads: int = 1, latency_sessions: int = 10,
        shap_reference: bool = True) -> dict[str, Any]:
    import torch

    from core.store import Store

    if quick:
        users, days = min(users, 800), min(days, 21)
    out: dict[str, Any] = {"machine": describe_machine(), **device_info(), "quick": quick,
                           "threads": threads, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="anomalyst-explain-") as tmp:
        db = Path(tmp) / "sample.duckdb"
        out["dataset"] = build_sample_store(db, users, days, seed)
        with Store.open(db) as store:
            models = train_all(store, Path(tmp) / "models", quick)  # on every core
            out["models"] = models
            torch.set_num_threads(threads)  # what is measured: one analyst's request
            out["faithfulness"] = {}
            for name in SEQUENCE_DETECTORS:
                if name in models:
                    start = time.perf_counter()
                    out["faithfulness"][name] = faithfulness(store, models[name], quick)
                    print(f"  faithfulness of {name} in {time.perf_counter() - start:.1f} s")
            out["latency"] = latency(store, models, latency_sessions, shap_reference)
    out["load_after"] = os.getloadavg()
    return out


def report(results: dict[str, Any]) -> None:
    ds = results["dataset"]
    print(f"machine: {results['machine']}; load average before {results['load_before'][0]:.1f}"
          f", after {results['load_after'][0]:.1f}")
    print(f"data: {ds['description']}, {ds['events']:,} events, {ds['sessions']:,} sessions")
    for name, found in results["faithfulness"].items():
        print(f"\n== {name} ({results['models'][name]}): faithfulness on sessions after the "
              "train end with injected events in the model's window")
        print_table(found["rows"], [("set", "set"), ("method", "method"), ("n", "n"),
                                    ("hit@3", "hit@3"), ("chance@3", "chance@3"),
                                    ("recall@3", "recall@3"), ("event_auc", "event AUC"),
                                    ("n_auc", "n AUC"), ("drop_top3", "drop top3"),
                                    ("drop_random3", "drop rand3"),
                                    ("top_beats_random", "top>rand")])
    print("\n== latency per session (median after warm-up)")
    print_table(results["latency"], [("detector", "detector"), ("step", "step"),
                                     ("seconds", "seconds"), ("target_s", "target s"),
                                     ("first_call_s", "first call s")])
    missing = [d for d in SEQUENCE_DETECTORS if d not in results["models"]]
    if missing:
        print(f"\nnot measured (detector not available): {', '.join(missing)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer users, epochs, sessions")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: on a shared 2-core machine two threads "
                             "spin against other processes and small batches run ~50x slower)")
    parser.add_argument("--latency-sessions", type=int, default=10, metavar="N",
                        help="time each explanation step on N flagged sessions per model")
    parser.add_argument("--no-shap-reference", action="store_true",
                        help="skip timing the shap library's explainer (its JIT takes ~5 s)")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    results = run(quick=args.quick, users=args.users, days=args.days, seed=args.seed,
                  threads=args.threads, latency_sessions=args.latency_sessions,
                  shap_reference=not args.no_shap_reference)
    report(results)
    if args.json:
        emit_json(results)


if __name__ == "__main__":
    main()
