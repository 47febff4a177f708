"""History features by default where sessions are single events (core.pipeline.history_default)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ingest import ingest_events
from core.pipeline import score_model, train_model
from core.store import Store

T0 = pd.Timestamp("2026-03-02")


def _payments(events_per_session: int, n_sessions: int = 240, seed: int = 0) -> pd.DataFrame:
    """Customers paying at merchants over 30 days; each session holds ``events_per_session``."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        start = T0 + pd.Timedelta(minutes=int(rng.integers(0, 30 * 24 * 60)))
        user, merchant = f"c{rng.integers(30)}", f"m{rng.integers(12)}"
        for k in range(events_per_session):
            rows.append({"event_id": f"e{s}_{k}", "user_id": user, "session_id": f"s{s}",
                         "ts": start + pd.Timedelta(seconds=20 * k), "event_type": "payment",
                         "amount": float(rng.gamma(2.0, 30.0)), "merchant_id": merchant})
    return pd.DataFrame(rows)


def _model_row(store: Store, model_id: str) -> tuple[dict, dict]:
    config, spec = store.con.execute(
        "SELECT config, feature_spec FROM models WHERE model_id = ?", [model_id]).fetchone()
    return json.loads(config), json.loads(spec)


@pytest.fixture(scope="module")
def payments_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history_default") / "pay.duckdb"
    with Store.open(path) as store:
        ingest_events(store, _payments(1))
    return path


def test_session_shape(tmp_path: Path, payments_store: Path) -> None:
    with Store.open(payments_store) as store:
        shape = store.summary.session_shape()
        assert shape.single_event_share == 1.0
        assert shape.repeat_share == pytest.approx((240 - 30) / 240)
        assert shape.entity_columns == ("merchant_id",)
    with Store.open(tmp_path / "empty.duckdb") as store:
        assert store.summary.session_shape() == (0.0, 0.0, ())
    with Store.open(tmp_path / "pairs.duckdb") as store:
        ingest_events(store, _payments(2, n_sessions=40))
        assert store.summary.session_shape().single_event_share == 0.0


def test_independent_rows_get_no_history(tmp_path: Path) -> None:
    """One session per user and no entity column: no past to read, so history stays off."""
    rows = _payments(1, n_sessions=120).drop(columns=["merchant_id"])
    rows["user_id"] = rows["session_id"]
    with Store.open(tmp_path / "rows.duckdb") as store:
        ingest_events(store, rows)
        result = train_model(store, "zscore", quiet=True, models_dir=tmp_path / "m")
        config, spec = _model_row(store, result.model_id)
        assert config["history_features"] is False
        assert "history" not in spec["features"]


def test_one_event_sessions_get_history_and_the_choice_is_saved(payments_store: Path,
                                                                tmp_path: Path) -> None:
    with Store.open(payments_store) as store:
        result = train_model(store, "zscore", quiet=True, models_dir=tmp_path / "m")
        config, spec = _model_row(store, result.model_id)
        assert config["history_features"] is True
        history = spec["features"]["history"]
        assert "merchant_id" in history["entity_columns"]
        assert any("history" in note and "--no-history" in note for note in result.notes)
        from core.app.model_catalog import describe

        assert describe(store, result.model_id)["history_features"].startswith("on: ")
        assert score_model(store, result.model_id).n_sessions == 240


def test_an_explicit_choice_wins(payments_store: Path, tmp_path: Path) -> None:
    with Store.open(payments_store) as store:
        result = train_model(store, "zscore", quiet=True, models_dir=tmp_path / "m",
                             config={"history_features": False})
        config, spec = _model_row(store, result.model_id)
        assert config["history_features"] is False
        assert "history" not in spec["features"]
        assert not any("--no-history" in note for note in result.notes)


def test_many_event_sessions_keep_history_off(tmp_path: Path) -> None:
    with Store.open(tmp_path / "multi.duckdb") as store:
        ingest_events(store, _payments(3, n_sessions=120))
        result = train_model(store, "zscore", quiet=True, models_dir=tmp_path / "m")
        config, spec = _model_row(store, result.model_id)
        assert config["history_features"] is False
        assert "history" not in spec["features"]
