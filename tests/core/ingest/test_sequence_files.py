"""Files with one row per session and its events in one cell (``ingest --sequence``), and
extra columns that are the labels in another form (``ingest --labels``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import IngestError
from core.ingest import ColumnMapping, ingest_events
from core.ingest.inline_labels import MIN_PER_CLASS
from core.store import Store

# Shaped like loghub's HDFS traces: a block, its label, the anomaly's type (filled in for
# failed blocks only), the block's log templates in order, and its latency. Made up here.
TRACES = (
    "BlockId,Label,Type,Features,Latency\n"
    'blk_1,Success,,"[E5,E22,E5,E11,E9]",3804\n'
    'blk_2,Fail,21,"[E5,E7,E5]",3800\n'
    'blk_3,Success,,"[]",0\n'
    "blk_4,Success,,E5 E22 E9,12\n"
)


@pytest.fixture()
def traces(tmp_path: Path) -> Path:
    (path := tmp_path / "Event_traces.csv").write_text(TRACES)
    return path


def _events(store: Store) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in store.con.execute(
        "SELECT session_id, user_id, event_type FROM events ORDER BY ts").fetchall()]


def test_each_row_is_a_session_of_its_events_in_order(tmp_path: Path, traces: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, traces, sequence_column="Features")
        assert report.n_added == 11
        assert _events(store) == [
            ("blk_1", "blk_1", t) for t in ("E5", "E22", "E5", "E11", "E9")] + [
            ("blk_2", "blk_2", t) for t in ("E5", "E7", "E5")] + [
            ("blk_4", "blk_4", t) for t in ("E5", "E22", "E9")]
        assert store.con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 3
        assert any("1 row(s) have an empty sequence" in n for n in report.notes)
        assert any("times are made up" in n for n in report.notes)
        # the made-up clock spans less than a day, so calendar features are held out
        low, high = store.con.execute("SELECT min(ts), max(ts) FROM events").fetchone()
        assert high - low < dt.timedelta(days=1)
        extra = store.con.execute("SELECT extra FROM events LIMIT 1").fetchone()[0]
        assert "Latency" in extra and "Features" not in extra
        again = ingest_events(store, traces, sequence_column="Features")
        assert again.n_added == 0  # the same file again: every event already stored


@pytest.mark.parametrize("cell", ["[E5,E22]", "E5 E22", "['E5', 'E22']", '["E5","E22"]',
                                  "E5;E22", "(E5|E22)"])
def test_the_usual_ways_of_writing_a_sequence_read_the_same(tmp_path: Path, cell: str) -> None:
    frame = pd.DataFrame({"session": ["s1"], "events": [cell]})
    with Store.open(":memory:") as store:
        ingest_events(store, frame, sequence_column="events")
        assert [t for *_, t in _events(store)] == ["E5", "E22"]


def test_without_a_session_column_rows_are_numbered_and_users_kept(tmp_path: Path) -> None:
    frame = pd.DataFrame({"customer": ["a", "a", "b"], "trace": ["1 2", "3", "4 4"]})
    with Store.open(":memory:") as store:
        ingest_events(store, frame, sequence_column="trace")
        assert _events(store) == [("seq-0-1", "a", "1"), ("seq-0-1", "a", "2"),
                                  ("seq-0-2", "a", "3"), ("seq-0-3", "b", "4"),
                                  ("seq-0-3", "b", "4")]


def test_labels_are_the_sessions_one_each(tmp_path: Path, traces: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, traces, sequence_column="Features",
                               labels_column="Label")
        labelled = store.con.execute(
            "SELECT level, entity_id, is_anomaly FROM labels ORDER BY entity_id").fetchall()
        assert labelled == [("session", "blk_1", False), ("session", "blk_2", True),
                            ("session", "blk_4", False)]
        assert any("stored 3 ground-truth session label(s)" in n for n in report.notes)
        ingest_events(store, traces, sequence_column="Features", labels_column="Label")
        assert store.con.execute("SELECT count(*) FROM labels").fetchone()[0] == 3


def test_a_session_in_two_rows_is_anomalous_when_either_row_says_so() -> None:
    frame = pd.DataFrame({"session": ["s1", "s1", "s2"], "trace": ["A B", "C", "A"],
                          "verdict": ["normal", "anomaly", "normal"]})
    with Store.open(":memory:") as store:
        ingest_events(store, frame, sequence_column="trace", labels_column="verdict")
        assert store.con.execute("SELECT entity_id, is_anomaly FROM labels ORDER BY 1"
                                 ).fetchall() == [("s1", True), ("s2", False)]


def _leaky(n_normal: int, n_anomalous: int) -> pd.DataFrame:
    n = n_normal + n_anomalous
    return pd.DataFrame({
        "session": [f"s{i}" for i in range(n)], "trace": ["E1 E2"] * n,
        "verdict": ["Success"] * n_normal + ["Fail"] * n_anomalous,
        "reason": [None] * n_normal + ["timeout"] * n_anomalous,  # the answer, reworded
        "latency": [float(i) for i in range(n_normal)] + [1e6 + i for i in range(n_anomalous)],
        "noise": [float(i % 3) for i in range(n)]})


def test_a_column_filled_in_for_one_class_only_is_not_kept() -> None:
    with Store.open(":memory:") as store:
        report = ingest_events(store, _leaky(20, MIN_PER_CLASS), sequence_column="trace",
                               labels_column="verdict")
        extras = {r[0] for r in store.con.execute("SELECT extra FROM events").fetchall()}
        assert all("reason" not in e and "latency" in e and "noise" in e for e in extras)
        notes = " ".join(report.notes)
        assert "column 'reason' is filled in on exactly the rows labelled anomalous" in notes
        # a numeric column that splits the classes is kept, with a warning
        assert "column 'latency' alone splits the labels" in notes
        assert "'noise'" not in notes.replace("kept extra column(s) latency, noise", "")


def test_too_few_labels_of_a_class_say_nothing_about_a_column() -> None:
    with Store.open(":memory:") as store:
        # counted by source row: each session's two events do not make it two
        report = ingest_events(store, _leaky(20, MIN_PER_CLASS - 1), sequence_column="trace",
                               labels_column="verdict")
        assert not any("answer in another form" in n for n in report.notes)
        extra = store.con.execute("SELECT extra FROM events LIMIT 1").fetchone()[0]
        assert "reason" in extra


def test_a_parquet_file_of_sequences(tmp_path: Path) -> None:
    path = tmp_path / "traces.parquet"
    pd.DataFrame({"BlockId": ["b1", "b2"], "Features": ["[E1,E2]", "[E3]"]}).to_parquet(path)
    with Store.open(tmp_path / "s.duckdb") as store:
        assert ingest_events(store, path, sequence_column="Features").n_added == 3
        assert [s for s, *_ in _events(store)] == ["b1", "b1", "b2"]


def test_a_bad_row_is_named_by_its_line_and_event(tmp_path: Path) -> None:
    (path := tmp_path / "t.csv").write_text(
        'session,amount,trace\ns1,1.5,"[A,B]"\ns2,lots,"[A,B,C]"\n')
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(IngestError, match=r"line 3, event 1 of its sequence"):
            ingest_events(store, path, sequence_column="trace")
        assert store.con.execute("SELECT count(*) FROM events").fetchone()[0] == 0


@pytest.mark.parametrize(("frame", "options", "message"), [
    (pd.DataFrame({"s": ["a"], "trace": ["E1"]}), {"sequence_column": "Features"},
     "names column 'Features', which the file does not have"),
    (pd.DataFrame({"s": ["a"], "when": [1], "trace": ["E1"]}),
     {"sequence_column": "trace", "mapping": ColumnMapping({"ts": "when"})},
     "come from the sequence, so --map ts"),
    (pd.DataFrame({"s": ["a"], "Event_Type": ["x"], "trace": ["E1"]}),
     {"sequence_column": "trace"}, "has a column 'Event_Type'"),
    (pd.DataFrame({"s": ["a", "b"], "trace": ["[]", ""]}), {"sequence_column": "trace"},
     "holds no event in any row"),
    (pd.DataFrame({"s": ["a"], "trace": ["E1"]}), {"sequence_column": "trace", "unit": "event"},
     "Pick one"),
])
def test_what_cannot_be_read_as_sequences_is_refused(frame: pd.DataFrame, options: dict,
                                                     message: str) -> None:
    with Store.open(":memory:") as store:
        with pytest.raises(IngestError, match=message):
            ingest_events(store, frame, **options)
        assert store.con.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_the_cli_takes_a_trace_file_with_its_labels(tmp_path: Path, traces: Path) -> None:
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(main, ["ingest", str(traces), "--db", str(db), "--sequence",
                                       "Features", "--labels", "Label"])
    assert result.exit_code == 0, result.output
    assert "added 11 events" in result.output
    with Store.open(db) as store:
        assert store.con.execute(
            "SELECT count(*) FROM labels WHERE is_anomaly").fetchone()[0] == 1
