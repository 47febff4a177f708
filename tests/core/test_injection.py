"""Hostile strings through every filter of the CLI and the engine: values are bound as
parameters, never formatted into SQL, so nothing runs and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core import lookups
from core.errors import AnomalystError
from core.ingest import ingest_events
from core.store import Store

PAYLOADS = [
    "'; DROP TABLE events; --",
    "x' OR '1'='1",
    '" OR ""="',
    "1; DELETE FROM labels WHERE 1=1",
    "%' UNION SELECT password FROM users --",
    "$model_id",
    "?",
    "\\'; ATTACH 'evil.db' AS e; --",
    "'); COPY events TO '/tmp/stolen.csv'; --",
    "%_%",
]


def fingerprint(db: Path) -> dict[str, int]:
    """Row counts of every table: an injected statement would change at least one."""
    with Store.open(db, read_only=True) as store:
        tables = [t for (t,) in store.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()]
        return {t: int(store.con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0])
                for t in tables}


@pytest.fixture(scope="module")
def hostile_db(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    db = tmp_path_factory.mktemp("inject") / "s.duckdb"
    shutil.copy(demo_store, db)
    return db


@pytest.mark.parametrize("payload", PAYLOADS)
def test_lookups_treat_hostile_text_as_data(hostile_db: Path, payload: str) -> None:
    before = fingerprint(hostile_db)
    with Store.open(hostile_db, read_only=True) as store:
        found = lookups.find_users(store, payload)
        assert all(payload.strip("%_") in u or "%" in payload for u in found) or found == []
        assert lookups.user_events(store, payload).empty
        assert lookups.user_sessions(store, payload).empty
        assert lookups.linked_accounts(store, payload).empty
        assert lookups.sessions_with_event_types(store, [payload]) == []
        table = lookups.score_table(store, [payload])
        assert table.filter(like="score").isna().all().all()  # an unknown model: no scores
    assert fingerprint(hostile_db) == before


def test_wildcards_in_a_search_are_literal(hostile_db: Path) -> None:
    with Store.open(hostile_db, read_only=True) as store:
        assert lookups.find_users(store, "%") == []
        assert lookups.find_users(store, "_") == []


@pytest.mark.parametrize("payload", PAYLOADS[:3])
@pytest.mark.parametrize("command", [
    ["evaluate", "--sessions", "{sessions}"],
    ["score", "--model", "{p}"],
    ["score", "--detector", "{p}"],
    ["train", "--detector", "{p}"],
    ["evaluate", "--labels", "both", "--from", "{p}"],
    ["ingest", "{csv}", "--map", "user_id={p}"],
])
def test_cli_refuses_hostile_values_cleanly(hostile_db: Path, tmp_path: Path, payload: str,
                                            command: list[str]) -> None:
    csv = tmp_path / "e.csv"
    csv.write_text("user_id,ts,event_type\nu,2026-01-01,view\n")
    sessions = tmp_path / "sessions.txt"
    sessions.write_text(payload + "\n")
    args = [a.format(p=payload, sessions=sessions, csv=csv) for a in command]
    before = fingerprint(hostile_db)
    result = CliRunner().invoke(main, [*args, "--db", str(hostile_db)])
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert "Traceback" not in result.output
    assert fingerprint(hostile_db) == before


def test_hostile_column_names_and_values_are_stored_as_data(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    frame = pd.DataFrame({
        "user_id": PAYLOADS, "ts": ["2026-01-01"] * len(PAYLOADS),
        "event_type": PAYLOADS, "text": PAYLOADS,
        "x\"; DROP TABLE events; --": PAYLOADS,
    })
    with Store.open(db) as store:
        report = ingest_events(store, frame)
        assert report.n_added == len(PAYLOADS)
        stored = store.con.execute("SELECT user_id FROM events ORDER BY user_id").fetchall()
        assert sorted(u for (u,) in stored) == sorted(PAYLOADS)
        assert 'DROP TABLE events; --' in store.con.execute(
            "SELECT any_value(extra) FROM events").fetchall()[0][0]
        for payload in PAYLOADS:
            assert lookups.user_sessions(store, payload).shape[0] == 1


def test_a_mapping_to_a_hostile_column_name_is_refused_with_a_message(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:
        from core.ingest import ColumnMapping

        frame = pd.DataFrame({"u": ["a"], "ts": ["2026-01-01"], "event_type": ["view"]})
        with pytest.raises(AnomalystError, match="does not have"):
            ingest_events(store, frame, mapping=ColumnMapping({"user_id": "u\"; DROP x; --"}))
        assert store.summary.count_events() == 0
