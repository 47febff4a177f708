"""Event ingest: mapping, parsing, sessionizing, idempotence and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError, SchemaError
from core.ingest import ColumnMapping, ingest_events
from core.store import Store


@pytest.fixture()
def store(tmp_path: Path):
    with Store.open(tmp_path / "s.duckdb") as s:
        yield s


def snapshot(store: Store) -> tuple:
    """Everything ingest may change, to prove a rejected ingest changed nothing."""
    con = store.con
    return (
        con.execute("SELECT count(*), coalesce(sum(hash(event_id)), 0) FROM events").fetchall(),
        con.execute("SELECT count(*) FROM sessions").fetchall(),
        con.execute("SELECT count(*) FROM ingests").fetchall(),
    )


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


GOOD = (
    "user_id,ts,event_type,amount,device_id,review\n"
    "u1,2026-01-01T10:00:00,login,,d1,\n"
    "u1,2026-01-01T10:05:00,purchase,19.5,d1,\n"
    "u1,2026-01-01T11:00:00,view,,d1,\n"
    "u2,1767261600,view,,d2,nice\n"
    "u2,1767261660000,review,,d2,\"great, really\"\n"
)


def test_csv_maps_parses_and_sessionizes(store: Store, tmp_path: Path) -> None:
    report = ingest_events(store, write_csv(tmp_path / "e.csv", GOOD))
    assert report.n_added == 5 and report.n_rejected == 0
    rows = store.con.execute(
        "SELECT user_id, session_id, ts, amount, extra FROM events ORDER BY user_id, ts"
    ).fetchall()
    # u1's 55-minute gap splits two sessions; ids name the user and the first event time.
    assert [r[1] for r in rows[:3]] == ["u1@2026-01-01T10:00:00"] * 2 + ["u1@2026-01-01T11:00:00"]
    # epoch seconds and milliseconds land on the same clock (2026-01-01 10:00 UTC).
    assert str(rows[3][2]) == "2026-01-01 10:00:00" and str(rows[4][2]) == "2026-01-01 10:01:00"
    assert rows[1][3] == 19.5
    assert json.loads(rows[4][4]) == {"review": "great, really"}
    assert store.summary.count_sessions() == 3


def test_reingest_is_idempotent(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", GOOD)
    ingest_events(store, path)
    before = snapshot(store)[:2]
    again = ingest_events(store, path)
    assert again.n_added == 0 and again.n_duplicates == 5
    assert snapshot(store)[:2] == before


def test_timezone_aware_strings_become_utc(store: Store) -> None:
    frame = pd.DataFrame({"user_id": ["u"], "ts": ["2026-03-01T12:00:00+02:00"],
                          "event_type": ["view"]})
    ingest_events(store, frame)
    assert str(store.con.execute("SELECT ts FROM events").fetchall()[0][0]) == "2026-03-01 10:00:00"


def test_explicit_mapping_and_map_file(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "shop.csv", "cust,when,what\nc1,2026-01-01 00:00:00,login\n")
    with pytest.raises(SchemaError, match=r"column\(s\) user_id, ts not found"):
        ingest_events(store, path)
    mapping_file = tmp_path / "m.json"
    mapping_file.write_text(json.dumps({"user_id": "cust", "ts": "when"}))
    mapping = ColumnMapping.parse(["event_type=what"], mapping_file)
    assert ingest_events(store, path, mapping=mapping).n_added == 1


def test_mapping_to_missing_column_names_the_columns(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", GOOD)
    with pytest.raises(SchemaError, match="does not have.*user_id, ts, event_type"):
        ingest_events(store, path, mapping=ColumnMapping({"user_id": "customer"}))


def test_drop_extra_notes_the_columns(store: Store, tmp_path: Path) -> None:
    report = ingest_events(store, write_csv(tmp_path / "e.csv", GOOD), keep_extra=False)
    assert any("dropped extra column(s) review" in n for n in report.notes)
    assert store.con.execute("SELECT count(extra) FROM events").fetchall()[0][0] == 0


BAD_CASES = {
    "unparseable_ts": ("user_id,ts,event_type\nu1,yesterday,view\n", "line 2: ts yesterday"),
    "wrong_type": ("user_id,ts,event_type,amount\nu1,2026-01-01,view,ten\n", "amount ten is not"),
    "empty_required": ("user_id,ts,event_type\n,2026-01-01,view\n", "user_id is empty"),
    "header_only": ("user_id,ts,event_type\n", "no data rows"),
    "ragged": ("user_id,ts,event_type\nu1,2026-01-01,view\nu2,2026-01-01,view,extra\n",
               "could not be parsed as CSV"),
    "missing_column": ("user_id,event_type\nu1,view\n", "required column"),
    "long_text": ("user_id,ts,event_type,text\nu1,2026-01-01,review," + "x" * 20_001 + "\n",
                  "text is 20001 characters long"),
    "fractional_quantity": ("user_id,ts,event_type,quantity\nu1,2026-01-01,view,1.5\n",
                            "quantity 1.5 is not a whole number"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_rejected_whole(store: Store, tmp_path: Path, case: str) -> None:
    good = write_csv(tmp_path / "good.csv", GOOD)
    ingest_events(store, good)
    before = snapshot(store)
    text, expected = BAD_CASES[case]
    bad = write_csv(tmp_path / f"{case}.csv", text)
    with pytest.raises(IngestError, match=expected) as info:
        ingest_events(store, [write_csv(tmp_path / "more.csv", GOOD.replace("u1", "u9")), bad])
    assert str(bad) in str(info.value) or "more.csv" not in str(info.value)
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("latin.csv", "user_id,ts,event_type\nAndré,2026-01-01,view\n".encode("latin-1"),
         "not valid utf-8"),
        ("broken.parquet", b"PAR1 not really", "could not be read as Parquet"),
        ("events.xlsx", b"xx", "files must be one of"),
    ],
)
def test_unreadable_files(store: Store, tmp_path: Path, name: str, content: bytes,
                          expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError, match=expected):
        ingest_events(store, path)
    assert snapshot(store)[0][0][0] == 0


def test_missing_and_unreadable_paths(store: Store, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        ingest_events(store, tmp_path / "nope.csv")
    with pytest.raises(IngestError, match="is not a file"):
        ingest_events(store, tmp_path)


def test_latin1_with_encoding_option(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("user_id,ts,event_type\nAndré,2026-01-01,view\n".encode("latin-1"))
    ingest_events(store, path, encoding="latin-1")
    assert store.con.execute("SELECT user_id FROM events").fetchall() == [("André",)]


def test_skip_bad_rows_writes_side_file(store: Store, tmp_path: Path) -> None:
    text = "user_id,ts,event_type\nu1,2026-01-01,view\nu2,nope,view\nu3,2026-01-02,view\n"
    report = ingest_events(store, write_csv(tmp_path / "e.csv", text), skip_bad_rows=True,
                           rejected_dir=tmp_path / "rej")
    assert report.n_added == 2 and report.n_rejected == 1
    rejected = pd.read_csv(report.rejected_files[0])
    assert rejected["source_row"].tolist() == [3]
    assert rejected["user_id"].tolist() == ["u2"]
    assert "ts nope is not a timestamp" in rejected["reason"][0]


def test_exact_duplicates_are_dropped_and_conflicts_rejected(store: Store) -> None:
    base = {"user_id": ["u", "u", "u"], "ts": ["2026-01-01"] * 3}
    dup = pd.DataFrame({"event_id": ["a", "a", "b"], "event_type": ["v", "v", "x"], **base})
    report = ingest_events(store, dup)
    assert report.n_added == 2 and report.n_duplicates == 1
    clash = pd.DataFrame({"event_id": ["c", "c"], "event_type": ["v", "w"], **base_two()})
    with pytest.raises(IngestError, match="event_id 'c' appears with different contents"):
        ingest_events(store, clash)
    assert store.summary.count_events() == 2


def base_two() -> dict:
    return {"user_id": ["u", "u"], "ts": ["2026-01-01", "2026-01-01"]}


def test_session_shared_by_two_users_is_rejected(store: Store) -> None:
    frame = pd.DataFrame({"user_id": ["a", "b"], "session_id": ["s1", "s1"],
                          "ts": ["2026-01-01", "2026-01-01"], "event_type": ["v", "v"]})
    with pytest.raises(IngestError, match="belongs to several users"):
        ingest_events(store, frame)
    assert store.summary.count_events() == 0 and store.summary.count_sessions() == 0


def test_sessions_merge_across_ingests(store: Store) -> None:
    first = pd.DataFrame({"user_id": ["a"], "session_id": ["s1"], "ts": ["2026-01-01 10:00"],
                          "event_type": ["v"]})
    second = first.assign(ts=["2026-01-01 10:20"], event_type=["buy"])
    ingest_events(store, first)
    ingest_events(store, second)
    row = store.con.execute("SELECT n_events, start_ts, end_ts FROM sessions").fetchall()[0]
    assert row[0] == 2 and str(row[1]) == "2026-01-01 10:00:00" and str(row[2]).endswith("10:20:00")


def test_parquet_and_dataframe_sources(store: Store, tmp_path: Path) -> None:
    frame = pd.DataFrame({"user_id": ["a", "b"], "ts": pd.to_datetime(["2026-01-01", "2026-01-02"]),
                          "event_type": ["v", "v"], "amount": [1.0, float("nan")]})
    frame.to_parquet(tmp_path / "e.parquet")
    assert ingest_events(store, tmp_path / "e.parquet").n_added == 2
    # NaN is a missing amount, not a bad one; the same rows from a DataFrame are duplicates.
    assert store.con.execute("SELECT count(amount) FROM events").fetchall()[0][0] == 1
    assert ingest_events(store, frame).n_added == 0


def test_order_only_data_uses_sequence_index(store: Store) -> None:
    frame = pd.DataFrame({"user_id": ["a"] * 3, "ts": [1, 2, 3], "event_type": ["x", "y", "z"]})
    ingest_events(store, frame)
    got = store.con.execute("SELECT event_type FROM events ORDER BY ts").fetchall()
    assert [g[0] for g in got] == ["x", "y", "z"]
