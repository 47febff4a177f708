"""Scoring event files on Ray against this process (issue #27).

    python -m benchmarks.scale [--events 1000000] [--partitions 1,2,4,8] [--detector zscore]

Sample events (about --events of them, 30 days) are written as Parquet partitioned by day,
the layout of an object store; a model is trained on a 2,000-user store of the same
generator. Then, in one run: the in-process engine on all events (one store: the
reference), Ray's start-up, and ``score_with_ray`` at each partition count on a local Ray
cluster with this machine's CPUs. Each line gives the seconds, the events per second and per
worker, the stages, each partition's own and context rows (the skew and the context the
cross-user features pull in), and the largest difference from the reference's scores.
The projection to a cluster is printed as a projection, with its assumptions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._util import machine, peak_rss_mb

CACHE = Path("/tmp/anomalyst-bench")
EVENTS_PER_USER_MONTH = 57  # the sample generator's mean over 30 days (measured)
EVENTS_PER_HOUR_TARGET = 1_000_000_000


def prepare(n_events: int, detector: str, seed: int = 5) -> tuple[Path, int, Path, str]:
    """(events folder, events, store, model id), cached by size and detector."""
    import sample_data
    from cli.demo import build_demo_store

    users = max(200, n_events // EVENTS_PER_USER_MONTH)
    root = CACHE / f"scale-u{users}-s{seed}"
    folder = root / "events"
    if not (root / "events.done").exists():
        shutil.rmtree(root, ignore_errors=True)
        data = sample_data.generate(sample_data.GeneratorConfig(users=users, days=30, seed=seed))
        events = data.events
        for day, rows in events.groupby(events["ts"].dt.date.astype(str)):
            (folder / f"day={day}").mkdir(parents=True)
            rows.to_parquet(folder / f"day={day}" / "part.parquet", index=False)
        (root / "events.done").write_text(str(len(events)))
    n = int((root / "events.done").read_text())
    db = CACHE / f"scale-model-{detector}" / "store.duckdb"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        build_demo_store(db, users=2000, days=30, seed=seed + 1, detectors=(detector,),
                         quiet=True)
    from core.app.data import open_store

    with open_store(db, read_only=True) as store:
        model_id = str(store.models.latest_of(detector))
    return folder, n, db, model_id


def work_line(seconds: dict[str, float], n_events: int, who: str) -> str:
    """The scoring stage's parts as seconds and events per second of ``who``."""
    return "scoring stage, events/s of " + who + ": " + ", ".join(
        f"{name} {n_events / value:,.0f} ({value:.1f} s)" for name, value in seconds.items()
        if value > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", default="1,2,4,8")
    parser.add_argument("--detector", default="zscore")
    parser.add_argument("--local-partitions", type=int, default=1,
                        help="User partitions of the in-process reference (more hold less in "
                             "memory at once: the 10M-event run uses 8).")
    parser.add_argument("--skip-local", action="store_true",
                        help="Leave out the in-process reference.")
    parser.add_argument("--skip-ray", action="store_true",
                        help="Only the in-process reference (a 10M-event run in one process "
                             "needs the memory to itself).")
    parser.add_argument("--json", action="store_true", help="Print one BENCH_JSON line too.")
    args = parser.parse_args()
    from core.app.data import open_store
    from core.scale.bundle import ModelBundle
    from core.scale.plan import event_files, read_events, score_in_process
    from core.scale.ray_engine import score_with_ray, start_ray

    started = time.perf_counter()
    folder, n_events, db, model_id = prepare(args.events, args.detector)
    print(f"machine: {machine()}; {n_events:,} events in {len(event_files([str(folder)]))} "
          f"day files; model {model_id}; prepared in {time.perf_counter() - started:.0f} s")
    with open_store(db, read_only=True) as store:
        bundle = ModelBundle.from_store(store, model_id)
    files = event_files([str(folder)])
    result: dict[str, Any] = {"machine": machine(), "events": n_events, "model": model_id,
                              "cpus": os.cpu_count(), "runs": []}
    reference = None
    if not args.skip_local:
        t0 = time.perf_counter()
        raw = read_events(files)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        parts: dict[str, float] = {}
        local = score_in_process(raw, bundle, n_partitions=args.local_partitions,
                                 seconds=parts)
        local_s = time.perf_counter() - t0
        del raw
        reference = local.set_index("session_id")["score"]
        print(f"local, 1 process, {args.local_partitions} partition(s): {local_s:.1f} s "
              f"({n_events / local_s:,.0f} events/s; "
              f"reading the files {read_s:.1f} s more), {len(local):,} sessions, peak RSS "
              f"{peak_rss_mb():,.0f} MB; {work_line(parts, n_events, 'the process')}")
        result["local"] = {"partitions": args.local_partitions, "seconds": local_s,
                           "work_seconds": parts,
                           "read_seconds": read_s,
                           "events_per_s": n_events / local_s, "sessions": len(local)}
    if args.skip_ray:
        if args.json:
            print("BENCH_JSON " + json.dumps(result))
        return
    startup = start_ray(None)
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    print(f"Ray start (local cluster, {cpus} CPUs): {startup:.1f} s")
    result["ray_start_seconds"] = startup
    for parts in (int(p) for p in args.partitions.split(",")):
        out = Path(tempfile.mkdtemp(prefix="anomalyst-scale-")) / "scores"
        run = score_with_ray(files, bundle, str(out), n_partitions=parts, measure=True)
        workers = min(parts, cpus)
        own = [o for o, _ in run.rows_per_partition.values()]
        context = [c for _, c in run.rows_per_partition.values()]
        gap = float("nan")
        if reference is not None:
            found = pd.read_parquet(out).set_index("session_id")["score"]
            gap = float((found - reference.reindex(found.index)).abs().max())
        shutil.rmtree(out.parent, ignore_errors=True)
        skew = max(own) / (sum(own) / len(own)) if own else float("nan")
        stages = ", ".join(f"{k} {v:.1f}" for k, v in run.stages.items())
        print(f"ray, {parts} partitions ({workers} busy workers): {run.seconds:.1f} s "
              f"({n_events / run.seconds:,.0f} events/s, "
              f"{n_events / run.seconds / workers:,.0f} per worker); stages (s): {stages}; "
              f"own rows per partition {min(own):,}..{max(own):,} (max/mean {skew:.2f}); "
              f"context rows {sum(context):,} ({sum(context) / n_events:.2f} per event); "
              f"largest score difference from local {gap:.2e}; "
              f"{work_line(run.work_seconds, n_events, 'a worker')}")
        result["runs"].append({"partitions": parts, "workers": workers, "seconds": run.seconds,
                               "events_per_s": n_events / run.seconds,
                               "per_worker": n_events / run.seconds / workers,
                               "stages": run.stages, "work_seconds": run.work_seconds,
                               "own_rows": own, "context_rows": context,
                               "skew": skew, "max_abs_diff": gap})
    # a cluster needs partitions: project from the partitioned runs (their routing and
    # context included), not from one partition on one worker
    split = [r for r in result["runs"] if r["partitions"] > 1] or result["runs"]
    best = max(split, key=lambda r: r["per_worker"])
    need = EVENTS_PER_HOUR_TARGET / 3600 / best["per_worker"]
    print(f"projection (not a measurement): at {best['per_worker']:,.0f} events/s per worker "
          f"(the best partitioned run above, this machine's cores, context as in this data), "
          f"1 billion events an hour ({EVENTS_PER_HOUR_TARGET / 3600:,.0f}/s) needs "
          f"~{need:,.0f} workers, "
          "assuming the work divides as the partition sweep shows and the shuffles grow "
          "linearly with the data")
    result["projected_workers_1b_per_hour"] = need
    if args.json:
        print("BENCH_JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
