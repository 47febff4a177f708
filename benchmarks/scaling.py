"""Scaling: the same pipeline at three sizes, to show how each stage's cost grows.

    python -m benchmarks.scaling [--events 1000000 3000000 10000000] [--quick] [--json]

For each size: generate sample data (about 50 events per customer over 26 days), ingest it
into a fresh store, build the session features, train the autoencoder (``train_model``: the
features again, then 3 epochs) and score every session with it (``score_model``: features,
the model, the write). Review-text features are off here (``ANOMALYST_TEXT_FEATURES=off``):
embedding is a model's cost per distinct text, measured by ``benchmarks.text``.
Each stage's wall and CPU seconds are timed once per size (the largest sizes take tens of
seconds: run-to-run noise is small next to a 10x size step). The growth exponent k of each
stage is the slope of log(seconds) against log(events) between the smallest and largest size:
k ~ 1 is linear; k < 1 means fixed costs still dominate the small sizes; k > 1 is worse than
linear.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._util import peak_rss_mb
from benchmarks.detection import describe_machine, device_info, emit_json, print_table

EVENTS_PER_USER = 50.6  # sample_data at 26 days: 10,130,478 events from 200,000 customers
DAYS = 26
SEED = 1
EPOCHS = 3
SIZES = (1_000_000, 3_000_000, 10_000_000)
QUICK_SIZES = (100_000, 300_000, 1_000_000)
STAGES = ("generate", "ingest", "features", "train autoencoder", "score autoencoder")
# train = features + 3 epochs + save; score = features + scoring + the write


def _timed(func: Any) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def one_size(target_events: int, folder: Path) -> dict[str, Any]:
    """Every stage once at about ``target_events`` events."""
    import sample_data
    from core.ingest import ingest_events
    from core.pipeline import score_model, train_model
    from core.pipeline.inputs import build_input
    from core.store import Store

    users = max(int(round(target_events / EVENTS_PER_USER)), 50)
    stages: dict[str, dict[str, float]] = {}

    def note(stage: str, wall: float, cpu: float) -> None:
        stages[stage] = {"wall_s": wall, "cpu_s": cpu}

    wall, cpu, data = _timed(lambda: sample_data.generate(
        sample_data.GeneratorConfig(users=users, days=DAYS, seed=SEED)))
    note("generate", wall, cpu)
    events = data.events
    n_events = len(events)
    del data
    db = folder / f"scaling-{target_events}.duckdb"
    with Store.open(db) as store:
        wall, cpu, _ = _timed(lambda: ingest_events(store, events))
        note("ingest", wall, cpu)
        n_sessions = store.summary.count_sessions()
        wall, cpu, _ = _timed(lambda: build_input(store, "features"))
        note("features", wall, cpu)
        wall, cpu, trained = _timed(lambda: train_model(
            store, "autoencoder", epochs=EPOCHS, quiet=True, models_dir=folder / "models"))
        note("train autoencoder", wall, cpu)
        wall, cpu, _ = _timed(lambda: score_model(store, trained.model_id))
        note("score autoencoder", wall, cpu)
    db.unlink(missing_ok=True)
    return {"target_events": target_events, "users": users, "events": n_events,
            "sessions": n_sessions, "stages": stages}


def growth(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage: k = d log(seconds) / d log(events), smallest to largest size, and a verdict."""
    small, large = rows[0], rows[-1]
    ratio = math.log(large["events"] / small["events"])
    out = {}
    for stage in STAGES:
        a, b = small["stages"][stage]["wall_s"], large["stages"][stage]["wall_s"]
        k = math.log(max(b, 1e-6) / max(a, 1e-6)) / ratio if ratio > 0 else float("nan")
        verdict = ("linear" if 0.8 <= k <= 1.2 else
                   "sublinear (fixed costs still count at the small size)" if k < 0.8 else
                   "superlinear")
        out[stage] = {"k": k, "verdict": verdict}
    return out


def run(*, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    import logging
    import os

    logging.disable(logging.WARNING)
    os.environ["ANOMALYST_TEXT_FEATURES"] = "off"
    out: dict[str, Any] = {"machine": describe_machine(), **device_info(), "days": DAYS,
                           "epochs": EPOCHS, "sizes": list(sizes)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="anomalyst-scaling-") as tmp:
        for size in sizes:
            print(f"size {size:,} events ...", flush=True)
            rows.append(one_size(size, Path(tmp)))
    out["rows"] = rows
    out["growth"] = growth(rows)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def report(results: dict[str, Any]) -> None:
    print(results["machine"])
    rows = results["rows"]
    print(f"pipeline at {len(rows)} sizes ({results['days']} days of sample data; autoencoder "
          f"{results['epochs']} epochs). Seconds wall (events/s wall):")
    table = []
    for stage in STAGES:
        line: dict[str, Any] = {"stage": stage}
        for row in rows:
            wall = row["stages"][stage]["wall_s"]
            line[str(row["events"])] = f"{wall:.2f} s ({row['events'] / wall:,.0f}/s)"
        grow = results["growth"][stage]
        line["k"] = f"{grow['k']:.2f}"
        line["verdict"] = grow["verdict"]
        table.append(line)
    columns = [("stage", "stage")] + [(str(r["events"]), f"{r['events']:,} events "
                                       f"({r['sessions']:,} sessions)") for r in rows]
    print_table(table, columns + [("k", "k"), ("verdict", "growth")])
    print("CPU seconds: " + "; ".join(
        f"{r['events']:,} events: " + ", ".join(
            f"{s} {r['stages'][s]['cpu_s']:.1f}" for s in STAGES) for r in rows))
    print(f"peak memory of this process {results['peak_rss_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs=3, metavar=("SMALL", "MEDIUM", "LARGE"),
                        help=f"three sizes in events (default {', '.join(map(str, SIZES))})")
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {', '.join(map(str, QUICK_SIZES))}")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()
    sizes = tuple(args.events) if args.events else QUICK_SIZES if args.quick else SIZES
    if sorted(sizes) != list(sizes) or len(set(sizes)) != 3:
        parser.error(f"--events must be three growing sizes, got {list(sizes)}")
    results = run(sizes=sizes)
    report(results)
    if args.json:
        emit_json(results)


if __name__ == "__main__":
    main()
