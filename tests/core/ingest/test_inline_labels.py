"""Public fraud files as they come: no user column (``--unit event``) and the label beside the
features (``--labels COLUMN``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import IngestError, SchemaError
from core.ingest import ColumnMapping, ingest_events
from core.store import Store

# Card payments as the public card-fraud set ships them: seconds since the first payment,
# anonymised components, the amount and the answer. Rows 2 and 3 share the second and the
# amount and differ only in a component: two payments, not one.
CARDS = (
    "Time,V1,V2,Amount,Class\n"
    "0,-1.36,0.07,149.62,0\n"
    "1,1.19,0.27,2.69,0\n"
    "1,-0.97,-0.19,2.69,1\n"
    "2,1.23,0.14,378.66,0\n"
)


@pytest.fixture()
def cards(tmp_path: Path) -> Path:
    (path := tmp_path / "creditcard.csv").write_text(CARDS)
    return path


def _count(store: Store, table: str) -> int:
    return int(store.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_by_event_a_file_without_users_makes_each_row_its_own_user(
        tmp_path: Path, cards: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, cards, unit="event")
        assert report.n_added == 4  # the two payments of the same second and amount stay two
        rows = store.con.execute("SELECT user_id = event_id, session_id = event_id "
                                 "FROM events").fetchall()
        assert rows == [(True, True)] * 4
        assert any("each row is its own user" in n for n in report.notes)
        again = ingest_events(store, cards, unit="event")
        assert again.n_added == 0 and _count(store, "events") == 4


def test_by_session_a_missing_user_column_names_the_way_out(tmp_path: Path,
                                                            cards: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(SchemaError, match="user_id not found.*--unit event"):
            ingest_events(store, cards)
        assert _count(store, "events") == 0


def test_the_labels_column_becomes_ground_truth_and_never_a_feature(
        tmp_path: Path, cards: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, cards, unit="event", labels_column="Class")
        labels = store.con.execute(
            "SELECT l.is_anomaly, e.extra FROM labels l JOIN events e ON l.entity_id = "
            "e.event_id WHERE l.level = 'event' AND l.source = 'ground_truth' "
            "ORDER BY e.ts, e.extra").fetchall()
        assert sorted(flag for flag, _ in labels) == [False, False, False, True]
        assert all("Class" not in extra and "V1" in extra for _, extra in labels)
        assert any("stored 4 ground-truth event label(s) from column 'Class' (1 anomalous)" in n
                   for n in report.notes)
        again = ingest_events(store, cards, unit="event", labels_column="Class")
        assert again.n_added == 0 and _count(store, "labels") == 4  # replaced, not doubled


def test_a_value_that_is_not_a_label_refuses_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(CARDS + "3,0.1,0.2,5.00,maybe\n4,0.3,0.1,6.00,\n")
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(IngestError, match=r"1 value\(s\) of the labels column 'Class' "
                                              r"are not labels, e\.g\. line 6: 'maybe'.*Nothing"):
            ingest_events(store, path, unit="event", labels_column="Class")
        assert _count(store, "events") == 0 and _count(store, "labels") == 0
        with pytest.raises(IngestError, match="--labels names column 'isFraud'.*Time, V1"):
            ingest_events(store, path, unit="event", labels_column="isFraud")
    (good := tmp_path / "good.csv").write_text(CARDS)
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(IngestError, match="'Class', which is also mapped as event_type"):
            ingest_events(store, good, unit="event", labels_column="Class",
                          mapping=ColumnMapping({"event_type": "Class"}))
        assert _count(store, "events") == 0


def test_an_empty_label_cell_leaves_its_row_unlabelled(tmp_path: Path) -> None:
    path = tmp_path / "partly.csv"
    path.write_text(CARDS + "4,0.3,0.1,6.00,\n")
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, path, unit="event", labels_column="Class")
        assert _count(store, "events") == 5 and _count(store, "labels") == 4


def test_the_cli_takes_the_labels_column(tmp_path: Path, cards: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    result = CliRunner().invoke(main, ["ingest", str(cards), "--db", db, "--unit", "event",
                                       "--labels", "Class"])
    assert result.exit_code == 0, result.output
    assert "stored 4 ground-truth event label(s)" in result.output
    with Store.open(db, read_only=True) as store:
        assert _count(store, "labels") == 4


def test_a_simulators_verdict_columns_never_become_features(tmp_path: Path) -> None:
    """The handbook simulator's file carries TX_FRAUD and TX_FRAUD_SCENARIO: the first is
    stored as the labels, the second (named with 'fraud') is left out of the features."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "TRANSACTION_ID": np.arange(n), "CUSTOMER_ID": rng.integers(0, 30, n),
        "TERMINAL_ID": rng.integers(0, 50, n),
        "TX_DATETIME": pd.Timestamp("2026-04-01") + pd.to_timedelta(np.arange(n) * 600, "s"),
        "TX_AMOUNT": rng.gamma(2.0, 30.0, n).round(2)})
    frame["TX_FRAUD"] = (frame["TX_AMOUNT"] > 150).astype(int)
    frame["TX_FRAUD_SCENARIO"] = frame["TX_FRAUD"]
    frame.to_csv(path := tmp_path / "handbook.csv", index=False)
    db = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    ingested = runner.invoke(main, ["ingest", str(path), "--db", db, "--unit", "event",
                                    "--map", "ts=TX_DATETIME", "--map", "user_id=CUSTOMER_ID",
                                    "--map", "amount=TX_AMOUNT", "--labels", "TX_FRAUD"])
    assert ingested.exit_code == 0, ingested.output
    assert "column 'TX_FRAUD_SCENARIO' looks like labels" in ingested.output
    trained = runner.invoke(main, ["train", "--db", db, "--detector", "zscore"])
    assert trained.exit_code == 0, trained.output
    assert "'TX_FRAUD_SCENARIO' left out: named like labels" in trained.output
    with Store.open(db, read_only=True) as store:
        n_anomalous = store.con.execute(
            "SELECT count(*) FILTER (WHERE is_anomaly) FROM labels").fetchone()[0]
    assert n_anomalous == int(frame["TX_FRAUD"].sum()) > 0


@pytest.mark.parametrize(("header", "expected"), [
    (["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"],
     {"event_id": "TRANSACTION_ID", "ts": "TX_DATETIME", "user_id": "CUSTOMER_ID",
      "merchant_id": "TERMINAL_ID", "amount": "TX_AMOUNT"}),
    (["trans_date_trans_time", "cc_num", "merchant", "amt", "trans_num", "is_fraud"],
     {"ts": "trans_date_trans_time", "user_id": "cc_num", "merchant_id": "merchant",
      "amount": "amt", "event_id": "trans_num"}),
    (["step", "type", "amount", "nameOrig", "nameDest", "isFraud"],
     {"event_type": "type", "amount": "amount", "user_id": "nameOrig",
      "merchant_id": "nameDest"}),
    (["user_id", "signup_time", "purchase_time", "purchase_value", "device_id", "class"],
     {"user_id": "user_id", "ts": "purchase_time", "amount": "purchase_value",
      "device_id": "device_id"}),
])
def test_public_fraud_headers_map_without_a_map(header: list[str],
                                                expected: dict[str, str]) -> None:
    from core.ingest import suggest_mapping

    assert suggest_mapping(header) == expected
