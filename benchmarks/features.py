"""Feature-building speed: session features and event sequences on N synthetic events.

    python -m benchmarks.features --events 10000000 [--threads 2] [--sequences] [--repeat 5]

A child process writes a synthetic store file (built in SQL, vectorised); this process opens it
read-only and times ``build_session_features`` (and ``build_event_sequences`` with
``--sequences``), printing seconds, sessions/s and the process's peak memory. ``--repeat N``
times the session features in N fresh processes (DuckDB's buffers cold each time, the file in
the OS cache) and prints their median: wall times on a shared 2-core VM swing by 10-30%.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks._util import machine, peak_rss_mb

# (event type, share of events); the rest of the mass goes to a long tail of 200 rare types.
_TYPES: tuple[tuple[str, float], ...] = (
    ("view", 0.34), ("search", 0.14), ("add_to_cart", 0.08), ("remove_from_cart", 0.03),
    ("login", 0.06), ("logout", 0.04), ("checkout", 0.04), ("purchase", 0.03),
    ("payment_attempt", 0.04), ("payment_failed", 0.01), ("coupon_apply", 0.02),
    ("review", 0.02), ("wishlist_add", 0.03), ("address_change", 0.005),
    ("password_change", 0.005), ("payment_method_add", 0.005), ("refund_request", 0.005),
    ("page_scroll", 0.05), ("click", 0.04),
)
_N_RARE = 200


def _type_case() -> str:
    """SQL CASE picking an event type from x in [0, 1) with the shares above."""
    parts, cum = [], 0.0
    for name, share in _TYPES:
        cum += share
        parts.append(f"WHEN x < {cum:.4f} THEN '{name}'")
    rare = f"'rare_' || (h1 % {_N_RARE})"
    return "CASE " + " ".join(parts) + f" ELSE {rare} END"


def create_synthetic_events(
    con: duckdb.DuckDBPyConnection, n_events: int, *, seed: int = 0, table: str = "events"
) -> None:
    """An events table shaped like real traffic: ~10 events a session, ~4 sessions a user.

    Session-level attributes (device, IP, country) are mostly stable within a session with a
    few shared devices and country switches; rows are in random (not time) order.
    """
    n_sessions = max(n_events // 10, 1)
    n_users = max(n_sessions // 4, 1)
    span_s = 180 * 86_400
    con.execute(
        f"""
