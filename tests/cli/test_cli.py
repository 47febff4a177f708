"""The command line: ingest, labels, info, migrate; clean errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.data import format_info
from cli.main import main
from cli.options import parse_minutes


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    events = tmp_path / "events.csv"
    events.write_text(
        "customer,purchase_time,action,price\n"
        "c1,2026-01-01 10:00:00,login,\n"
        "c1,2026-01-01 10:40:00,purchase,12.5\n"
        "c2,2026-01-02 09:00:00,view,\n"
    )
    labels = tmp_path / "labels.csv"
    labels.write_text("user_id,is_anomaly,scenario\nc1,1,account_takeover\nc2,0,normal\n")
    return {"events": events, "labels": labels, "db": tmp_path / "store.duckdb"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_ingest_with_maps_labels_and_info(files: dict[str, Path]) -> None:
    db = str(files["db"])
    code, out = run("ingest", str(files["events"]), "--db", db, "--map", "user_id=customer",
                    "--map", "ts=purchase_time", "--session-gap", "30m")
    assert code == 0 and "added 3 events" in out and "3 sessions updated" in out
    code, out = run("ingest", str(files["events"]), "--db", db, "--map", "user_id=customer",
                    "--map", "ts=purchase_time")
    assert code == 0 and "added 0 events, skipped 3 already present" in out
    code, out = run("ingest-labels", str(files["labels"]), "--db", db)
    assert code == 0 and "added 2 labels" in out
    code, out = run("info", "--db", db, "--json")
    summary = json.loads(out)
    assert summary["n_events"] == 3 and summary["n_sessions"] == 3 and summary["n_users"] == 2
    assert {r["scenario"] for r in summary["labels"]} == {"account_takeover", "normal"}
    assert summary["event_types"] == {"login": 1, "purchase": 1, "view": 1}
    code, out = run("info", "--db", db)
    assert code == 0 and "ground_truth" in out and "sessions" in out


def test_bad_file_exits_nonzero_with_one_paragraph(files: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,event_type\nu1,not-a-time,view\n")
    code, out = run("ingest", str(bad), "--db", str(files["db"]))
    assert code == 2
    assert "line 2: ts not-a-time is not a timestamp" in out and "Traceback" not in out


def test_bad_map_argument(files: dict[str, Path]) -> None:
    code, out = run("ingest", str(files["events"]), "--db", str(files["db"]), "--map", "oops")
    assert code == 2 and "canonical=source" in out


def test_map_file_and_skip_bad_rows(files: dict[str, Path], tmp_path: Path) -> None:
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"user_id": "customer", "ts": "purchase_time"}))
    with_bad = tmp_path / "mixed.csv"
    with_bad.write_text(files["events"].read_text() + "c3,garbage,view,\n")
    code, out = run("ingest", str(with_bad), "--db", str(files["db"]), "--map-file", str(mapping),
                    "--skip-bad-rows")
    assert code == 0 and "rejected 1 bad rows" in out
    assert (tmp_path / "mixed.rejected.csv").exists()


def test_migrate_and_info_on_missing_store(tmp_path: Path) -> None:
    code, out = run("info", "--db", str(tmp_path / "none.duckdb"))
    assert code == 2 and "No store at" in out
    code, out = run("migrate", "--db", str(tmp_path / "m.duckdb"))
    assert code == 0 and "schema version" in out


def test_parse_minutes() -> None:
    assert parse_minutes("30m") == 30 and parse_minutes("1h") == 60 and parse_minutes("90s") == 1.5
    assert parse_minutes("45") == 45


def test_format_info_without_models() -> None:
    text = format_info({"path": "x", "schema_version": 2, "n_events": 0, "n_sessions": 0,
                        "n_users": 0, "first_event_at": None, "last_event_at": None,
                        "event_types": {}, "labels": [], "models": []})
    assert "labels: none" in text and "anomalyst train" in text


def test_console_script_is_installed() -> None:
    result = subprocess.run([sys.executable, "-m", "cli", "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and "ingest-labels" in result.stdout


def test_ingest_into_a_busy_store_waits_then_explains(files: dict[str, Path]) -> None:
    """Another process holds the store: a bounded wait, a clear message, nothing written."""
    import textwrap

    db = files["db"]
    run("migrate", "--db", str(db))
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time, duckdb
        con = duckdb.connect({str(db)!r})
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = subprocess.run(
            [sys.executable, "-m", "cli", "ingest", str(files["events"]), "--db", str(db),
             "--map", "user_id=customer", "--map", "ts=purchase_time", "--wait", "1"],
            capture_output=True, text=True, check=False,
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert "in use by another process" in result.stderr and "Traceback" not in result.stderr
    code, out = run("info", "--db", str(db), "--json")
    assert json.loads(out)["n_events"] == 0


def test_any_engine_error_is_one_line_without_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DuckDB or Arrow error no layer mapped still ends in one line and a non-zero exit."""
    import duckdb
    import pyarrow as pa

    from core.store import Store

    db = tmp_path / "s.duckdb"
    Store.open(db).close()
    for error in (duckdb.InvalidInputException("Invalid Input Error: page checksum"),
                  pa.ArrowInvalid("Parquet magic bytes not found")):
        def fail(self, error=error):
            raise error

        monkeypatch.setattr(Store, "info", fail)
        result = CliRunner().invoke(main, ["info", "--db", str(db)])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: the data engine failed:")
        assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
