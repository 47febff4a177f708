"""Card payments scored one by one: the CLI path a payments analyst takes, with and without
history features, on data shaped like the public fraud-detection handbook's simulator.

    python -m benchmarks.payments [--quick] [--customers 2000] [--terminals 4000] [--days 100]

The data is not the project's generator: customers and terminals on a 100 x 100 map, each
customer paying at terminals within 5 units, 0-4 payments a day of a personal mean amount;
fraud is (1) any amount over 220, (2) every payment at 2 terminals a day compromised for
the next 28 days, (3) a third of the payments of 3 customers a day, compromised for 14 days,
at 5x their amount. The file has no event type and no sessions.

It goes through the product as a user would: ``anomalyst ingest --unit event`` (one session
per payment; the terminal maps to ``merchant_id``), ``ingest-labels``, ``train --detector
gbdt --train-end`` (day 70) with and without ``--history``, ``score``, and ``evaluate --from``
a week after the train end (labels of the last week before it are not yet known). Prints
ROC-AUC, AP and recall at 1% FPR per scenario of each model, and each step's seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._util import machine

START = pd.Timestamp("2026-04-01")
SCENARIOS = {0: "normal", 1: "amount", 2: "terminal", 3: "customer"}


def simulate(customers: int, terminals: int, days: int, seed: int = 0) -> pd.DataFrame:
    """Payments with TX_FRAUD and TX_FRAUD_SCENARIO, in time order."""
    rng = np.random.default_rng(seed)
    cxy = rng.uniform(0, 100, (customers, 2))
    mean = rng.uniform(5, 100, customers)
    per_day = rng.uniform(0, 4, customers)
    txy = rng.uniform(0, 100, (terminals, 2))
    near = [np.flatnonzero(((txy - cxy[c]) ** 2).sum(axis=1) < 25) for c in range(customers)]
    counts = rng.poisson(np.repeat(per_day, days))  # per (customer, day)
    cust = np.repeat(np.repeat(np.arange(customers), days), counts)
    day = np.repeat(np.tile(np.arange(days), customers), counts)
    secs = rng.normal(43_200, 20_000, len(cust))
    keep = (secs > 0) & (secs < 86_400) & np.array([len(near[c]) > 0 for c in cust], bool)
    cust, day, secs = cust[keep], day[keep], secs[keep]
    amount = rng.normal(mean[cust], mean[cust] / 2)
    amount = np.where(amount < 0, rng.uniform(0, 2 * mean[cust]), amount)
    pick = rng.random(len(cust))
    terminal = np.array([near[c][int(p * len(near[c]))] for c, p in zip(cust, pick,
                                                                          strict=True)])
    f = pd.DataFrame({"secs": day * 86_400 + secs.astype(np.int64), "customer": cust,
                      "terminal": terminal, "amount": amount.round(2), "day": day})
    f = f.sort_values("secs", kind="stable").reset_index(drop=True)
    scenario = np.where(f["amount"] > 220, 1, 0)
    for d in range(days):
        for t in rng.choice(terminals, 2, replace=False):
            hit = (f["terminal"].to_numpy() == t) & (f["day"].between(d, d + 27)).to_numpy()
            scenario[hit] = 2
        for c in rng.choice(customers, 3, replace=False):
            rows = np.flatnonzero((f["customer"].to_numpy() == c)
                                  & f["day"].between(d, d + 13).to_numpy())
            chosen = rng.choice(rows, len(rows) // 3, replace=False) if len(rows) >= 3 else []
            f.loc[chosen, "amount"] *= 5
            scenario[chosen] = 3
    return pd.DataFrame({
        "TRANSACTION_ID": np.arange(len(f)),
        "TX_DATETIME": START + pd.to_timedelta(f["secs"], "s"),
        "CUSTOMER_ID": "c" + f["customer"].astype(str), "TERMINAL_ID": "t" + f["terminal"].astype(
            str), "TX_AMOUNT": f["amount"].round(2), "TX_FRAUD": (scenario > 0).astype(int),
        "TX_FRAUD_SCENARIO": scenario})


def _cli(*args: str) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"anomalyst {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout, time.perf_counter() - started


def run(customers: int, terminals: int, days: int) -> dict:
    out: dict = {"machine": machine(), "customers": customers, "terminals": terminals,
                 "days": days}
    with tempfile.TemporaryDirectory(prefix="anomalyst-payments-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        tx = simulate(customers, terminals, days)
        out["simulate_s"] = time.perf_counter() - started
        out["payments"] = len(tx)
        out["fraud_share"] = float(tx["TX_FRAUD"].mean())
        tx.drop(columns=["TX_FRAUD", "TX_FRAUD_SCENARIO"]).to_csv(folder / "tx.csv",
                                                                  index=False)
        tx[["TRANSACTION_ID", "TX_FRAUD", "TX_FRAUD_SCENARIO"]].rename(columns={
            "TRANSACTION_ID": "event_id", "TX_FRAUD": "is_fraud",
            "TX_FRAUD_SCENARIO": "scenario"}).assign(
            scenario=lambda x: x["scenario"].map(SCENARIOS)).to_csv(folder / "labels.csv",
                                                                    index=False)
        db = str(folder / "pay.duckdb")
        train_end = (START + pd.Timedelta(days=int(days * 0.7))).isoformat()
        judged_from = (START + pd.Timedelta(days=int(days * 0.7) + 7)).isoformat()
        _, out["ingest_s"] = _cli("ingest", str(folder / "tx.csv"), "--db", db, "--unit",
                                  "event", "--map", "event_id=TRANSACTION_ID", "--map",
                                  "ts=TX_DATETIME", "--map", "amount=TX_AMOUNT")
        _, out["labels_s"] = _cli("ingest-labels", str(folder / "labels.csv"), "--db", db)
        out["models"] = {}
        for flag in ("--history", "--no-history"):
            text, train_s = _cli("train", "--detector", "gbdt", flag, "--train-end", train_end,
                                 "--quiet", "--db", db)
            model_id = text.strip().splitlines()[-1]
            _, score_s = _cli("score", "--model", model_id, "--db", db)
            out["models"][flag] = {"model_id": model_id, "train_s": train_s,
                                   "score_s": score_s}
        text, _ = _cli("evaluate", "--from", judged_from, "--json", "--db", db)
        for row in json.loads(text):
            for entry in out["models"].values():
                if entry["model_id"] == row["model_id"]:
                    entry.update({k: row.get(k) for k in (
                        "n_sessions", "n_anomalous", "roc_auc", "average_precision",
                        "recall_by_scenario", "policy")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 customers, 60 days")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--terminals", type=int, default=4000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()
    customers, terminals, days = ((500, 1000, 60) if args.quick
                                  else (args.customers, args.terminals, args.days))
    out = run(customers, terminals, days)
    print(f"machine: {out['machine']}")
    print(f"{out['payments']:,} payments ({out['fraud_share']:.2%} fraud), {customers:,} "
          f"customers, {terminals:,} terminals, {days} days; simulated in "
          f"{out['simulate_s']:.1f} s, ingested in {out['ingest_s']:.1f} s, labels in "
          f"{out['labels_s']:.1f} s")
    print("gbdt, trained on the first 70% of days, judged on payments from a week after:")
    for flag, m in out["models"].items():
        recall = ", ".join(f"{k} {v:.3f}" for k, v in sorted((m.get("recall_by_scenario")
                                                               or {}).items()))
        print(f"  {flag:<13} ROC-AUC {m['roc_auc']:.3f}  AP {m['average_precision']:.3f}  "
              f"({m['n_sessions']:,} payments, {m['n_anomalous']:,} fraud; train "
              f"{m['train_s']:.0f} s, score {m['score_s']:.0f} s); recall at 1% FPR by "
              f"scenario: {recall}")
    if args.json:
        print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
