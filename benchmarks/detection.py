"""Detection quality: every Anomalyst detector next to PyOD peers, on a split by time.

    python -m benchmarks.detection [--quick] [--json] [--users 5000 --days 30 --seed 7]

Two data sets, each in a fresh temporary store:

1. ``sample``: the built-in generator (users x days, seed), ingested with its ground truth.
2. ``markov``: event sequences from a sparse Markov chain over 50 event types, with two
   planted rare transitions in ~2% of the sessions (no amounts; the timestamp is only an
   order); built here and ingested through ``core.ingest.ingest_events`` as a DataFrame.

Anomalyst detectors go through ``core.pipeline.train_model`` (sessions before the 70% time
point; unsupervised ones leave the labelled anomalies out, supervised ones -- transformer,
cnn_gru, mlp -- learn from those labels, as they would in use) and ``score_model`` (every
session, written back); their fit and score seconds therefore include building the input from
the store and writing the scores.
The peers get the same session FeatureMatrix, robust-standardised (median/IQR of the training
rows, clipped to +-10) the same way for all of them, and train on the same normal training rows;
their seconds are the detector alone (fit, then scoring every session). Everyone is evaluated on
the labelled sessions from the 70% point on: ROC-AUC, average precision, recall at 1% FPR and
per-scenario recall at that threshold. A bigram-surprisal scorer (train-set transition counts,
the form of the Markov generator) is listed as a reference, not a peer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._util import machine, peak_rss_mb

JSON_PREFIX = "BENCH_JSON "


# ------------------------------------------------------------------ helpers shared by benchmarks
def clock(func: Callable[[], Any], repeat: int = 1) -> tuple[float, float, Any]:
    """Median wall seconds, median CPU seconds (``time.process_time``: every thread of this
    process) of ``repeat`` runs, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def clock_median(func: Callable[[], Any], under_s: float = 10.0) -> tuple[float, float, Any]:
    """``clock`` once; when that took under ``under_s`` s, twice more, and the medians of 3."""
    wall, cpu, result = clock(func)
    if wall >= under_s:
        return wall, cpu, result
    walls, cpus = [wall], [cpu]
    for _ in range(2):
        w, c, result = clock(func)
        walls.append(w)
        cpus.append(c)
    return statistics.median(walls), statistics.median(cpus), result


