"""A tiny store for the typology and similar-case tests: three behaviours, labelled.

- card testing: many small payment attempts, most failing;
- scraping: a burst of views a second apart;
- normal: login, a few views, a purchase.

Every session is labelled (ground truth); four sessions are decided in cases:
``ct-0`` and ``ct-1`` confirmed as card testing (one case), ``n-0`` a false positive,
``sc-0`` inconclusive.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

T0 = dt.datetime(2026, 3, 1, 10)
N_EACH = 12


def _session(rows: list[dict], sid: str, user: str, start: dt.datetime, kind: str,
             rng: np.random.Generator) -> None:
    def add(i: int, event_type: str, seconds: float, amount: float | None = None) -> None:
        rows.append({"event_id": f"{sid}-{i}", "user_id": user, "session_id": sid,
                     "ts": start + dt.timedelta(seconds=seconds), "event_type": event_type,
                     "amount": amount, "device_id": f"d-{user}", "ip": f"ip-{user}",
                     "payment_id": f"p-{sid}-{i % 7}" if amount is not None else None})

    if kind == "card_testing":
        n = int(rng.integers(14, 20))
        for i in range(n):
            add(i, "payment_failed" if i % 4 else "payment_attempt", i * 3.0,
                float(rng.uniform(0.5, 2.0)))
    elif kind == "scraping_bot":
        for i in range(int(rng.integers(40, 60))):
            add(i, "view", i * 1.0)
    else:
        add(0, "login", 0.0)
        for i in range(1, int(rng.integers(3, 6))):
            add(i, "view", i * 45.0 + float(rng.uniform(0, 20)))
        add(9, "purchase", 400.0, float(rng.uniform(30, 120)))


def build(path: Path, *, decide: bool = True, labelled: bool = True) -> Path:
    """Write the store at ``path`` and return it."""
    from core.cases.lifecycle import decide_case, open_case
    from core.ingest import ingest_events
    from core.ingest.labels import ingest_labels
    from core.store import Store

    rng = np.random.default_rng(3)
    rows: list[dict] = []
    labels = []
    for kind, prefix in (("card_testing", "ct"), ("scraping_bot", "sc"), ("normal", "n")):
        for i in range(N_EACH):
            sid = f"{prefix}-{i}"
            _session(rows, sid, f"u-{prefix}-{i // 2}", T0 + dt.timedelta(hours=i), kind, rng)
            labels.append({"session_id": sid, "is_anomaly": kind != "normal",
                           "scenario": kind})
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame(rows))
        if labelled:
            ingest_labels(store, pd.DataFrame(labels))
        if decide and labelled:
            c1 = open_case(store, analyst="ana", session_ids=["ct-0", "ct-1"],
                           user_id="u-ct-0")
            decide_case(store, c1.case_id, "fraud_confirmed", analyst="ana",
                        scenario="card_testing")
            c2 = open_case(store, analyst="ana", session_id="n-0")
            decide_case(store, c2.case_id, "false_positive", analyst="ana")
            c3 = open_case(store, analyst="ana", session_id="sc-0")
            decide_case(store, c3.case_id, "inconclusive", analyst="ana")
    return path
