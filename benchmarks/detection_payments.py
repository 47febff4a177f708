"""``payments``: card payments, one session each, for benchmarks.detection.

Shaped like the public fraud-detection handbook's simulator (``benchmarks.payments.simulate``,
which this project did not design its detectors on): customers pay at terminals near them,
0-4 payments a day of a personal mean amount; fraud is (1) any amount over 220, (2) every
payment at 2 terminals a day compromised for the next 28 days, (3) a third of the payments of
3 customers a day, compromised for 14 days, at 5x their amount.

Each payment is a session of one ``payment`` event (the customer is the user, the terminal the
merchant). Only scenario (1) shows in a payment alone; (2) and (3) live in the entity history
(a terminal's recent fraud, a customer's usual amount): the set is there to show what a
detector makes of data whose anomalies need that history. ``payments_unlabelled`` is the
same data with its labels kept out of the store (no delayed fraud labels to read, and an
unlabelled training window that holds the frauds), as on a new customer's data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.detection_data import BASE_TS, BuiltSet, _ingest, _labelled_set
from benchmarks.payments import SCENARIOS, simulate

CUSTOMERS, TERMINALS, DAYS = 600, 1200, 70


def payments_frames(customers: int = CUSTOMERS, terminals: int = TERMINALS, days: int = DAYS,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, labels) of the simulated payments (module docstring)."""
    tx = simulate(customers, terminals, days, seed=seed)
    ids = "p" + tx["TRANSACTION_ID"].astype(str).str.zfill(7)
    shift = BASE_TS - tx["TX_DATETIME"].min().normalize()
    events = pd.DataFrame({
        "event_id": ids, "user_id": tx["CUSTOMER_ID"], "session_id": ids,
        "ts": tx["TX_DATETIME"] + shift, "event_type": "payment",
        "amount": tx["TX_AMOUNT"], "merchant_id": tx["TERMINAL_ID"]})
    labels = pd.DataFrame({"session_id": ids, "is_anomaly": tx["TX_FRAUD"].astype(bool),
                           "scenario": tx["TX_FRAUD_SCENARIO"].map(SCENARIOS)})
    return events, labels


def build_payments(db: Path, seed: int) -> BuiltSet:
    events, labels = payments_frames(seed=seed)
    built = _labelled_set(
        "payments", db, events, labels,
        f"{len(events):,} card payments ({CUSTOMERS} customers, {TERMINALS} terminals, {DAYS} "
        f"days; {labels['is_anomaly'].mean():.1%} fraud: amounts over 220, compromised "
        "terminals, compromised customers at 5x their amount), one session each")
    built.sequence_models = False  # one event a session: no order to learn
    return built



def build_payments_unlabelled(db: Path, seed: int) -> BuiltSet:
    events, labels = payments_frames(seed=seed)
    n = _ingest(db, events, None)
    info = {"name": "payments_unlabelled", "events": len(events), "sessions": n,
            "anomalous_share": float(labels["is_anomaly"].mean()),
            "description": f"the payments set ({len(events):,} card payments) with its labels "
                           "kept out of the store"}
    return BuiltSet("payments_unlabelled", db, info, labels, labels_in_store=False,
                    sequence_models=False)