def device_info() -> dict[str, Any]:
    """The torch device the benchmarks run on (CUDA when available) and thread count."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "device": "cuda" if cuda else "cpu",
        "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
    }


def describe_machine() -> str:
    info = device_info()
    return f"{machine()}; torch device {info['device']} ({info['device_name']}), " \
           f"{info['torch_threads']} torch threads"


def emit_json(results: dict[str, Any]) -> None:
    print(JSON_PREFIX + json.dumps(results, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path | pd.Timestamp):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """Rows as a fixed-width text table; ``columns`` are (key, header)."""
    cells = [[h for _, h in columns]] + [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


# ------------------------------------------------------------------------------ the data sets
def build_sample_store(db: Path, users: int, days: int, seed: int) -> dict[str, Any]:
    import sample_data
    from core.ingest import ingest_events
    from core.ingest.labels import ingest_labels
    from core.store import Store

    data = sample_data.generate(sample_data.GeneratorConfig(users=users, days=days, seed=seed))
    with Store.open(db) as store:
        ingest_events(store, data.events)
        ingest_labels(store, data.labels)
        n_sessions = store.scalar("count_sessions")
    return {"name": "sample", "events": len(data.events), "sessions": int(n_sessions),
            "description": f"sample_data users={users} days={days} seed={seed}"}


def markov_frames(n_sessions: int, *, n_types: int = 50, anomaly_rate: float = 0.02,
                  noise: float = 0.002, n_planted: int = 2, seed: int = 0,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, session labels) of a sparse Markov chain with planted rare transitions.

    Each event type has 4 likely successors (Dirichlet weights) and shares ``noise`` of its
    probability over all other types, so rare transitions also occur, seldom, in normal
    sessions. An anomalous session gets ``n_planted`` positions whose event type is replaced by
    one that the previous event almost never leads to. Sessions are 8-40 events; the timestamp
    is a global event index (order only), so the split by time is a split by session order.
    """
    rng = np.random.default_rng(seed)
    trans = np.full((n_types, n_types), noise / (n_types - 1))
    for state in range(n_types):
        succ = rng.choice(np.delete(np.arange(n_types), state), 4, replace=False)
        trans[state, succ] += (1 - noise) * rng.dirichlet(np.ones(4))
    trans[np.arange(n_types), np.arange(n_types)] = 0.0
    trans /= trans.sum(axis=1, keepdims=True)
    cum = np.cumsum(trans, axis=1)
    lengths = rng.integers(8, 41, n_sessions)
    max_len = int(lengths.max())
    tokens = np.empty((n_sessions, max_len), dtype=np.int64)
    tokens[:, 0] = rng.integers(0, n_types, n_sessions)
    for pos in range(1, max_len):
        u = rng.random(n_sessions)[:, None]
        tokens[:, pos] = np.minimum((cum[tokens[:, pos - 1]] < u).sum(axis=1), n_types - 1)
    anomalous = rng.random(n_sessions) < anomaly_rate
    rare = trans < noise  # pairs (a, b) that are not among a's likely successors
    for s in np.flatnonzero(anomalous):
        for pos in rng.choice(np.arange(1, lengths[s]), n_planted, replace=False):
            candidates = np.flatnonzero(rare[tokens[s, pos - 1]])
            tokens[s, pos] = rng.choice(candidates)
    n_users = max(n_sessions // 5, 1)
    user = rng.integers(0, n_users, n_sessions)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    rows, cols = np.nonzero(mask)
    ts = np.arange(len(rows), dtype=np.int64) + 1  # order only: a global sequence index
    events = pd.DataFrame({
        "event_id": [f"m{i}" for i in range(len(rows))],
        "user_id": [f"mu{u}" for u in user[rows]],
        "session_id": [f"ms{s:07d}" for s in rows],
        "ts": ts,
        "event_type": np.array([f"type_{t:02d}" for t in range(n_types)])[tokens[rows, cols]],
    })
    labels = pd.DataFrame({
        "session_id": [f"ms{s:07d}" for s in range(n_sessions)],
        "is_anomaly": anomalous,
        "scenario": np.where(anomalous, "rare_transition", "normal"),
    })
    return events, labels


def build_markov_store(db: Path, n_sessions: int, seed: int = 0) -> dict[str, Any]:
    from core.ingest import ingest_events
    from core.ingest.labels import ingest_labels
    from core.store import Store

    events, labels = markov_frames(n_sessions, seed=seed)
    with Store.open(db) as store:
        ingest_events(store, events)
        ingest_labels(store, labels)
    return {"name": "markov", "events": len(events), "sessions": n_sessions,
            "anomalous_share": float(labels["is_anomaly"].mean()),
            "description": f"Markov chain, 50 event types, {n_sessions:,} sessions of 8-40 "
                           "events, 2 planted rare transitions in ~2% of sessions"}


# ------------------------------------------------------------------------------- evaluation
def _metrics(scores: np.ndarray, labels: np.ndarray, scenarios: np.ndarray) -> dict[str, Any]:
    from core.evaluate import evaluate_scores

    out = evaluate_scores(np.nan_to_num(scores.astype(np.float64), nan=0.0, posinf=1e300),
                          labels, scenarios=scenarios)
    return {"roc_auc": out["roc_auc"], "ap": out["average_precision"],
            "recall_at_1pct_fpr": out["recall_at_fpr"],
            "recall_by_scenario": out.get("recall_by_scenario", {})}


def _bigram_scores(tokens: np.ndarray, mask: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Max surprisal -log p(b | a) over a session's transitions, p from train counts (+0.5)."""
    vocab = int(tokens.max()) + 1
    prev, nxt = tokens[:, :-1], tokens[:, 1:]
    both = mask[:, :-1] & mask[:, 1:]
    counts = np.full((vocab, vocab), 0.5)
    np.add.at(counts, (prev[train][both[train]], nxt[train][both[train]]), 1.0)
    logp = np.log(counts / counts.sum(axis=1, keepdims=True))
    surprise = np.where(both, -logp[prev, nxt], 0.0)
    return surprise.max(axis=1)


def _peers(n_features: int, epochs: int, device: str) -> dict[str, Callable[[], Any]]:
    """PyOD detectors, built lazily so a failing import is reported per peer."""
    common = {"preprocessing": False, "verbose": 0, "random_state": 0}

    def iforest():
        from pyod.models.iforest import IForest
        return IForest(n_estimators=100, random_state=0, n_jobs=1)

    def ecod():
        from pyod.models.ecod import ECOD
        return ECOD()

    def autoencoder():
        from pyod.models.auto_encoder import AutoEncoder
        return AutoEncoder(epoch_num=epochs, batch_size=256, device=device, **common)

    def deep_svdd():
        from pyod.models.deep_svdd import DeepSVDD
        return DeepSVDD(n_features=n_features, epochs=epochs, batch_size=256, **common)

    def vae():
        from pyod.models.vae import VAE
        return VAE(epoch_num=epochs, batch_size=256, device=device, **common)

    return {"pyod IForest": iforest, "pyod ECOD": ecod, "pyod AutoEncoder": autoencoder,
            "pyod DeepSVDD": deep_svdd, "pyod VAE": vae}


def evaluate_dataset(db: Path, models_dir: Path, *, epochs: int, seq_epochs: int,
                     peers: bool = True, repeat_under_s: float = 10.0) -> list[dict[str, Any]]:
    """Train, score and evaluate every detector on the store at ``db``; one row each. A fit
    or score under ``repeat_under_s`` seconds is timed three times (medians)."""

    def clock3(func: Callable[[], Any]) -> tuple[float, float, Any]:
        return clock_median(func, repeat_under_s)

    from core.detectors import available_detectors
    from core.detectors._scaling import fit_scaler
    from core.pipeline import default_train_end, labelled_scores, score_model, train_model
    from core.pipeline.inputs import build_input
    from core.store import Store

    device = device_info()["device"]
    rows: list[dict[str, Any]] = []
    with Store.open(db) as store:
        train_end = default_train_end(store)
        labels = store.frame("session_labels", {"sources": ["ground_truth", "analyst"]})
        wall, cpu, feats = clock3(lambda: build_input(store, "features"))
        rows.append({"detector": "(build session features)", "kind": "input",
                     "fit_wall_s": wall, "fit_cpu_s": cpu})
        wall, cpu, seqs = clock3(lambda: build_input(store, "sequences"))
        rows.append({"detector": "(build event sequences)", "kind": "input",
                     "fit_wall_s": wall, "fit_cpu_s": cpu})

        meta = feats.meta[["session_id", "start_ts"]].merge(
            labels[["session_id", "is_anomaly", "scenario"]], on="session_id", how="left")
        is_anom = meta["is_anomaly"].fillna(False).astype(bool).to_numpy()
        labelled = meta["is_anomaly"].notna().to_numpy()
        before = (meta["start_ts"] < train_end).to_numpy()
        train_rows = before & ~is_anom
        test_rows = ~before & labelled
        scen = np.where(is_anom, meta["scenario"].astype(str).to_numpy(), "normal")
        test_y, test_scen = is_anom[test_rows], scen[test_rows]
        session_order = meta["session_id"].to_numpy()

        def judge(row: dict[str, Any], scores_by_session: pd.Series) -> None:
            scores = scores_by_session.reindex(session_order).to_numpy(np.float64)
            row.update(_metrics(scores[test_rows], test_y, test_scen))
            rows.append(row)

        config = {  # the sequence models get the sequence epochs (5; 2 quick): the whole
            # run stays near 10 minutes, and the demo trains the transformer 4 epochs
            "autoencoder": {"epochs": epochs},
            **{name: {"epochs": seq_epochs} for name in (
                "sequence_autoencoder", "transformer", "transformer_mlm", "cnn_gru")},
        }
        _warm_up(feats.data, seqs.data)
        for name in available_detectors():
            row: dict[str, Any] = {"detector": f"anomalyst {name}", "kind": "anomalyst"}
            try:
                fit_wall, fit_cpu, trained = clock3(lambda n=name: train_model(
                    store, n, quiet=True, config=config.get(n), models_dir=models_dir))
                score_wall, score_cpu, _ = clock3(lambda t=trained: score_model(store,
                                                                                 t.model_id))
                frame = labelled_scores(store, trained.model_id)
                row.update(fit_wall_s=fit_wall, fit_cpu_s=fit_cpu, score_wall_s=score_wall,
                           score_cpu_s=score_cpu, n_train=trained.n_train)
                judge(row, frame.set_index("session_id")["score"])
            except Exception as exc:  # a failing detector is a result, not a crash
                row["error"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
                rows.append(row)

        values = feats.data.values
        centre, scale = fit_scaler(values[train_rows], "robust")
        x_all = np.clip((values - centre) / scale, -10, 10).astype(np.float32)
        x_train = x_all[train_rows]
        if peers:
            for name, make in _peers(values.shape[1], epochs, device).items():
                row = {"detector": name, "kind": "peer", "n_train": int(train_rows.sum())}
                try:
                    make().fit(x_train[:512])  # warm-up: numba JIT, torch kernels
                    fit_wall, fit_cpu, model = clock3(lambda mk=make: mk().fit(x_train))
                    score_wall, score_cpu, scores = clock3(
                        lambda m=model: m.decision_function(x_all))
                    row.update(fit_wall_s=fit_wall, fit_cpu_s=fit_cpu, score_wall_s=score_wall,
                               score_cpu_s=score_cpu)
                    judge(row, pd.Series(np.asarray(scores, np.float64), index=session_order))
                except Exception as exc:
                    row["error"] = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc()
                    rows.append(row)

        seq_meta = seqs.meta["session_id"].to_numpy()
        seq_train = pd.Series(train_rows, index=session_order).reindex(seq_meta).to_numpy(bool)
        data = seqs.data
        wall, cpu, bigram = clock3(lambda: _bigram_scores(data.tokens, data.mask, seq_train))
        row = {"detector": "reference: bigram surprisal", "kind": "reference",
               "fit_wall_s": wall, "fit_cpu_s": cpu, "n_train": int(seq_train.sum())}
        judge(row, pd.Series(bigram, index=seq_meta))
    return rows


def _warm_up(features: Any, sequences: Any) -> None:
    """Fit and score every Anomalyst detector once on a few rows, so one-time costs (torch
    kernel set-up, lazy imports) are not charged to the first timed detector."""
    from core.detectors import available_detectors, build_detector

    for name in available_detectors():
        detector = build_detector(name)
        fields = detector.config.to_dict()
        overrides = {k: v for k, v in (("epochs", 1), ("quiet", True)) if k in fields}
        detector = build_detector(name, **overrides)
        data = features if detector.input_kind == "features" else sequences
        part = data.take(np.arange(min(len(data), 512)))
        if type(detector).requires_labels:  # any labels with both classes will do here
            y = (np.arange(len(part)) % 10 == 0).astype(float)
            detector.fit(part, y)
        else:
            detector.fit(part)
        detector.score(part)


def leader(rows: list[dict[str, Any]], kinds: tuple[str, ...] = ("anomalyst", "peer")) -> str:
    scored = [r for r in rows if r.get("kind") in kinds and r.get("ap") is not None]
    best = max(scored, key=lambda r: r["ap"])
    return f"{best['detector']} (AP {best['ap']:.3f})"


def run(*, quick: bool = False, users: int = 5000, days: int = 30, seed: int = 7,
        markov_sessions: int = 20_000, repeat_under_s: float = 10.0) -> dict[str, Any]:
    """Both data sets; returns {"machine", "device", "datasets": [{..., "rows": [...]}]}."""
    if quick:
        users, markov_sessions = min(users, 1500), min(markov_sessions, 6000)
    epochs, seq_epochs = (3, 2) if quick else (10, 5)
    out: dict[str, Any] = {"machine": describe_machine(), **device_info(), "quick": quick,
                           "epochs": epochs, "seq_epochs": seq_epochs,
                           "repeat_under_s": repeat_under_s, "datasets": []}
    with tempfile.TemporaryDirectory(prefix="anomalyst-detection-") as tmp:
        for builder in ("sample", "markov"):
            db = Path(tmp) / f"{builder}.duckdb"
            wall, cpu, info = clock(
                (lambda d=db: build_sample_store(d, users, days, seed)) if builder == "sample"
                else (lambda d=db: build_markov_store(d, markov_sessions, seed=seed)))
            info.update(build_wall_s=wall, build_cpu_s=cpu)
            info["rows"] = evaluate_dataset(db, Path(tmp) / f"models-{builder}",
                                            epochs=epochs, seq_epochs=seq_epochs,
                                            repeat_under_s=repeat_under_s)
            info["leader_ap"] = leader(info["rows"])
            out["datasets"].append(info)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


COLUMNS = [("detector", "detector"), ("roc_auc", "ROC-AUC"), ("ap", "AP"),
           ("recall_at_1pct_fpr", "R@1%FPR"), ("fit_wall_s", "fit s"), ("fit_cpu_s", "fit CPU s"),
           ("score_wall_s", "score s"), ("score_cpu_s", "score CPU s")]


def report(results: dict[str, Any]) -> None:
    print(f"machine: {results['machine']}")
    for ds in results["datasets"]:
        print(f"\n== {ds['name']}: {ds['description']}; {ds['events']:,} events, "
              f"{ds['sessions']:,} sessions (built in {ds['build_wall_s']:.1f} s wall / "
              f"{ds['build_cpu_s']:.1f} s CPU)")
        print_table(ds["rows"], COLUMNS)
        scenarios = sorted({s for r in ds["rows"] for s in r.get("recall_by_scenario", {})})
        if len(scenarios) > 1:
            print("\nrecall at 1% FPR by scenario")
            short = [(s, s) for s in scenarios]
            flat = [{"detector": r["detector"], **r.get("recall_by_scenario", {})}
                    for r in ds["rows"] if r.get("kind") != "input"]
            print_table(flat, [("detector", "detector"), *short])
        for r in ds["rows"]:
            if "error" in r:
                print(f"  {r['detector']} failed: {r['error']}")
        print(f"leader on AP (Anomalyst and peers): {ds['leader_ap']}")
    print(f"\npeak memory {results['peak_rss_mb']:,.0f} MB. Anomalyst fit/score seconds include "
          "building the input from the store (and writing scores); peers' are the detector "
          "alone on the prepared matrix.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1 minute: fewer users, epochs")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--markov-sessions", type=int, default=20_000)
    parser.add_argument("--repeat-under", type=float, default=10.0, metavar="S",
                        help="time fits and scores under S seconds 3 times (0: once)")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    results = run(quick=args.quick, users=args.users, days=args.days, seed=args.seed,
                  markov_sessions=args.markov_sessions, repeat_under_s=args.repeat_under)
    report(results)
    if args.json:
        emit_json(results)


if __name__ == "__main__":
    main()
