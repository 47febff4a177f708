"""A numeric time column in a unit its magnitude cannot tell (``ingest --ts-unit``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import IngestError
from core.ingest import ColumnMapping, ingest_events
from core.store import Store

# Mobile-money payments as the public simulation ships them: the step is an hour.
MOBILE = (
    "step,type,amount,nameOrig,nameDest,isFraud\n"
    "1,PAYMENT,9839.64,C1231006815,M1979787155,0\n"
    "1,TRANSFER,181.0,C1305486145,C553264065,1\n"
    "2,CASH_OUT,181.0,C840083671,C38997010,1\n"
    "26,PAYMENT,11668.14,C2048537720,M1230701703,0\n"
)
MAPPING = ColumnMapping({"ts": "step", "user_id": "nameOrig", "merchant_id": "nameDest",
                         "event_type": "type"})


def _times(store: Store) -> list[dt.datetime]:
    return [r[0] for r in store.con.execute("SELECT ts FROM events ORDER BY ts").fetchall()]


def test_steps_in_hours_become_hours(tmp_path: Path) -> None:
    (path := tmp_path / "mobile.csv").write_text(MOBILE)
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, path, mapping=MAPPING, unit="event", ts_unit="h",
                      labels_column="isFraud")
        epoch = dt.datetime(1970, 1, 1)
        assert _times(store) == [epoch + dt.timedelta(hours=h) for h in (1, 1, 2, 26)]
        assert store.con.execute("SELECT count(*) FILTER (WHERE is_anomaly) FROM labels"
                                 ).fetchone()[0] == 2


def test_by_default_small_numbers_are_seconds(tmp_path: Path) -> None:
    (path := tmp_path / "mobile.csv").write_text(MOBILE)
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, path, mapping=MAPPING, unit="event")
        assert _times(store)[-1] == dt.datetime(1970, 1, 1, 0, 0, 26)


def test_an_unknown_unit_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    (path := tmp_path / "mobile.csv").write_text(MOBILE)
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(IngestError, match="ts unit must be one of s, ms, us, ns, min, h, d"):
            ingest_events(store, path, mapping=MAPPING, unit="event", ts_unit="weeks")
        assert store.con.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_the_cli_takes_the_unit(tmp_path: Path) -> None:
    (path := tmp_path / "mobile.csv").write_text(MOBILE)
    db = str(tmp_path / "s.duckdb")
    result = CliRunner().invoke(main, [
        "ingest", str(path), "--db", db, "--unit", "event", "--ts-unit", "h",
        "--map", "ts=step", "--map", "user_id=nameOrig", "--labels", "isFraud"])
    assert result.exit_code == 0, result.output
    with Store.open(db, read_only=True) as store:
        assert _times(store)[-1] == dt.datetime(1970, 1, 2, 2)


def test_a_file_with_a_step_and_no_time_is_told_how_to_map_it(tmp_path: Path) -> None:
    from core.errors import SchemaError

    (path := tmp_path / "mobile.csv").write_text(MOBILE)
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(SchemaError, match="'step' counts a simulation's hours, pass "
                                              "--map ts=step --ts-unit h"):
            ingest_events(store, path, unit="event")


# Shaped like loghub's HDFS event-count matrix: one row per block, no time at all.
COUNTS = (
    "BlockId,Label,E1,E2,E3\n"
    "blk_1,Success,3,1,0\n"
    "blk_2,Fail,0,4,9\n"
    "blk_3,Success,3,1,0\n"
)


def test_by_event_a_file_with_no_time_takes_its_row_order(tmp_path: Path) -> None:
    (path := tmp_path / "Event_occurrence_matrix.csv").write_text(COUNTS)
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, path, unit="event", labels_column="Label")
        assert report.n_added == 3  # blk_1 and blk_3 hold the same counts: still two rows
        rows = store.con.execute("SELECT ts, extra FROM events ORDER BY ts").fetchall()
        assert ['"E3":"9"' in extra for _, extra in rows] == [False, True, False]
        assert rows[-1][0] - rows[0][0] < dt.timedelta(days=1)  # calendar columns held out
        assert any("the rows' order stands for time" in n for n in report.notes)
        again = ingest_events(store, path, unit="event", labels_column="Label")
        assert again.n_added == 0  # the same file again adds nothing


def test_by_session_a_file_with_no_time_is_told_the_ways_out(tmp_path: Path) -> None:
    (path := tmp_path / "counts.csv").write_text(COUNTS.replace("BlockId", "user_id"))
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(IngestError, match=r"ts not found.*--unit event.*--sequence"):
            ingest_events(store, path)
