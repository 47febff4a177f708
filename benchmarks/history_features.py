"""History-feature build speed and memory (core.features.history) at 1M and 10M events.

    python -m benchmarks.history_features [--quick] [--threads 2] [--db-dir DIR]

A child process generates sample data (``sample_data.generate``: about 2 events per customer
a day, so 20,000 customers x 25 days is ~1M events and 200,000 x 25 ~10M) and writes its
events and session labels to a DuckDB file; this process opens it read-only and times
``history_feature_columns`` for every session with every entity column the data has, printing
wall and CPU seconds and the process's peak resident memory. ``--quick`` runs 1M only.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks._util import machine, peak_rss_mb

SIZES = {"1M": 20_000, "10M": 200_000}  # customers, at 25 days
DAYS = 25


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_store(path: Path, users: int) -> None:
    """Generate sample data and write ``events`` and ``session_label_rollup`` to ``path``."""
    import sample_data
    from core.schema import EVENT_COLUMN_NAMES
    from core.store.label_rollup import CREATE_TABLE

    data = sample_data.generate(sample_data.GeneratorConfig(users=users, days=DAYS, seed=3))
    events = data.events
    labels = data.labels
    con = duckdb.connect(str(path))
    con.register("generated", events)
    names = set(getattr(events, "column_names", None) or list(events.columns))
    cols = ", ".join(c if c in names else f"NULL AS {c}" for c in EVENT_COLUMN_NAMES)
    con.execute(f"CREATE TABLE events AS SELECT {cols} FROM generated")
    con.unregister("generated")
    del events, data
    con.execute(CREATE_TABLE)
    con.register("generated_labels", labels)
    con.execute("""INSERT INTO session_label_rollup
        SELECT entity_id, 'ground_truth', is_anomaly, scenario FROM generated_labels
        WHERE level = 'session'""")
    con.close()


def _bench(path: Path, threads: int, label: str) -> None:
    from core.features.history import HistorySpec, history_feature_columns, learn_history

    con = duckdb.connect(str(path), read_only=True)
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET enable_progress_bar = false")
    n_events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    ids = [r[0] for r in con.execute("SELECT DISTINCT session_id FROM events").fetchall()]
    spec = learn_history(con, HistorySpec())
    assert spec is not None
    rss_before = peak_rss_mb()
    started, cpu = time.perf_counter(), _cpu_s()
    out = history_feature_columns(con, spec, ids)
    seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
    print(f"{label}: history features for {len(ids):,} sessions x {len(out)} features from "
          f"{n_events:,} events ({', '.join(spec.entity_columns)}) in {seconds:.2f}s wall, "
          f"{cpu:.1f} CPU-s ({n_events / seconds:,.0f} events/s); peak RSS "
          f"{peak_rss_mb():,.0f} MB (before the build {rss_before:,.0f} MB)", flush=True)
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M events only.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--db-dir", help="Keep (and reuse) the generated stores here.")
    parser.add_argument("--size", choices=sorted(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--write-only", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--bench-only", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_only:
        write_store(Path(args.write_only), SIZES[args.size])
        return
    if args.bench_only:
        logging.basicConfig(level=logging.INFO, format="  %(message)s")  # per-step timings
        _bench(Path(args.bench_only), args.threads, args.size)
        return
    print(f"machine: {machine()}, duckdb threads: {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.db_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for size in ["1M"] if args.quick else list(SIZES):
            path = folder / f"history-{size}.duckdb"
            if not path.exists():
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "benchmarks.history_features", "--size",
                                size, "--write-only", str(path)], check=True)
                print(f"{size}: sample store written in {time.perf_counter() - started:.1f}s",
                      flush=True)
            # each size in a fresh process, so its peak memory is its own
            subprocess.run([sys.executable, "-m", "benchmarks.history_features", "--size", size,
                            "--threads", str(args.threads), "--bench-only", str(path)],
                           check=True)


if __name__ == "__main__":
    main()
