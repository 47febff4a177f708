"""A store that already holds absurd timestamps (written before the plausible-time window, or
with a widened one) still works: info, the default train end, training, pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import sample_data
from cli.main import main
from core.ingest import ingest_events
from core.ingest.time_window import TimeWindow
from core.pipeline import default_train_end, score_model, train_model
from core.store import Store

ODD_USERS = ("far_future", "far_past", "beyond_python")


def _add_odd_events(store: Store) -> None:
    wide = TimeWindow(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31))
    odd = pd.DataFrame({"user_id": list(ODD_USERS), "event_type": ["login"] * 3,
                        "ts": ["9999-06-01T00:00:00", "0001-01-01T00:00:00",
                               "2026-09-02T00:00:00"]})
    ingest_events(store, odd, time_window=wide)
    # Year 294247 cannot even be written through Python; old stores may hold it.
    for table, columns in (("events", ["ts"]), ("sessions", ["start_ts", "end_ts"])):
        sets = ", ".join(f"{c} = TIMESTAMP '294247-01-01'" for c in columns)
        store.con.execute(f"UPDATE {table} SET {sets} WHERE user_id = 'beyond_python'")


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.datetime]:
    """A small scored store plus events dated 9999, 0001 and 294247; with the default train
    end the same store had before the odd events arrived."""
    data = sample_data.generate(sample_data.GeneratorConfig(users=60, days=5, seed=3))
    path = tmp_path_factory.mktemp("odd") / "odd.duckdb"
    with Store.open(path) as store:
        ingest_events(store, data.events)
        clean_end = default_train_end(store)
        _add_odd_events(store)
        result = train_model(store, "zscore", quiet=True)
        score_model(store, result.model_id)
    return path, clean_end


def test_info_prints_any_stored_timestamp(odd_store: tuple[Path, dt.datetime]) -> None:
    path, _ = odd_store
    result = CliRunner().invoke(main, ["info", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "from 0001-01-01T00:00:00 to 294247-01-01 00:00:00" in result.output
    as_json = CliRunner().invoke(main, ["info", "--db", str(path), "--json"])
    assert as_json.exit_code == 0 and '"last_event_at": "294247-01-01 00:00:00"' in as_json.output


def test_one_far_event_does_not_move_the_default_train_end(
        odd_store: tuple[Path, dt.datetime]) -> None:
    path, clean_end = odd_store
    with Store.open(path, read_only=True) as store:
        assert default_train_end(store) == clean_end
    assert clean_end.year == 2026


def test_train_and_case_snapshot_survive_far_timestamps(odd_store: tuple[Path, dt.datetime],
                                                        tmp_path: Path) -> None:
    import shutil

    from core.cases.snapshot import _iso

    path = tmp_path / "copy.duckdb"
    shutil.copy(odd_store[0], path)
    result = CliRunner().invoke(main, ["train", "--detector", "zscore", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert _iso("294247-01-01 00:00:00") == "294247-01-01 00:00:00"


@pytest.mark.parametrize("page", ["overview", "queue", "user"])
def test_pages_render_a_store_with_far_timestamps(odd_store: tuple[Path, dt.datetime],
                                                  page: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    monkeypatch.setenv("ANOMALYST_DB", str(odd_store[0]))
    app = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
    at = AppTest.from_file(app, default_timeout=60)
    if page == "user":
        at.query_params["user"] = "beyond_python"
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
