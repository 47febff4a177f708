"""Typology guess: accuracy on held-back labelled anomalies, per scenario, against the
majority class, over seeds.

    python -m benchmarks.typology --db /tmp/anomalyst-bench/sample-u285000-d26-s1/anomalyst.duckdb \
        [--seeds 0,1,2] [--test-share 0.2] [--max-pool 50000] [--max-test 4000] \
        [--split user|session] [--json]

The store is opened read-only. The pool is every session labelled anomalous with a scenario
(``core.similar.typology.typology_pool``), as unit vectors (``build_representation``: the
feature cache when it holds the newest feature model's spec). Per seed, the sessions of a
random ``--test-share`` of the pool's users are held back, at most ``--max-test`` of them
(``--split session``: single sessions, so a user's other sessions may stay in the pool); the
typology model (k nearest, similarity-weighted vote, the distance cut calibrated on the
remaining pool) guesses each held-back session.
Reported, mean ± sd over the seeds: accuracy counting "no close match" as wrong, accuracy
of the answered guesses, the share answered "no close match", the majority-class baseline
(always the training pool's commonest scenario), each scenario's accuracy, and the share of
labelled *normal* sessions (a sample) answered "no close match" (they should be far from
every anomaly).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._util import machine, peak_rss_mb

N_NORMAL = 2_000


def _mean_sd(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def bench_typology(db: str | Path, *, seeds: tuple[int, ...] = (0, 1, 2),
                   test_share: float = 0.2, max_pool: int = 50_000, max_test: int = 4_000,
                   n_normal: int = N_NORMAL, split: str = "user") -> dict[str, Any]:
    """Accuracy figures of the typology guess on the store at ``db`` (see the module doc)."""
    from core.schema import LABEL_SOURCES
    from core.similar.typology import NO_MATCH, TypologyModel, typology_pool
    from core.similar.vectors import build_representation
    from core.store import Store

    with Store.open(db, read_only=True) as store:
        labels = store.labels.session_labels(LABEL_SOURCES)
        pool = typology_pool(labels)
        if len(pool) > max_pool:
            pool = pool.sample(n=max_pool, random_state=0).reset_index(drop=True)
        owners = store.sessions.meta().set_index("session_id")["user_id"].astype(str)
        normal_ids = labels.loc[~labels["is_anomaly"].astype(bool), "session_id"].astype(str)
        normal_ids = normal_ids.sample(n=min(n_normal, len(normal_ids)), random_state=0)
        started = time.perf_counter()
        ids = list(pool["session_id"]) + list(normal_ids)
        _rep, vectors = build_representation(store, ids, seed=0)
        vectors_s = time.perf_counter() - started
    pool_vectors, normal_vectors = vectors[:len(pool)], vectors[len(pool):]
    scenarios = pool["scenario"].to_numpy(dtype=object)
    users = owners.reindex(pool["session_id"]).to_numpy(dtype=object)
    if split not in ("user", "session"):
        raise ValueError(f"split must be 'user' or 'session', got {split!r}")
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n_test = min(max_test, max(1, int(round(len(pool) * test_share))))
        if split == "user":  # a user's sessions are all held back or all kept
            names = np.unique(users.astype(str))
            held = set(rng.permutation(names)[:max(1, int(round(len(names) * test_share)))])
            in_test = np.asarray([u in held for u in users.astype(str)])
            test = rng.permutation(np.flatnonzero(in_test))[:n_test]
            train = np.flatnonzero(~in_test)
        else:
            order = rng.permutation(len(pool))
            test, train = order[:n_test], order[n_test:]
        started = time.perf_counter()
        model = TypologyModel.fit(pool["session_id"].to_numpy(dtype=object)[train],
                                  pool_vectors[train], scenarios[train], seed=seed)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        guesses = model.guess_many(list(pool["session_id"].iloc[test]), pool_vectors[test])
        guess_ms = (time.perf_counter() - started) * 1000 / max(1, len(test))
        truth = scenarios[test]
        said = np.asarray([g.scenario for g in guesses], dtype=object)
        answered = np.asarray([g.scenario is not None for g in guesses])
        right = said == truth
        majority = pd.Series(scenarios[train]).value_counts().index[0]
        per = {str(s): float(right[truth == s].mean()) for s in sorted(set(truth))}
        normal = model.guess_many(list(normal_ids), normal_vectors) if len(normal_ids) else []
        runs.append({
            "seed": seed, "n_train": len(train), "n_test": len(test), "cut": model.cut,
            "accuracy": float(right.mean()),
            "answered_accuracy": float(right[answered].mean()) if answered.any() else float("nan"),
            "no_match": float(1 - answered.mean()),
            "majority": float((truth == majority).mean()),
            "per_scenario": per, "fit_s": fit_s, "guess_ms": guess_ms,
            "normal_no_match": float(np.mean([g.scenario is None for g in normal]))
            if normal else float("nan"),
        })
    summary: dict[str, Any] = {"store": str(db), "pool": len(pool), "seeds": list(seeds),
                               "split": split,
                               "vectors_s": round(vectors_s, 2), "no_match_name": NO_MATCH,
                               "machine": machine(), "peak_rss_mb": round(peak_rss_mb())}
    for key in ("accuracy", "answered_accuracy", "no_match", "majority", "normal_no_match",
                "cut", "fit_s", "guess_ms"):
        summary[key] = _mean_sd([r[key] for r in runs])
    names = sorted({s for r in runs for s in r["per_scenario"]})
    summary["per_scenario"] = {s: _mean_sd([r["per_scenario"][s] for r in runs
                                            if s in r["per_scenario"]]) for s in names}
    summary["n_test"] = statistics.median(r["n_test"] for r in runs)
    summary["runs"] = runs
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a store with labels (opened read-only)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--max-pool", type=int, default=50_000)
    parser.add_argument("--max-test", type=int, default=4_000)
    parser.add_argument("--split", choices=("user", "session"), default="user",
                        help="hold back whole users (default) or single sessions")
    parser.add_argument("--json", action="store_true", help="print one BENCH_JSON line")
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    out = bench_typology(args.db, seeds=seeds, test_share=args.test_share,
                         max_pool=args.max_pool, max_test=args.max_test, split=args.split)
    if args.json:
        print("BENCH_JSON " + json.dumps(out, default=float))
        return

    def ms(key: str, scale: float = 100.0, unit: str = "%", digits: int = 1) -> str:
        m, s = out[key]
        return f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}{unit}"

    print(f"typology on {out['store']} ({out['machine']}); seeds {out['seeds']}")
    print(f"  pool {out['pool']:,} labelled anomalies with a scenario, {out['n_test']:,.0f} "
          f"held back per seed (split by {out['split']}); vectors in {out['vectors_s']:.1f} s")
    print(f"  accuracy (no close match counts as wrong) {ms('accuracy')}; of the answered "
          f"{ms('answered_accuracy')}; majority-class baseline {ms('majority')}")
    print(f"  answered '{out['no_match_name']}': {ms('no_match')} of held-back anomalies, "
          f"{ms('normal_no_match')} of {N_NORMAL:,} labelled normal sessions")
    print(f"  distance cut {ms('cut', 1.0, '', 3)}; fit {ms('fit_s', 1.0, ' s', 2)}; "
          f"guess {ms('guess_ms', 1.0, ' ms', 2)} per session (batched)")
    print("  per scenario (accuracy, no close match counts as wrong):")
    for name, (m, s) in out["per_scenario"].items():
        print(f"    {name:<22} {m * 100:5.1f} ± {s * 100:.1f}%")
    print(f"  peak memory {out['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
