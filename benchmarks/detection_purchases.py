"""``first_purchase``: e-commerce first purchases with a sign-up time, for benchmarks.detection.

Shaped like the public "fraud e-commerce" data (one row per account: sign-up time, purchase
time and value, device, IP, traffic source, browser, sex, age), which this project does not
hold: one session of one ``purchase`` event per user; the sign-up time, source, browser, sex
and age arrive as extra columns, the sign-up time as an ISO 8601 string.

- purchases fall evenly over 60 days (so the default 70% time split leaves 30% to test);
  normal accounts had signed up between an hour and 90 days before, and buy on their own
  IP; so that neither signal alone is a give-away, 2% of them buy 1-120 seconds after signing
  up, and 15% share a device with one or two other normal accounts (a household);
- ``rate`` of the accounts are fraud, of two kinds in turn: ``instant_purchase`` buys 1-10
  seconds after signing up (a script), ``device_ring`` buys after an ordinary delay but on a
  device shared by 2-8 fraud accounts (on their own IPs).

``first_purchase_ids`` is the same data with two numbers that name something, as public
account data carries them: a ``customer_number`` handed out in sign-up order (so accounts
opened after the training window have larger ones) and a five-digit ``zip``. Neither says
anything about fraud; read as quantities they are noise, and the customer number drifts.

Labels are in the store. A detector sees the quick purchases only through the time from the
sign-up to the purchase (``extra_since_log[signup_time]``, docs/FEATURES.md): before extra
columns that hold instants became features, ``signup_time`` was ignored as text with one value
per account.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.detection_data import BASE_TS, BuiltSet, _labelled_set

SOURCES = ("SEO", "Ads", "Direct")
BROWSERS = ("Chrome", "Safari", "FireFox", "IE", "Opera")
FRAUD_KINDS = ("instant_purchase", "device_ring")


def first_purchase_frames(n_users: int, *, rate: float = 0.05, seed: int = 0,
                          numbers: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, labels) of ``n_users`` first purchases (module docstring); ``numbers`` adds
    the ``first_purchase_ids`` columns."""
    rng = np.random.default_rng(seed)
    bought = rng.uniform(0, 60 * 86_400, n_users)
    delay = np.exp(rng.uniform(np.log(3_600), np.log(90 * 86_400), n_users))
    fraud = rng.random(n_users) < rate
    kind = np.full(n_users, "normal", dtype=object)
    kind[np.flatnonzero(fraud)] = [FRAUD_KINDS[i % 2] for i in range(int(fraud.sum()))]
    instant = kind == "instant_purchase"
    delay[instant] = rng.uniform(1, 10, int(instant.sum()))
    hasty = (kind == "normal") & (rng.random(n_users) < 0.02)
    delay[hasty] = rng.uniform(1, 120, int(hasty.sum()))
    device = np.array([f"d{i:06d}" for i in range(n_users)], dtype=object)
    household = np.flatnonzero((kind == "normal") & (rng.random(n_users) < 0.15))
    start = 0
    while start + 1 < len(household):  # households of two, every third of three
        size = 3 if start % 7 == 4 else 2
        device[household[start:start + size]] = f"h{start:05d}"
        start += size
    ring = np.flatnonzero(kind == "device_ring")
    start = 0
    while start < len(ring):
        size = int(rng.integers(2, 9))
        if len(ring) - (start + size) == 1:  # no ring of one: the last account joins this one
            size += 1
        device[ring[start:start + size]] = f"ring{start:05d}"
        start += size
    ids = np.array([f"a{i:06d}" for i in range(n_users)], dtype=object)
    purchase = BASE_TS + pd.to_timedelta(bought, unit="s")
    signed_up = (purchase - pd.to_timedelta(delay, unit="s")).floor("s")
    events = pd.DataFrame({
        "event_id": [f"e{i:06d}" for i in range(n_users)], "user_id": ids, "session_id": ids,
        "ts": purchase.floor("s"), "event_type": "purchase",
        "amount": np.round(np.exp(rng.normal(3.5, 0.5, n_users)), 2),
        "device_id": device, "ip": [f"10.{i // 65_536}.{i // 256 % 256}.{i % 256}"
                                    for i in range(n_users)],
        "signup_time": signed_up.strftime("%Y-%m-%dT%H:%M:%S"),
        "source": rng.choice(SOURCES, n_users), "browser": rng.choice(BROWSERS, n_users),
        "sex": rng.choice(("M", "F"), n_users), "age": rng.integers(18, 70, n_users)})
    if numbers:
        order = np.argsort(signed_up.to_numpy(), kind="stable")
        events["customer_number"] = np.empty(n_users, np.int64)
        events.loc[order, "customer_number"] = 100_000 + np.arange(n_users)
        events["zip"] = rng.integers(10_000, 99_999, n_users)
    events = events.sort_values("ts", kind="stable").reset_index(drop=True)
    labels = pd.DataFrame({"session_id": ids, "is_anomaly": fraud,
                           "scenario": np.where(fraud, kind, "normal")})
    return events, labels


def build_first_purchase(db: Path, n_users: int, seed: int, numbers: bool = False,
                         ) -> BuiltSet:
    events, labels = first_purchase_frames(n_users, seed=seed, numbers=numbers)
    name = "first_purchase_ids" if numbers else "first_purchase"
    built = _labelled_set(name, db, events, labels,
                          f"{n_users:,} first purchases with a sign-up time (extra column); 5% "
                          "fraud: half buy 1-10 s after signing up, half share a device ring"
                          + ("; a customer number handed out in sign-up order and a zip code "
                             "as extra numbers" if numbers else ""))
    built.sequence_models = False  # one event a session: no order to learn
    return built
