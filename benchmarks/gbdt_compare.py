"""gbdt, mlp and scikit-learn's HistGradientBoostingClassifier side by side, over seeds.

    python -m benchmarks.gbdt_compare [--quick] [--json] [--seeds 3] [--history off|on|both]
                                      [--users 2000 --days 30 --data-seed 7] [--threads 1]
                                      [--scenarios A,B] [--anomaly-rate 0.02]

The sample data (``--quick``: 1,000 users x 20 days) goes into a fresh store; the session
feature matrix is built once (its spec learned from the sessions before the store's default
train end, the 70% time point) and every method gets the same matrix: ``--history on`` adds
the point-in-time history and entity features (core.features.history), ``both`` runs the
comparison on each matrix. Each method trains on every session before the train end, labelled
anomalies included (time order kept: the supervised detectors hold out their latest 20% for
early stopping and calibration), and is judged on the labelled sessions after it: ROC-AUC, AP,
recall at 1% FPR overall and per scenario (``benchmarks.detection.test_metrics``), the
expected calibration error of its probabilities (ten equal-count bins) and the fit seconds.
Mean ± std over ``--seeds`` seeds (0, 1, ...); per-seed values in ``--json``.

Every method runs with ``--threads`` threads (default 1: LightGBM's and scikit-learn's
OpenMP and torch's intra-op threads; on cores that other processes share, two threads of each
spent several times the CPU of one waiting on each other, and HistGradientBoosting took 50-70 s
instead of 13 s for 300 rounds at load 8).

Methods, default configs but for the seed and threads:
- ``gbdt``: ``core.detectors.gbdt`` (LightGBM; calibrated probability);
- ``mlp``: ``core.detectors.mlp`` (torch; calibrated probability);
- ``sklearn_hgb``: ``HistGradientBoostingClassifier`` with the same budget as gbdt (at most
  500 rounds at learning rate 0.05, 31 leaves, 20 sessions per leaf, L2 1.0, class_weight
  "balanced", early stopping after 50 rounds) but scikit-learn's own validation split, a
  random stratified 20% rather than the latest sessions; score = ``predict_proba``
  (uncalibrated: the balanced weights inflate it, so its ECE is not comparable).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._util import peak_rss_mb
from benchmarks.detection import (
    build_sample_store,
    describe_machine,
    emit_json,
    print_table,
    test_metrics,
)

METHODS = ("gbdt", "mlp", "sklearn_hgb")


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| rate over ``bins`` equal-count bins of ``p``, weighted by
    bin size."""
    order = np.argsort(p, kind="stable")
    parts = [b for b in np.array_split(order, bins) if len(b)]
    return float(sum(len(b) * abs(p[b].mean() - y[b].mean()) for b in parts) / len(p))


def build_matrix(db: Path, history: bool) -> dict[str, Any]:
    """The feature matrix of every session (time order), labels, scenarios, train mask."""
    from core.datasets import FeatureMatrix
    from core.features import TrainingScope
    from core.pipeline.inputs import build_input
    from core.pipeline.registry import default_train_end
    from core.pipeline.supervised import anomalous_sessions
    from core.store import Store

    with Store.open(db) as store:
        train_end = default_train_end(store)
        extra: dict[str, Any] = {}
        if history:
            from core.features.history import HistorySpec

            extra["history"] = HistorySpec()
        start = time.perf_counter()
        built = build_input(store, "features", progress=False,
                            training=TrainingScope(until=train_end, **extra))
        build_s = time.perf_counter() - start
        anomalous = anomalous_sessions(store)
        truth = store.labels.session_labels(["ground_truth", "analyst"])
    ids = built.meta["session_id"].astype(str)
    y = ids.isin(set(map(str, anomalous))).to_numpy(dtype=float)
    scenario = ids.map(dict(zip(truth["session_id"].astype(str),
                                truth["scenario"].fillna("").astype(str), strict=True)))
    in_train = (built.meta["start_ts"] < train_end).to_numpy()
    data = built.data
    assert isinstance(data, FeatureMatrix)
    return {"data": data, "y": y, "scenario": scenario.fillna("").to_numpy(dtype=object),
            "train": in_train, "build_s": build_s, "n_features": len(data.names)}


