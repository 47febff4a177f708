"""Command line: ``python -m sample_data --users 5000 --days 30 --seed 7 --out DIR``."""

from __future__ import annotations

import argparse
import sys
import time

from core.errors import AnomalystError
from sample_data.config import SCENARIOS, GeneratorConfig
from sample_data.generator import generate
from sample_data.io import write


def build_parser() -> argparse.ArgumentParser:
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m sample_data",
        description="Generate labelled e-commerce events (events.parquet, labels.parquet, "
        "users.parquet).",
    )
    parser.add_argument("--users", type=int, default=defaults.users, help="genuine customers")
    parser.add_argument("--days", type=int, default=defaults.days, help="days of activity")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument("--anomaly-rate", type=float, default=defaults.anomaly_rate,
                        help="share of sessions that are anomalous")
    parser.add_argument("--start", default=defaults.start, help="first day (UTC), ISO date")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), metavar="NAME",
                        help=f"scenarios to inject (default all: {', '.join(SCENARIOS)})")
    parser.add_argument("--subtle-share", type=float, default=defaults.subtle_share,
                        help="share of incidents in their subtle variant")
    parser.add_argument("--lookalike-share", type=float, default=defaults.lookalike_share,
                        help="share of customers with look-alike personas (labelled normal)")
    parser.add_argument("--duplicate-rate", type=float, default=defaults.duplicate_rate)
    parser.add_argument("--missing-rate", type=float, default=defaults.missing_rate)
    parser.add_argument("--out-of-order-rate", type=float, default=defaults.out_of_order_rate)
    parser.add_argument("--out", default="data/sample", help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        config = GeneratorConfig(
            users=args.users, days=args.days, seed=args.seed, anomaly_rate=args.anomaly_rate,
            start=args.start, scenarios=tuple(args.scenarios), subtle_share=args.subtle_share,
            lookalike_share=args.lookalike_share, duplicate_rate=args.duplicate_rate,
            missing_rate=args.missing_rate, out_of_order_rate=args.out_of_order_rate,
        )
        data = generate(config)
        paths = write(data, args.out)
    except AnomalystError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    labels = data.labels
    sessions = labels[labels["level"] == "session"]
    users = labels[labels["level"] == "user"]
    out = sys.stdout
    out.write(
        f"Generated {len(data.events):,} events, {len(sessions):,} sessions "
        f"({int(sessions['is_anomaly'].sum()):,} anomalous), {len(users):,} users "
        f"({int(users['is_anomaly'].sum()):,} anomalous) in "
        f"{time.perf_counter() - started:.1f} s.\n"
    )
    for name, path in paths.items():
        out.write(f"  {name}: {path}\n")
    per = sessions[sessions["is_anomaly"]].groupby("scenario").size()
    for name, count in per.items():
        out.write(f"  {name}: {count:,} sessions\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
