"""Ingest speed: N events from Parquet into a fresh store; prints events/s and peak memory.

    python -m benchmarks.ingest --events 10000000

Run it in a fresh process: peak memory is the whole process's high-water mark, so the
synthetic Parquet file is written by a child process first.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._util import machine, peak_rss_mb

EVENT_TYPES = np.array(["login", "search", "view", "add_to_cart", "remove_from_cart", "checkout",
                        "purchase", "payment_attempt", "payment_failed", "review", "logout"])


def write_events(path: Path, n_events: int, seed: int = 0, with_ids: bool = True) -> None:
    """A synthetic events Parquet file shaped like real data (10 events a session)."""
    rng = np.random.default_rng(seed)
    n_sessions = max(n_events // 10, 1)
    session = np.sort(rng.integers(0, n_sessions, n_events))
    user = session // 3
    start = 1_767_225_600 + session * 600  # sessions 10 minutes apart
    ts = start + rng.integers(0, 300, n_events)
    frame = pd.DataFrame({
        "user_id": pd.Series(user).map("u{}".format) if n_events <= 0 else "u" + user.astype(str),
        "ts": pd.to_datetime(ts, unit="s"),
        "event_type": EVENT_TYPES[rng.integers(0, len(EVENT_TYPES), n_events)],
        "amount": np.where(rng.random(n_events) < 0.2, rng.lognormal(3, 1, n_events), np.nan),
        "device_id": "d" + (user * 2 + rng.integers(0, 2, n_events)).astype(str),
        "country": np.array(["DE", "FR", "US", "GB"])[user % 4],
    })
    if with_ids:
        frame.insert(0, "event_id", "e" + np.arange(n_events).astype(str))
        frame.insert(2, "session_id", "s" + session.astype(str))
    frame.to_parquet(path, index=False, row_group_size=1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--derive-ids", action="store_true",
                        help="Leave out event_id and session_id (hash ids, sessionize by gap).")
    parser.add_argument("--write-only", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_only:
        write_events(Path(args.write_only), args.events, with_ids=not args.derive_ids)
        return
    from core.ingest import ingest_events
    from core.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "events.parquet"
        cmd = [sys.executable, "-m", "benchmarks.ingest", "--events", str(args.events),
               "--write-only", str(source)] + (["--derive-ids"] if args.derive_ids else [])
        subprocess.run(cmd, check=True)
        start, cpu = time.perf_counter(), time.process_time()
        with Store.open(Path(tmp) / "bench.duckdb") as store:
            report = ingest_events(store, str(source))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"machine: {machine()}")
    print(f"ingest {report.n_added:,} events ({'derived ids' if args.derive_ids else 'given ids'})"
          f" in {seconds:.2f} s wall / {cpu:.2f} s CPU: {report.n_added / seconds:,.0f} events/s; "
          f"peak memory {peak_rss_mb():,.0f} MB; {report.n_sessions_touched:,} sessions")


if __name__ == "__main__":
    main()