def fit_and_score(method: str, seed: int, matrix: dict[str, Any], threads: int
                  ) -> tuple[np.ndarray, float, float, dict[str, Any]]:
    """(test scores, fit wall s, fit CPU s, notes) of ``method`` at ``seed``."""
    data, y, train = matrix["data"], matrix["y"], matrix["train"]
    train_data, test_data = data.take(np.flatnonzero(train)), data.take(np.flatnonzero(~train))
    notes: dict[str, Any] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "sklearn_hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(
            learning_rate=0.05, max_iter=500, max_leaf_nodes=31, min_samples_leaf=20,
            l2_regularization=1.0, class_weight="balanced", early_stopping=True,
            validation_fraction=0.2, n_iter_no_change=50, random_state=seed)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads):
            model.fit(train_data.values, y[train])
        fit_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        notes["rounds"] = int(model.n_iter_)
        with threadpool_limits(threads):
            return model.predict_proba(test_data.values)[:, 1], fit_s, cpu_s, notes
    from core.detectors import build_detector

    config: dict[str, Any] = {"seed": seed}
    if method == "gbdt":
        config["num_threads"] = threads
    else:
        config.update(quiet=True, device="cpu")
    detector = build_detector(method, **config)
    detector.fit(train_data, y[train])
    fit_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    history = detector.history_.to_dict()  # type: ignore[attr-defined]
    notes["rounds"] = history.get("best_iteration", history.get("n_steps"))
    notes["calibration"] = detector.calibration_.method  # type: ignore[attr-defined]
    return detector.score(test_data), fit_s, cpu_s, notes


def compare(matrix: dict[str, Any], seeds: list[int], threads: int) -> list[dict[str, Any]]:
    """One row per method and seed."""
    test = ~matrix["train"]
    y, scenarios = matrix["y"][test], matrix["scenario"][test]
    rows = []
    for seed in seeds:
        for method in METHODS:
            scores, fit_s, cpu_s, notes = fit_and_score(method, seed, matrix, threads)
            metrics = test_metrics(scores, y, scenarios)
            rows.append({"method": method, "seed": seed, "fit_s": fit_s, "cpu_s": cpu_s,
                         "ece": expected_calibration_error(scores, y), **notes, **metrics})
            print(f"  {method} seed {seed}: ROC-AUC {metrics['roc_auc']:.3f} AP "
                  f"{metrics['ap']:.3f} R@1%FPR {metrics['recall_at_1pct_fpr']:.3f} "
                  f"fit {fit_s:.1f} s", flush=True)
    return rows


def _mean_std(values: list[float]) -> str:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return "n/a"
    return f"{np.mean(finite):.3f} ± {np.std(finite):.3f}"


