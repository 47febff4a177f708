"""The first_purchase set: what each fraud kind plants, and the normal look-alikes."""

from __future__ import annotations

import pandas as pd

from benchmarks.detection_purchases import FRAUD_KINDS, first_purchase_frames


def test_first_purchases_plant_quick_buys_and_device_rings_beside_look_alikes() -> None:
    events, labels = first_purchase_frames(3000, seed=3)
    assert events["session_id"].is_unique and (events["event_type"] == "purchase").all()
    kind = labels.set_index("session_id")["scenario"].reindex(events["session_id"]).to_numpy()
    since = (events["ts"] - pd.to_datetime(events["signup_time"])).dt.total_seconds()
    assert since[kind == "instant_purchase"].between(0, 11).all()
    assert (since[kind == "device_ring"] >= 3_599).all()
    normal = kind == "normal"
    assert 0.005 < (since[normal] < 121).mean() < 0.05  # legitimate quick buyers
    users_on_device = events["device_id"].map(events["device_id"].value_counts())
    assert (users_on_device[kind == "device_ring"] > 1).all()
    assert 0.08 < (users_on_device[normal] > 1).mean() < 0.25  # households
    rings = set(events.loc[kind == "device_ring", "device_id"])
    assert not rings & set(events.loc[normal, "device_id"])
    assert set(labels.loc[labels["is_anomaly"], "scenario"]) == set(FRAUD_KINDS)
    assert 0.03 < labels["is_anomaly"].mean() < 0.07


def test_the_ids_variant_hands_out_customer_numbers_in_sign_up_order() -> None:
    plain, _ = first_purchase_frames(500, seed=4)
    events, labels = first_purchase_frames(500, seed=4, numbers=True)
    assert events.drop(columns=["customer_number", "zip"]).equals(plain)
    by_signup = events.sort_values("signup_time", kind="stable")["customer_number"]
    assert by_signup.is_monotonic_increasing and by_signup.is_unique
    assert events["zip"].between(10_000, 99_999).all()
