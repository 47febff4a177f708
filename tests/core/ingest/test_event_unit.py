"""The scoring unit chosen at ingest: sessions, or each event on its own (payment data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import ingest_events
from core.store import Store

PAYMENTS = (
    "user_id,ts,event_type,amount,merchant,session_id\n"
    "c1,2026-01-01T10:00:00,payment_attempt,19.5,t1,day1\n"
    "c1,2026-01-01T10:05:00,payment_attempt,7.0,t2,day1\n"
    "c2,2026-01-01T11:00:00,payment_attempt,120.0,t1,day2\n"
)


@pytest.fixture()
def payments(tmp_path: Path) -> Path:
    path = tmp_path / "payments.csv"
    path.write_text(PAYMENTS)
    return path


def _sessions(store: Store) -> list[tuple]:
    return store.con.execute(
        "SELECT s.session_id = e.event_id, s.n_events FROM sessions s "
        "JOIN events e USING (session_id) ORDER BY e.ts").fetchall()


def test_by_event_every_payment_is_its_own_session(tmp_path: Path, payments: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, payments, unit="event")
        assert report.n_added == 3
        assert _sessions(store) == [(True, 1)] * 3  # the file's session column is ignored
        assert store.ingests.unit() == "event"
        again = ingest_events(store, payments, unit="event")  # idempotent, as by session
        assert again.n_added == 0 and store.con.execute(
            "SELECT count(*) FROM sessions").fetchone()[0] == 3


def test_by_session_keeps_the_sessions_and_records_the_unit(tmp_path: Path,
                                                            payments: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, payments)
        assert store.con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2
        assert store.ingests.unit() == "session"


def test_a_store_keeps_one_unit_and_says_how_to_go_on(tmp_path: Path, payments: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, payments, unit="event")
        before = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
        with pytest.raises(IngestError, match="scores by event, got --unit session.*new store"):
            ingest_events(store, payments, unit="session")
        assert store.con.execute("SELECT count(*) FROM events").fetchone()[0] == before
        with pytest.raises(IngestError, match="unit must be one of session, event"):
            ingest_events(store, payments, unit="payment")


def test_a_store_ingested_before_units_were_recorded_is_by_session(tmp_path: Path,
                                                                    payments: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, payments)
        store.con.execute("DELETE FROM schema_meta WHERE key = 'scoring_unit'")
        with pytest.raises(IngestError, match="scores by session"):
            ingest_events(store, payments, unit="event")


def test_the_cli_takes_the_unit(tmp_path: Path, payments: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    db = tmp_path / "c.duckdb"
    result = CliRunner().invoke(main, ["ingest", str(payments), "--db", str(db),
                                       "--unit", "event"])
    assert result.exit_code == 0, result.output
    with Store.open(db, read_only=True) as store:
        assert store.ingests.unit() == "event"
        assert store.con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 3


def test_info_says_the_store_scores_by_event(tmp_path: Path, payments: Path) -> None:
    from cli.data import format_info

    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, payments, unit="event")
        info = store.info()
    assert info["unit"] == "event"
    assert "scored by event" in format_info(info)


def test_training_scoring_and_evaluation_run_per_payment(tmp_path: Path) -> None:
    """The whole pipeline works on events as its unit, unchanged: one score per payment."""
    import numpy as np
    import pandas as pd

    from core.ingest.labels import ingest_labels
    from core.pipeline import evaluate_models, score_model, train_model

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({
        "event_id": [f"tx{i}" for i in range(n)],
        "user_id": [f"c{i % 30}" for i in range(n)],
        "ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 20, n)), "D"),
        "event_type": "payment_attempt",
        "amount": rng.lognormal(3, 0.5, n).round(2),
        "merchant": [f"t{i}" for i in rng.integers(0, 12, n)],
    })
    fraud = rng.random(n) < 0.05
    frame.loc[fraud, "amount"] *= 20
    labels = pd.DataFrame({"event_id": frame["event_id"], "is_anomaly": fraud.astype(int)})
    label_file = tmp_path / "labels.csv"
    labels.to_csv(label_file, index=False)
    with Store.open(tmp_path / "p.duckdb") as store:
        ingest_events(store, frame, unit="event")
        ingest_labels(store, str(label_file))
        trained = train_model(store, "zscore", quiet=True)
        score_model(store, trained.model_id)
        assert store.scores.count(trained.model_id) == n  # one score per payment
        [row] = evaluate_models(store, model_ids=[trained.model_id])
    assert 0 < row["n_sessions"] < n  # payments after the model's train end
    assert row["roc_auc"] > 0.8  # twenty-fold amounts stand out payment by payment


def test_a_file_without_event_types_is_read_as_events(tmp_path: Path) -> None:
    """Payments and ordered logs often have no event-type column: every row is 'event', and
    the report says so; a mapped but empty event type is still a bad row."""
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount,terminal_id\n"
                    "c1,2026-01-01T10:00:00,12.5,t1\nc2,2026-01-01T11:00:00,99.0,t2\n")
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, path, unit="event")
        assert report.n_added == 2
        assert "no event_type column; every row's event_type is 'event'" in report.summary()
        assert store.con.execute("SELECT DISTINCT event_type, count(DISTINCT merchant_id) "
                                 "FROM events GROUP BY 1").fetchall() == [("event", 2)]
    empty = tmp_path / "empty_type.csv"
    empty.write_text("user_id,ts,event_type\nu1,2026-01-01,\n")
    with Store.open(tmp_path / "t.duckdb") as store, pytest.raises(IngestError,
                                                                   match="event_type is empty"):
        ingest_events(store, empty)
