"""How the sequence detectors should turn event scores into a session score.

    python -m benchmarks.sequence_aggregation [--seeds 3] [--quick] [--json]

Three data sets, each split by time (train on the normal sessions of the first 60%, test on the
rest), each generated once per seed:

1. ``unseen``: a sparse Markov chain over 50 event types (``markov_frames`` without planted
   anomalies), 10-40 events per session; in 1.5% of the test sessions one event becomes an
   event type that training never showed.
2. ``markov300``: ``markov_frames`` with 300 event types and two planted rare transitions in
   ~2% of the sessions.
3. ``sample``: the built-in sample data (small), through a store and the product's sequence
   builder.

Each sequence detector (``sequence_autoencoder``, ``transformer_mlm``) trains once per data set
and seed (small budgets, one torch thread so the run shares 2 cores), scores the test
sessions' events once, and every aggregation of ``core.detectors._aggregate`` is judged on
those event scores by average precision. The decision rule: per detector, the aggregation with
the best median over the data sets of its mean AP over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DETECTORS = ("sequence_autoencoder", "transformer_mlm")
DATASETS = ("unseen", "markov300", "sample")
CONFIGS: dict[str, dict[str, Any]] = {
    "sequence_autoencoder": {"max_steps": 400, "epochs": None},
    "transformer_mlm": {"max_steps": 300, "epochs": None, "hidden_size": 32,
                        "intermediate_size": 64},
}


def frames_to_sequences(events: pd.DataFrame, labels: pd.DataFrame, seed: int) -> tuple[
        Any, np.ndarray]:
    """EventSequences (one noise channel) and 0/1 labels of ``markov_frames`` output."""
    from core.datasets import EventSequences

    codes, sessions = pd.factorize(events["session_id"])  # sessions arrive contiguous
    position = events.groupby(codes).cumcount().to_numpy()
    width = int(position.max()) + 1
    types, names = pd.factorize(events["event_type"], sort=True)
    vocab = {str(name): k + 2 for k, name in enumerate(names)}
    n = len(sessions)
    tokens = np.zeros((n, width), dtype=np.int64)
    tokens[codes, position] = types + 2
    mask = tokens > 0
    rng = np.random.default_rng(seed + 100)
    numeric = np.where(mask[:, :, None], rng.normal(size=(n, width, 1)), 0).astype(np.float32)
    event_ids = np.where(mask, "e", "").astype(object)
    data = EventSequences(np.asarray(sessions, dtype=object), tokens, numeric, mask, event_ids,
                          vocab, ("noise",))
    y = labels.set_index("session_id").loc[sessions, "is_anomaly"].to_numpy(dtype=float)
    return data, y


def unseen_set(n: int, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """(sequences, labels, is_train): one never-trained type in 1.5% of test sessions."""
    from benchmarks.detection import markov_frames
    from core.datasets import EventSequences

    events, labels = markov_frames(n, n_types=50, anomaly_rate=0.0, seed=seed)
    lengths = events.groupby("session_id", sort=False).size().to_numpy()
    keep = np.repeat(lengths >= 10, lengths)  # 10-40 ordinary events
    events = events[keep]
    labels = labels[labels["session_id"].isin(set(events["session_id"]))]
    data, y = frames_to_sequences(events, labels, seed)
    is_train = np.arange(len(data)) < int(0.6 * len(data))
    rng = np.random.default_rng(seed)
    test = np.flatnonzero(~is_train)
    hit = rng.choice(test, max(int(0.015 * len(test)), 5), replace=False)
    tokens = data.tokens.copy()
    novel = {f"new_type_{k}": 60 + k for k in range(5)}
    for row in hit:
        col = rng.integers(0, int(data.mask[row].sum()))
        tokens[row, col] = rng.choice(list(novel.values()))
    y = np.zeros(len(data))
    y[hit] = 1.0
    data = EventSequences(data.session_ids, tokens, data.numeric, data.mask, data.event_ids,
                          {**data.vocab, **novel}, data.channel_names)
    return data, y, is_train


def markov_set(n: int, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    from benchmarks.detection import markov_frames

    events, labels = markov_frames(n, n_types=300, seed=seed)
    data, y = frames_to_sequences(events, labels, seed)
    return data, y, np.arange(len(data)) < int(0.6 * len(data))


def sample_set(users: int, seed: int, tmp: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    import sample_data
    from core.ingest import ingest_events
    from core.ingest.labels import ingest_labels
    from core.pipeline import default_train_end
    from core.pipeline.inputs import build_input
    from core.pipeline.supervised import anomalous_sessions
    from core.store import Store

    generated = sample_data.generate(sample_data.GeneratorConfig(users=users, days=20,
                                                                 seed=seed))
    with Store.open(tmp / f"sample-{seed}.duckdb") as store:
        ingest_events(store, generated.events)
        ingest_labels(store, generated.labels)
        built = build_input(store, "sequences", progress=False)
        end = default_train_end(store)
        y = built.meta["session_id"].isin(anomalous_sessions(store)).to_numpy(dtype=float)
    return built.data, y, (built.meta["start_ts"] < end).to_numpy()


def evaluate(data: Any, y: np.ndarray, is_train: np.ndarray, seed: int,
             quick: bool) -> list[dict[str, Any]]:
    from sklearn.metrics import average_precision_score

    from core.detectors import build_detector
    from core.detectors._aggregate import AGGREGATIONS, aggregate_events

    train = data.take(np.flatnonzero(is_train & (y == 0)))
    test_rows = np.flatnonzero(~is_train)
    test, y_test = data.take(test_rows), y[test_rows]
    rows = []
    for name in DETECTORS:
        config = dict(CONFIGS[name])
        if quick:
            config["max_steps"] = 60
        detector: Any = build_detector(name, **config, seed=seed, quiet=True, device="cpu")
        start = time.perf_counter()
        detector.fit(train)
        events = detector.score_events(test)
        seconds = time.perf_counter() - start
        for aggregation in AGGREGATIONS:
            scores = aggregate_events(events, aggregation, top_k=3)
            rows.append({"detector": name, "aggregation": aggregation, "seconds": seconds,
                         "ap": float(average_precision_score(y_test, scores))})
    return rows


def run(seeds: int = 3, quick: bool = False) -> dict[str, Any]:
    n = 2500 if quick else 7000
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="anomalyst-aggregation-") as tmp:
        for seed in range(seeds):
            for dataset in DATASETS:
                if dataset == "unseen":
                    data, y, is_train = unseen_set(n, seed)
                elif dataset == "markov300":
                    data, y, is_train = markov_set(n, seed)
                else:
                    data, y, is_train = sample_set(300 if quick else 1500, seed, Path(tmp))
                for row in evaluate(data, y, is_train, seed, quick):
                    results.append({"dataset": dataset, "seed": seed,
                                    "n_test_anomalous": int(y[~is_train].sum()),
                                    "n_test": int((~is_train).sum()), **row})
                print(f"  seed {seed} {dataset}: done", flush=True)
    return {"rows": results, "decision": decide(results)}


def decide(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per detector: mean AP over seeds per (data set, aggregation), the median over data
    sets per aggregation, and the aggregation with the best median."""
    frame = pd.DataFrame(rows)
    out = {}
    for name, part in frame.groupby("detector"):
        means = part.groupby(["aggregation", "dataset"])["ap"].mean().unstack("dataset")
        medians = means.median(axis=1)
        out[str(name)] = {"mean_ap": means.round(3).to_dict(orient="index"),
                          "median": medians.round(3).to_dict(),
                          "best": str(medians.idxmax())}
    return out


