"""Fit seconds and validation AP of the supervised detectors at ~20k sessions.

    python -m benchmarks.supervised_fit [--users 5000 --days 30 --seed 7] [--db PATH]
        [--detectors transformer,cnn_gru,mlp] [--set transformer.max_steps=600 ...]

The sample data (5,000 users x 30 days: ~20k sessions) goes into a store (``--db`` keeps it
for the next run); each supervised detector is fitted once on every session, in time order,
with its default config (``--set NAME.FIELD=VALUE`` overrides a field) and the store's labels.
Printed per detector: sessions, optimiser steps and passes run, whether early stopping ended
it, fit seconds (``fit`` alone: the input is built before the clock starts), the CPU seconds
of the process meanwhile (steadier than the wall clock when other processes share the cores:
on 2 free cores the wall clock is about half of it) and the average precision on its
validation part (the latest 20% of the sessions). The load average is printed too.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

SUPERVISED = ("transformer", "cnn_gru", "mlp")


def build_store(db: Path, users: int, days: int, seed: int) -> None:
    from benchmarks.detection import build_sample_store

    if not db.exists():
        build_sample_store(db, users, days, seed)


def inputs(db: Path) -> dict[str, Any]:
    """The features and sequences of every session, their labels and event labels."""
    from core.datasets import EventSequences
    from core.pipeline.inputs import build_input
    from core.pipeline.supervised import anomalous_sessions, training_event_labels
    from core.store import Store

    out: dict[str, Any] = {}
    with Store.open(db) as store:
        anomalous = anomalous_sessions(store)
        for kind in ("features", "sequences"):
            built = build_input(store, kind, progress=False)
            y = built.meta["session_id"].isin(anomalous).to_numpy(dtype=float)
            extra = ({"event_labels": training_event_labels(store, built.data, y)}
                     if isinstance(built.data, EventSequences) else {})
            out[kind] = (built.data, y, extra)
    return out


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME.FIELD=VALUE`` (VALUE a Python literal, else a string) -> {NAME: {FIELD: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        name, _, field = key.partition(".")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out.setdefault(name, {})[field] = value
    return out


def fit_one(name: str, data: Any, y: np.ndarray, extra: dict[str, Any],
            overrides: dict[str, Any]) -> dict[str, Any]:
    from core.detectors import build_detector

    detector = build_detector(name, quiet=True, device="cpu", **overrides)
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    detector.fit(data, y, **extra)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    history = detector.history_.to_dict()  # type: ignore[attr-defined]
    return {"detector": name, "sessions": len(y), "anomalous": int(y.sum()),
            "steps": history.get("n_steps"), "epochs": history.get("epochs"),
            "stopped_early": history.get("stopped_early"), "fit_s": round(seconds, 1),
            "cpu_s": round(cpu, 1),
            "validation_ap": detector.validation_ap_,  # type: ignore[attr-defined]
            "load_1min": round(load, 1), "overrides": overrides}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", type=Path, default=None, help="store to build or reuse")
    parser.add_argument("--detectors", default=",".join(SUPERVISED))
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME.FIELD=VALUE")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    import logging
    import tempfile

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.ERROR)
    overrides = parse_overrides(args.overrides)
    with tempfile.TemporaryDirectory(prefix="anomalyst-supervised-fit-") as tmp:
        db = args.db or Path(tmp) / "sample.duckdb"
        build_store(db, args.users, args.days, args.seed)
        built = inputs(db)
        print(f"torch threads {torch.get_num_threads()}; load before "
              f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
        for name in args.detectors.split(","):
            from core.detectors import get_detector_class

            kind = get_detector_class(name).input_kind
            data, y, extra = built[kind]
            row = fit_one(name, data, y, extra, overrides.get(name, {}))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
