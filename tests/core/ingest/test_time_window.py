"""Far-future and far-past timestamps: refused at ingest, survived when already stored."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import ConfigError, IngestError
from core.ingest import ingest_events
from core.ingest.time_window import TimeWindow
from core.store import Store

HOSTILE = (
    "user_id,ts,event_type\n"
    "u1,2026-01-01T10:00:00,login\n"
    "u2,9999-01-01T10:00:00,login\n"
    "u3,0001-01-01T00:00:00,login\n"
    "u4,100000000000000000000,login\n"
    "u5,294247-01-01T00:00:00,login\n"
)


def test_far_timestamps_are_refused_naming_file_line_and_value(tmp_path: Path) -> None:
    source = tmp_path / "far.csv"
    source.write_text(HOSTILE)
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(main, ["ingest", str(source), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "far.csv: 4 row(s) are invalid" in result.output
    assert "line 3: ts 9999-01-01T10:00:00" in result.output
    # epoch 1e20 is named with how it was read, so the cause is plain
    assert "ts 100000000000000000000 (read as 5138-11-16" in result.output
    assert "outside the plausible time window 1970-01-01 .. 2100-01-01" in result.output
    assert "Traceback" not in result.output
    with Store.open(db, read_only=True) as store:
        assert store.summary.count_events() == 0


def test_skip_bad_rows_puts_far_timestamps_in_the_rejected_file(tmp_path: Path) -> None:
    source = tmp_path / "far.csv"
    source.write_text(HOSTILE)
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, source, skip_bad_rows=True)
        assert (report.n_added, report.n_rejected) == (1, 4)
    rejected = pd.read_csv(tmp_path / "far.rejected.csv", dtype=str)
    assert rejected["source_row"].tolist() == ["3", "4", "5", "6"]
    assert rejected["reason"].str.contains("outside the plausible time window").all()


def test_the_window_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"user_id": ["a", "b"], "event_type": ["view"] * 2,
                          "ts": ["1965-06-01T00:00:00", "2026-01-01T00:00:00"]})
    with Store.open(":memory:") as store:
        with pytest.raises(IngestError, match="1965-06-01"):
            ingest_events(store, frame)
        wide = TimeWindow.parse("1960-01-01", None)
        assert ingest_events(store, frame, time_window=wide).n_added == 2
    monkeypatch.setenv("ANOMALYST_MAX_TS", "2025-01-01")
    with Store.open(":memory:") as store, pytest.raises(IngestError, match="2026-01-01"):
        ingest_events(store, frame, time_window=TimeWindow.parse("1960-01-01"))
    assert TimeWindow.parse(max_ts="now").max_ts > dt.datetime.now(dt.UTC).replace(tzinfo=None)


def test_a_bad_window_option_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--max-ts must be an ISO date"):
        TimeWindow.parse(None, "next tuesday")
    with pytest.raises(ConfigError, match="--min-ts must be before --max-ts"):
        TimeWindow.parse("2030-01-01", "2020-01-01")
    source = tmp_path / "e.csv"
    source.write_text("user_id,ts,event_type\nu1,1765000000,view\n")
    result = CliRunner().invoke(main, ["ingest", str(source), "--db", str(tmp_path / "s.duckdb"),
                                       "--min-ts", "2026-01-01"])
    assert result.exit_code == 2 and "outside the plausible time window 2026-01-01" in (
        result.output)
