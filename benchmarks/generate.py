"""Sample-data generation speed: events/second and peak memory.

    python -m benchmarks.generate                      # 200,000 users x 26 days, ~10M events
    python -m benchmarks.generate --users 5000 --days 30   # the default demo set

Run it in a fresh process: peak memory is the whole process's high-water mark (ru_maxrss).
CPU seconds are reported next to wall seconds because a shared machine inflates wall time, and
split into user and system time: on a virtual machine the first touch of memory the host has not
backed yet is paid as system time (here ~1.3 s per GB touched), which varies from run to run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchmarks._util import machine, peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=26)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", metavar="DIR", help="also write the Parquet files to DIR")
    args = parser.parse_args()

    import sample_data

    config = sample_data.GeneratorConfig(users=args.users, days=args.days, seed=args.seed)
    wall, before = time.perf_counter(), os.times()
    data = sample_data.generate(config)
    wall, after = time.perf_counter() - wall, os.times()
    user, system = after.user - before.user, after.system - before.system
    cpu = user + system
    n = len(data.events)
    sessions = int((data.labels["level"] == "session").sum())
    print(f"machine: {machine()}")
    print(f"generate {n:,} events ({sessions:,} sessions, {len(data.users):,} users; "
          f"{args.users:,} customers x {args.days} days) in {wall:.2f} s wall / {cpu:.2f} s CPU "
          f"(user {user:.2f}, system {system:.2f}): "
          f"{n / wall:,.0f} events/s wall, {n / cpu:,.0f} events/s CPU; "
          f"peak memory {peak_rss_mb():,.0f} MB")
    if args.write:
        start = time.perf_counter()
        paths = sample_data.write(data, Path(args.write))
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in paths.values()) / 2**20
        print(f"write {size:,.0f} MB of Parquet in {seconds:.2f} s ({n / seconds:,.0f} events/s); "
              f"peak memory {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
