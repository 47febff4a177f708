"""Single-event latency of the scoring service when the policy's model reads extra columns.

    python -m benchmarks.serve_extras [--events 600] [--refuse-extras]

Builds a ``first_purchase`` store (``benchmarks.detection_purchases``: 6,000 accounts, the
first 80% by time ingested), trains ``zscore`` on it (five extra columns: numeric,
categorical, a sign-up time) and publishes it as the policy, then sends ``--events`` later
purchases one request at a time to the in-process service (fsync off, no HTTP) and prints
p50 and p99 of the answers after the first 50. ``--refuse-extras`` makes the answer path
refuse specs with extra columns, as it did before they were read in memory: the store writer
then scores each event.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def run(n_events: int, refuse_extras: bool) -> dict[str, float | str]:
    from benchmarks.detection_purchases import first_purchase_frames
    from core.app import models as app_models
    from core.app.data import open_store
    from core.ingest.events import ingest_events
    from core.policy import publish_policy
    from core.serve.events_in import parse_events
    from core.serve.service import ScoringService, ServiceConfig

    if refuse_extras:
        import core.serve.fast_path as fast_path

        supported = fast_path.supports

        def refuse(spec):  # type: ignore[no-untyped-def]
            if spec.extras is not None and spec.extras.columns:
                return "the model uses extra source columns"
            return supported(spec)

        fast_path.supports = refuse
    events, _ = first_purchase_frames(6000, seed=7)
    cut = events["ts"].quantile(0.8)
    first, rest = events[events["ts"] < cut], events[events["ts"] >= cut].head(n_events)
    db = Path(tempfile.mkdtemp(prefix="anomalyst-serve-extras-")) / "store.duckdb"
    with open_store(db) as store:
        ingest_events(store, first)
        model_id = app_models.train(store, app_models.TrainRequest("zscore", quiet=True)
                                    ).model_id
        app_models.score(store, model_id)
        publish_policy(store, analyst="bench", model_id=model_id, thresholds={"all": 1e12})
    frame = rest.assign(ts=rest["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in frame.to_dict(orient="records")]
    latencies = []
    with ScoringService.open(db, ServiceConfig(fsync=False, wait_s=60.0)) as service:
        scoring = str(service.health()["scoring"])
        for row in rows:
            started = time.perf_counter()
            service.submit(parse_events(json.dumps([row]).encode()))
            latencies.append((time.perf_counter() - started) * 1000)
    kept = np.array(latencies[50:] or latencies)
    return {"scoring": scoring, "requests": len(kept),
            "p50_ms": float(np.percentile(kept, 50)), "p99_ms": float(np.percentile(kept, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--refuse-extras", action="store_true")
    args = parser.parse_args()
    result = run(args.events, args.refuse_extras)
    print(f"scoring: {result['scoring']}; {result['requests']} single-event requests: "
          f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