def report(results: dict[str, Any]) -> None:
    frame = pd.DataFrame(results["rows"])
    for name, decision in results["decision"].items():
        part = frame[frame["detector"] == name]
        table = part.groupby(["aggregation", "dataset"])["ap"].agg(["mean", "std"])
        print(f"\n== {name}: AP per aggregation, mean ± sd over seeds; median over data sets")
        print("aggregation".ljust(12) + "".join(d.rjust(16) for d in DATASETS)
              + "median".rjust(9))
        for aggregation, median in sorted(decision["median"].items(), key=lambda kv: -kv[1]):
            cells = "".join("{:.3f} ± {:.3f}".format(*table.loc[(aggregation, d)]).rjust(16)
                            for d in DATASETS)
            print(aggregation.ljust(12) + cells + f"{median:.3f}".rjust(9))
        seconds = part.drop_duplicates(["dataset", "seed"])["seconds"]
        print(f"best: {decision['best']}; fit + score {statistics.median(seconds):.1f} s median")
    counts = frame.drop_duplicates(["dataset", "seed"]).groupby("dataset")[
        ["n_test", "n_test_anomalous"]].mean()
    print("\ntest sessions (anomalous), mean over seeds:",
          ", ".join(f"{d} {int(r.n_test)} ({r.n_test_anomalous:.0f})"
                    for d, r in counts.iterrows()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, 60 steps")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()
    import logging

    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.ERROR)
    start = time.perf_counter()
    results = run(args.seeds, args.quick)
    report(results)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        from benchmarks.detection import emit_json

        emit_json(results)


if __name__ == "__main__":
    main()
