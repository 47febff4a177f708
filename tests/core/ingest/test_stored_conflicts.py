"""An event_id already stored with other contents is an error, never "already present"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import IngestError
from core.ingest import ingest_events
from core.store import Store

FIRST = "event_id,user_id,ts,event_type\ne1,u1,2026-01-01T10:00:00,login\n" \
        "e2,u1,2026-01-01T10:01:00,view\n"
CHANGED = "event_id,user_id,ts,event_type\ne1,u1,2026-01-01T10:00:00,login\n" \
          "e2,u1,2026-01-01T10:01:00,purchase\ne3,u1,2026-01-01T10:02:00,view\n"


def _stored(store: Store) -> list[tuple[str, str]]:
    return store.con.execute("SELECT event_id, event_type FROM events ORDER BY 1").fetchall()


def test_a_conflicting_event_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(FIRST)
    (tmp_path / "b.csv").write_text(CHANGED)
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        ingest_events(store, tmp_path / "a.csv")
    result = CliRunner().invoke(main, ["ingest", str(tmp_path / "b.csv"), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "1 row(s) conflict with stored events" in result.output
    assert "line 3: event_id e2 is already stored (ingest 1) with different contents" in (
        result.output)
    assert "already present" not in result.output
    with Store.open(db, read_only=True) as store:
        assert _stored(store) == [("e1", "login"), ("e2", "view")]
        assert store.con.execute("SELECT count(*) FROM ingests").fetchall()[0][0] == 1


def test_skip_bad_rows_rejects_the_conflict_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(FIRST)
    (tmp_path / "b.csv").write_text(CHANGED)
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, tmp_path / "a.csv")
        report = ingest_events(store, tmp_path / "b.csv", skip_bad_rows=True)
        assert (report.n_added, report.n_duplicates, report.n_rejected) == (1, 1, 1)
        assert _stored(store) == [("e1", "login"), ("e2", "view"), ("e3", "view")]
    rejected = pd.read_csv(tmp_path / "b.rejected.csv", dtype=str)
    assert rejected[["source_row", "event_id", "event_type"]].values.tolist() == [
        ["3", "e2", "purchase"]]
    assert "already stored (ingest 1) with different contents" in rejected["reason"][0]


def test_identical_events_are_still_plain_duplicates() -> None:
    frame = pd.DataFrame({"event_id": ["e1"], "user_id": ["u"], "ts": ["2026-01-01"],
                          "event_type": ["view"], "amount": [1.5]})
    with Store.open(":memory:") as store:
        ingest_events(store, frame)
        again = ingest_events(store, frame)
        assert (again.n_added, again.n_duplicates, again.n_rejected) == (0, 1, 0)
        with pytest.raises(IngestError, match="conflict with stored events"):
            ingest_events(store, frame.assign(amount=[2.5]))
