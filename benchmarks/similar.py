"""Similar past cases: index build time and query latency at 100k decided sessions.

    python -m benchmarks.similar --db /tmp/anomalyst-bench/sample-u285000-d26-s1/anomalyst.duckdb \
        [--decided 100000] [--queries 300] [--k 5] [--seed 0] [--json]

The store is opened read-only. A sample store has no analyst decisions, so the decided pool
is simulated in memory: ``--decided`` labelled sessions drawn at random (seeded) stand for
the decided sessions. The index is built as ``core.app.similar`` builds it
(``core.similar.vectors.build_representation``: the feature cache's full matrix when it holds
the newest feature model's spec, else features built for the pool), then ``--queries``
sessions outside the pool are looked up one at a time: the session's row (from the cache, or
built), scaled and normalised, a matrix-vector product against the pool and an
``argpartition``. Reported: build seconds, query median and p95 (ms) end to end and for the
index alone (vector at hand), peak memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._util import machine, peak_rss_mb


def _p(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values), q)) if values else float("nan")


def _rows_from(rep: Any) -> str:
    if rep.full is None:
        return "features built for the pool"
    if isinstance(rep.full.values, np.memmap):
        return "the feature cache (memory-mapped)"
    return "a full build held in memory (feature cache off)"


def bench_similar(db: str | Path, *, n_decided: int = 100_000, n_queries: int = 300,
                  k: int = 5, seed: int = 0) -> dict[str, Any]:
    """Build the index over ``n_decided`` labelled sessions of the store at ``db`` and time
    ``n_queries`` queries; a dict of the figures."""
    from core.schema import LABEL_SOURCES
    from core.similar.vectors import VectorIndex, build_representation
    from core.store import Store

    rng = np.random.default_rng(seed)
    with Store.open(db, read_only=True) as store:
        started = time.perf_counter()
        labels = store.labels.session_labels(LABEL_SOURCES)
        ids = labels["session_id"].astype(str).to_numpy(dtype=object)
        labels_s = time.perf_counter() - started
        take = rng.permutation(len(ids))
        pool_ids = ids[np.sort(take[:min(n_decided, len(ids))])]
        rest = ids[take[min(n_decided, len(ids)):]]

        started = time.perf_counter()
        rep, vectors = build_representation(store, list(pool_ids), seed=seed)
        index = VectorIndex(pool_ids, vectors)
        build_s = time.perf_counter() - started

        if len(rest) == 0:  # everything is in the pool: query pool sessions (left out)
            rest = pool_ids
        queries = [str(s) for s in rng.choice(rest, min(n_queries, len(rest)), replace=False)]
        end_to_end, index_only = [], []
        for i, sid in enumerate(queries):
            t0 = time.perf_counter()
            vector = rep.vectors(store, [sid])[0]
            t1 = time.perf_counter()
            rows, sims = index.nearest(vector, k, exclude=sid)
            t2 = time.perf_counter()
            if i:  # the first query warms up the caches
                end_to_end.append((t2 - t0) * 1000)
                index_only.append((t2 - t1) * 1000)
            assert 0 < len(rows) <= k and len(sims) == len(rows)
    return {
        "store": str(db), "decided": len(index), "columns": int(vectors.shape[1]),
        "rows_from": _rows_from(rep), "k": k, "queries": len(end_to_end),
        "labels_s": round(labels_s, 3), "build_s": round(build_s, 3),
        "query_ms_median": round(statistics.median(end_to_end), 3) if end_to_end else None,
        "query_ms_p95": round(_p(end_to_end, 0.95), 3) if end_to_end else None,
        "index_ms_median": round(statistics.median(index_only), 3) if index_only else None,
        "index_ms_p95": round(_p(index_only, 0.95), 3) if index_only else None,
        "index_mb": round(vectors.nbytes / 2**20, 1), "peak_rss_mb": round(peak_rss_mb()),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a store with labels (opened read-only)")
    parser.add_argument("--decided", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one BENCH_JSON line")
    args = parser.parse_args(argv)
    out = bench_similar(args.db, n_decided=args.decided, n_queries=args.queries, k=args.k,
                        seed=args.seed)
    if args.json:
        print("BENCH_JSON " + json.dumps(out))
        return
    print(f"similar cases on {out['store']} ({out['machine']})")
    print(f"  pool: {out['decided']:,} decided sessions × {out['columns']} columns "
          f"({out['index_mb']} MB float32; rows from {out['rows_from']})")
    print(f"  labels read {out['labels_s']:.2f} s; index built in {out['build_s']:.2f} s")
    print(f"  query (k={out['k']}, {out['queries']} sessions): median "
          f"{out['query_ms_median']:.2f} ms, p95 {out['query_ms_p95']:.2f} ms end to end; "
          f"index alone median {out['index_ms_median']:.2f} ms, p95 "
          f"{out['index_ms_p95']:.2f} ms")
    print(f"  peak memory {out['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