def summarise(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(overall, per scenario): mean ± std over seeds per method."""
    overall, by_scenario = [], []
    scenarios = sorted({s for r in rows for s in r.get("recall_by_scenario", {})})
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        overall.append({"method": method, **{k: _mean_std([r[k] for r in mine]) for k in
                                             ("roc_auc", "ap", "recall_at_1pct_fpr", "ece",
                                              "fit_s")},
                        "rounds": _mean_std([float(r["rounds"]) for r in mine]).replace(
                            ".000", ""),
                        "calibration": ",".join(sorted({str(r.get("calibration", "-"))
                                                        for r in mine}))})
        by_scenario.append({"method": method, **{
            s: _mean_std([r["recall_by_scenario"].get(s, float("nan")) for r in mine])
            for s in scenarios}})
    return overall, by_scenario


def run(*, quick: bool, seeds: int, history: str, users: int, days: int, data_seed: int,
        threads: int, scenarios: tuple[str, ...] | None = None,
        anomaly_rate: float | None = None) -> dict[str, Any]:
    if quick:
        users, days = min(users, 1000), min(days, 20)
    out: dict[str, Any] = {"machine": describe_machine(), "quick": quick,
                           "load_before": os.getloadavg(), "threads": threads, "runs": []}
    with tempfile.TemporaryDirectory(prefix="anomalyst-gbdt-compare-") as tmp:
        db = Path(tmp) / "sample.duckdb"
        out["dataset"] = build_sample_store(db, users, days, data_seed, scenarios,
                                            anomaly_rate)
        for with_history in {"off": [False], "on": [True], "both": [False, True]}[history]:
            matrix = build_matrix(db, with_history)
            test = ~matrix["train"]
            print(f"\n-- matrix {'with' if with_history else 'without'} history features: "
                  f"{matrix['n_features']} features, built in {matrix['build_s']:.1f} s; "
                  f"train {int(matrix['train'].sum()):,} sessions "
                  f"({int(matrix['y'][matrix['train']].sum())} anomalous), test "
                  f"{int(test.sum()):,} ({int(matrix['y'][test].sum())} anomalous)", flush=True)
            rows = compare(matrix, list(range(seeds)), threads)
            out["runs"].append({"history": with_history, "n_features": matrix["n_features"],
                                "build_s": matrix["build_s"],
                                "n_train": int(matrix["train"].sum()),
                                "n_test": int(test.sum()),
                                "n_test_anomalous": int(matrix["y"][test].sum()),
                                "rows": rows})
    out["load_after"] = os.getloadavg()
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def report(results: dict[str, Any]) -> None:
    ds = results["dataset"]
    print(f"\nmachine: {results['machine']}; LightGBM threads {results['threads']}")
    print(f"load average before {', '.join(f'{v:.1f}' for v in results['load_before'])}, "
          f"after {', '.join(f'{v:.1f}' for v in results['load_after'])}")
    print(f"data: {ds['description']}; {ds['events']:,} events, {ds['sessions']:,} sessions")
    for run_ in results["runs"]:
        overall, by_scenario = summarise(run_["rows"])
        seeds = len({r["seed"] for r in run_["rows"]})
        print(f"\n== {'with' if run_['history'] else 'without'} history features "
              f"({run_['n_features']} features); test {run_['n_test']:,} sessions, "
              f"{run_['n_test_anomalous']} anomalous; mean ± std over {seeds} seeds")
        print_table(overall, [("method", "method"), ("roc_auc", "ROC-AUC"), ("ap", "AP"),
                              ("recall_at_1pct_fpr", "R@1%FPR"), ("ece", "ECE"),
                              ("fit_s", "fit s"), ("rounds", "rounds (mlp: steps)"),
                              ("calibration", "calibration")])
        scenarios = [k for k in (by_scenario[0] if by_scenario else {}) if k != "method"]
        if scenarios:
            print("\nrecall at 1% FPR by scenario")
            print_table(by_scenario, [("method", "method"), *[(s, s) for s in scenarios]])
    print(f"\npeak memory {results['peak_rss_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 users x 20 days")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--history", choices=("off", "on", "both"), default="both")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--data-seed", type=int, default=7)
    parser.add_argument("--scenarios", default=None, metavar="A,B",
                        help="only these sample-data scenarios (e.g. the history-only ones: "
                             "compromised_merchant,device_farm,spending_break)")
    parser.add_argument("--anomaly-rate", type=float, default=None,
                        help="the generator's anomaly rate (default 0.02)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of every method (0: every core)")
    args = parser.parse_args()
    import logging

    import torch

    from core.detectors.gbdt import resolve_threads

    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.ERROR)
    results = run(quick=args.quick, seeds=args.seeds, history=args.history, users=args.users,
                  days=args.days, data_seed=args.data_seed, threads=threads,
                  scenarios=tuple(args.scenarios.split(",")) if args.scenarios else None,
                  anomaly_rate=args.anomaly_rate)
    report(results)
    if args.json:
        emit_json(results)


if __name__ == "__main__":
    main()
