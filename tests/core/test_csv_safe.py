"""Formula injection: every CSV the product writes neutralises cells a spreadsheet would run."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.csv_safe import csv_text, neutralise_cell, restore_cell, write_csv
from core.ingest import ingest_events
from core.store import Store

HOSTILE = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example/x","click")', "+1+1",
           "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "  =1+1", "'=already quoted"]


@pytest.mark.parametrize("value", HOSTILE)
def test_triggers_get_a_leading_quote_and_come_back(value: str) -> None:
    assert neutralise_cell(value) == "'" + value
    assert restore_cell(neutralise_cell(value)) == value


@pytest.mark.parametrize("value", ["-12.5", "+3", " 42 ", "1e-5", "plain", "a=b", "", None, 7,
                                   -3.5])
def test_numbers_and_plain_text_stay(value: object) -> None:
    assert neutralise_cell(value) == value


def test_frames_keep_numeric_columns_numeric(tmp_path: Path) -> None:
    frame = pd.DataFrame({"=name": HOSTILE[:3], "score": [-1.0, 2.0, -3.0]})
    rows = list(csv.reader(csv_text(frame).splitlines()))
    assert rows[0] == ["'=name", "score"]
    assert [r[1] for r in rows[1:]] == ["-1.0", "2.0", "-3.0"]
    assert all(r[0].startswith("'") for r in rows[1:])
    path = write_csv(frame, tmp_path / "x.csv")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def _assert_no_live_formula(cells: list[str]) -> None:
    for cell in cells:
        assert neutralise_cell(cell) == cell or cell.startswith("'"), cell
        assert not cell or cell.lstrip(" ")[:1] not in "=+@", cell


def test_scores_export_neutralises_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sample_data
    from core.pipeline import score_model, train_model

    monkeypatch.setenv("ANOMALYST_TEXT_FEATURES", "off")
    data = sample_data.generate(sample_data.GeneratorConfig(users=40, days=3, seed=5))
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        ingest_events(store, data.events)
        first = store.sessions.meta().iloc[0]
        for table in ("events", "sessions"):  # hostile ids, as a feed could send them
            store.con.execute(f"UPDATE {table} SET user_id = ? WHERE user_id = ?",
                              [HOSTILE[0], first["user_id"]])
            store.con.execute(f"UPDATE {table} SET session_id = '@x' WHERE session_id = ?",
                              [first["session_id"]])
        score_model(store, train_model(store, "zscore", quiet=True).model_id)
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(main, ["scores", "--out", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, dtype=str)
    assert "'@x" in frame["session_id"].tolist() and "'" + HOSTILE[0] in frame["user_id"].tolist()
    assert pd.to_numeric(frame["score"]).notna().all()  # numbers stay numbers
    _assert_no_live_formula(_cells(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_rejected_rows_file_neutralises_cells_and_headers(tmp_path: Path) -> None:
    source = tmp_path / "e.csv"
    source.write_text(
        'user_id,ts,event_type,"=HYPERLINK(""http://x"")"\n'
        "u1,2026-01-01T10:00:00,view,ok\n"
        "\"=cmd|' /C calc'!A0\",not a time,@SUM(A1),+1+1\n",
        encoding="utf-8")
    with Store.open(tmp_path / "s.duckdb") as store:
        report = ingest_events(store, source, skip_bad_rows=True)
    assert report.n_rejected == 1
    rejected = tmp_path / "e.rejected.csv"
    cells = _cells(rejected)
    assert "'=HYPERLINK(\"http://x\")" in cells
    assert "'=cmd|' /C calc'!A0" in cells and "'@SUM(A1)" in cells and "'+1+1" in cells
    _assert_no_live_formula(cells)
    assert stat.S_IMODE(rejected.stat().st_mode) == 0o600
