"""The payments set: one-event sessions whose frauds mostly live in the entity history."""

from __future__ import annotations

from pathlib import Path

from benchmarks.detection_payments import build_payments, payments_frames
from core.store import Store


def test_payments_are_one_event_sessions_with_every_fraud_scenario() -> None:
    events, labels = payments_frames(customers=150, terminals=300, days=40, seed=1)
    assert events["session_id"].is_unique and (events["session_id"] == events["event_id"]).all()
    assert set(labels["scenario"]) == {"normal", "amount", "terminal", "customer"}
    assert labels["is_anomaly"].eq(labels["scenario"] != "normal").all()
    big = events["amount"].to_numpy() > 220
    assert (labels["scenario"].to_numpy()[big] != "normal").all()  # every big amount is fraud
    assert events["ts"].is_monotonic_increasing


def test_the_built_set_turns_history_on_by_default(tmp_path: Path) -> None:
    from core.pipeline.history_default import history_by_default

    built = build_payments(tmp_path / "p.duckdb", seed=2)
    assert not built.sequence_models
    with Store.open(built.db) as store:
        shape = store.summary.session_shape()
    assert shape.single_event_share == 1.0 and "merchant_id" in shape.entity_columns
    assert history_by_default(shape)


def test_the_unlabelled_twin_keeps_its_labels_out_of_the_store(tmp_path: Path) -> None:
    from benchmarks.detection_payments import build_payments_unlabelled

    built = build_payments_unlabelled(tmp_path / "u.duckdb", seed=2)
    assert not built.labels_in_store and built.truth["is_anomaly"].any()
    with Store.open(built.db) as store:
        assert store.summary.label_counts().empty
        assert store.summary.count_sessions() == len(built.truth)
