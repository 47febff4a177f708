"""Load: many analysts on the Thresholds page at once, over a store of about a million sessions.

    python -m benchmarks.load [--sessions 20] [--moves 5] [--quick | --db STORE] [--json]

Each simulated analyst is one AppTest session (a Streamlit script run in its own thread of this
process, as a real server runs every browser session in threads of one process). All start at
the same moment (the worst case for the first render), then each moves the threshold slider
``--moves`` times with a think time of 1–3 s between moves. Reported: first-render and
slider re-render wall times (median, p95, max) per analyst, and the share of re-renders under
the 1 s target. The store is ``benchmarks.scoring``'s cached store grown to ~1M sessions (built
once under $ANOMALYST_BENCH_CACHE; ``--quick`` uses the small one).
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.detection import describe_machine, emit_json, print_table

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TARGET_MS = 1000.0
LOAD = {"users": 290_000, "days": 26, "seed": 1}


def ensure_load_store(quick: bool, smoke: bool = False) -> tuple[Path, dict[str, Any]]:
    """A scored store of ~1M sessions (or the quick benchmark store), built once and cached."""
    import json
    import subprocess
    import sys

    from benchmarks import scoring

    if quick or smoke:
        return scoring.ensure_store(quick=True, smoke=smoke)
    db = scoring.CACHE / f"load-u{LOAD['users']}-d{LOAD['days']}" / "anomalyst.duckdb"
    marker = db.parent / scoring.PREPARED
    if not marker.exists():
        print(f"building the load store {db} (once; cached) ...", flush=True)
        if db.exists():
            db.unlink()
        subprocess.run([sys.executable, "-m", "benchmarks.scoring", "--prepare", str(db),
                        "--users", str(LOAD["users"]), "--days", str(LOAD["days"]),
                        "--seed", str(LOAD["seed"])], check=True)
    return db, json.loads(marker.read_text())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def share_one_runtime() -> None:
    """Let concurrent AppTests share one Runtime, as a real server's sessions do.

    AppTest installs a mock ``Runtime._instance`` at the start of each run and sets it to None
    at the end, so with 20 sessions in one process one run's end pulled the Runtime from under
    another's (``RuntimeError: Runtime hasn't been created!``, then a page without its slider).
    That is the harness, not the dashboard: a server holds one Runtime for every session.
    """
    from unittest.mock import MagicMock

    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import (
        MemoryCacheStorageManager,
    )
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import AppTest

    if getattr(AppTest, "_anomalyst_shared_runtime", False):
        return
    shared = MagicMock(spec=Runtime)
    shared.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    shared.cache_storage_manager = MemoryCacheStorageManager()
    Runtime.instance = classmethod(  # type: ignore[method-assign]
        lambda cls: cls._instance if cls._instance is not None else shared)
    original = AppTest._run
    lock, active = threading.Lock(), [0]

    def run_sharing(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            active[0] += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            with lock:
                active[0] -= 1
                if active[0]:  # others still run: give them a Runtime back
                    Runtime._instance = shared

    AppTest._run = run_sharing  # type: ignore[method-assign]
    AppTest._anomalyst_shared_runtime = True  # type: ignore[attr-defined]


def analyst(index: int, start: threading.Barrier, moves: int, out: dict[str, Any]) -> None:
    """One simulated analyst; any failure is recorded in ``out['error']``, never lost."""
    try:
        _analyst(index, start, moves, out)
    except Exception as exc:  # noqa: BLE001 - reported in the summary, counted as an error
        out["error"] = f"{type(exc).__name__}: {exc}"


def _analyst(index: int, start: threading.Barrier, moves: int, out: dict[str, Any]) -> None:
    """Open Thresholds, then move the slider with think time."""
    from streamlit.testing.v1 import AppTest

    rng = random.Random(index)
    at = AppTest.from_file(str(APP), default_timeout=600)
    at.switch_page("views/thresholds.py")
    start.wait()
    began = time.perf_counter()
    at.run()
    out["first_ms"] = (time.perf_counter() - began) * 1000
    if at.exception:
        out["error"] = str([e.value for e in at.exception])
        return
    slider = at.slider(key="thr_value")
    lo, hi = float(slider.min), float(slider.max)
    out["moves_ms"] = []
    for _ in range(moves):
        time.sleep(rng.uniform(1.0, 3.0))
        value = lo + (hi - lo) * rng.uniform(0.5, 0.999)
        began = time.perf_counter()
        at.slider(key="thr_value").set_value(value).run()
        out["moves_ms"].append((time.perf_counter() - began) * 1000)
        if at.exception:
            out["error"] = str([e.value for e in at.exception])
            return


def run(*, sessions: int = 20, moves: int = 5, quick: bool = False,
        db: Path | None = None, smoke: bool = False) -> dict[str, Any]:
    import logging
    import os

    if db is None:
        db, info = ensure_load_store(quick, smoke)
    else:
        from core.store import Store

        with Store.open(db, read_only=True) as store:
            info = {"sessions": store.summary.count_sessions()}
    os.environ["ANOMALYST_DB"] = str(db)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    share_one_runtime()
    results: list[dict[str, Any]] = [{} for _ in range(sessions)]
    barrier = threading.Barrier(sessions)
    threads = [threading.Thread(target=analyst, args=(i, barrier, moves, results[i]))
               for i in range(sessions)]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    errors = [r["error"] for r in results if "error" in r]
    firsts = [r["first_ms"] for r in results if "first_ms" in r]
    moves_ms = [m for r in results for m in r.get("moves_ms", [])]
    summary = {
        "store": str(db), "sessions_in_store": info.get("sessions"),
        "analysts": sessions, "moves_each": moves, "moves_done": len(moves_ms),
        "wall_s": wall, "errors": errors,
        "first_render_ms": {"median": statistics.median(firsts), "p95": _percentile(firsts, .95),
                            "max": max(firsts)} if firsts else None,
        "slider_ms": {"median": statistics.median(moves_ms), "p95": _percentile(moves_ms, .95),
                      "max": max(moves_ms),
                      "share_under_1s": sum(m < TARGET_MS for m in moves_ms) / len(moves_ms)}
        if moves_ms else None,
    }
    return summary


def report(summary: dict[str, Any]) -> None:
    print(describe_machine())
    print(f"store: {summary['store']} ({summary['sessions_in_store']:,} sessions); "
          f"{summary['analysts']} analysts x {summary['moves_each']} slider moves "
          f"({summary['moves_done']} done); "
          f"wall {summary['wall_s']:.1f} s; errors: {len(summary['errors'])}")
    rows = []
    for name in ("first_render_ms", "slider_ms"):
        figures = summary[name] or {}
        rows.append({"figure": name, **{k: round(v, 1) if k != "share_under_1s" else
                                       f"{v:.0%}" for k, v in figures.items()}})
    print_table(rows, [("figure", "figure"), ("median", "median ms"), ("p95", "p95 ms"),
                       ("max", "max ms"), ("share_under_1s", "under 1 s")])
    for error in summary["errors"][:3]:
        print("error:", error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="the smallest cached store")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--db", type=Path, default=None, help="Use this scored store instead.")
    args = parser.parse_args()
    summary = run(sessions=args.sessions, moves=args.moves, quick=args.quick, db=args.db,
                  smoke=args.smoke)
    if args.json:
        emit_json(summary)
    else:
        report(summary)


if __name__ == "__main__":
    main()