CREATE OR REPLACE TABLE {table} AS
WITH r AS (
  SELECT i,
    (hash(i + $seed) % $n_sessions)::BIGINT AS s,
    (hash(i + $seed + 1000000007) % 1000000007)::BIGINT AS h1,
    (hash(i + $seed + 2000000011) % 1000000007)::BIGINT AS h2
  FROM range($n_events) t(i)
), t AS (
  SELECT *, (hash(s + $seed) % 1000000007)::BIGINT AS hs,
    (h1 % 100000) / 100000.0 AS x
  FROM r
), u AS (
  SELECT *, hs % $n_users AS u, {_type_case()} AS event_type FROM t
)
SELECT
  'e' || i AS event_id,
  'u' || u AS user_id,
  's' || s AS session_id,
  TIMESTAMP '2026-01-01' + to_seconds((s * $span // $n_sessions) + h2 % 1800) AS ts,
  event_type,
  CASE WHEN h2 % 10 < 7 THEN 'i' || (h2 % 50000) END AS item_id,
  CASE WHEN h2 % 10 < 7 THEN 'c' || (h2 % 40) END AS category,
  CASE WHEN event_type IN ('view', 'add_to_cart', 'purchase', 'payment_attempt', 'checkout')
    THEN round(exp((h2 % 1000) / 170.0), 2) END AS amount,
  CASE WHEN event_type = 'add_to_cart' THEN (1 + h2 % 3)::INTEGER END AS quantity,
  CASE WHEN hs % 100 = 0 THEN 'dshared' || (hs % 300) ELSE 'd' || (u * 2 + hs % 2) END
    AS device_id,
  'ip' || (u * 3 + hs % 3) AS ip,
  ['DE', 'FR', 'US', 'GB', 'PL'][1 + ((u + (hs % 500 = 0)::INT) % 5)::BIGINT] AS country,
  'ua' || (u % 40) AS user_agent,
  CASE WHEN event_type IN ('payment_attempt', 'payment_failed', 'purchase')
    THEN 'p' || (u * 2 + (hs % 50 = 0)::INT) END AS payment_id,
  CASE WHEN event_type IN ('review', 'search') AND h1 % 3 = 0
    THEN 'text number ' || (h2 % 20000) END AS text,
  NULL::VARCHAR AS extra,
  1::BIGINT AS ingest_id
FROM u
""",
        {
            "seed": seed,
            "n_sessions": n_sessions,
            "n_users": n_users,
            "n_events": n_events,
            "span": span_s,
        },
    )


def _cpu_s() -> float:
    """User + system CPU seconds of this process: on a shared machine, a steadier measure than
    wall time (other processes' load inflates wall time, much less CPU time)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _repeat(path: Path, threads: int, times: int) -> None:
    """Run this benchmark on ``path`` in ``times`` fresh processes; print each run's session
    features line and the median wall time."""
    walls, cpus = [], []
    for _ in range(times):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.features", "--db", str(path), "--threads",
             str(threads)], check=True, capture_output=True, text=True,
        ).stdout
        line = next(x for x in out.splitlines() if x.startswith("session features:"))
        print(line, flush=True)
        walls.append(float(line.split(" features in ")[1].split("s wall")[0]))
        cpus.append(float(line.split("s wall, ")[1].split(" CPU-s")[0]))
    print(f"median of {times} fresh processes: session features in "
          f"{statistics.median(walls):.2f}s wall (min {min(walls):.2f}, max {max(walls):.2f}), "
          f"{statistics.median(cpus):.1f} CPU-s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sequences", action="store_true", help="Also time event sequences.")
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--db", help="Reuse (or create) this synthetic store file.")
    parser.add_argument("--repeat", type=int, default=1,
                        help="Time session features in this many fresh processes; print the "
                        "median.")
    parser.add_argument("--write-only", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_only:
        con = duckdb.connect(args.write_only)
        create_synthetic_events(con, args.events)
        con.close()
        return

    from core.features import build_event_sequences, build_session_features

    logging.basicConfig(level=logging.INFO, format="  %(message)s")  # per-step timings

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "bench.duckdb"
        if not path.exists():
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "benchmarks.features", "--events", str(args.events),
                 "--write-only", str(path)],
                check=True,
            )
            seconds = time.perf_counter() - started
            print(f"synthetic store: {args.events:,} events in {seconds:.1f}s")
        if args.repeat > 1:
            _repeat(path, args.threads, args.repeat)
            return
        con = duckdb.connect(str(path), read_only=True)
        con.execute(f"SET threads = {int(args.threads)}")
        con.execute("SET enable_progress_bar = false")
        n_events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        print(f"machine: {machine()}, duckdb threads: {args.threads}, events: {n_events:,}")

        started, cpu = time.perf_counter(), _cpu_s()
        out = build_session_features(con)
        seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
        n = len(out)
        print(
            f"session features: {n:,} sessions x {len(out.matrix.names)} features in "
            f"{seconds:.2f}s wall, {cpu:.1f} CPU-s ({n / seconds:,.0f} sessions/s, "
            f"{n_events / seconds:,.0f} events/s); peak RSS {peak_rss_mb():,.0f} MB"
        )
        if args.sequences:
            del out
            started, cpu = time.perf_counter(), _cpu_s()
            seq = build_event_sequences(con, max_len=args.max_len)
            seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
            print(
                f"event sequences: {len(seq):,} sessions x {args.max_len} in {seconds:.2f}s "
                f"wall, {cpu:.1f} CPU-s ({len(seq) / seconds:,.0f} sessions/s); "
                f"peak RSS {peak_rss_mb():,.0f} MB"
            )
        con.close()


if __name__ == "__main__":
    main()
