"""The rolled-up session labels follow every write path: label ingest (session and event
level), events that arrive after their labels, analysts' decisions, and old stores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core import lookups
from core.ingest import ingest_events
from core.ingest.labels import ingest_labels
from core.store import Store
from core.store.label_rollup import ROLLUP_SELECT


def _events(ids: list[str], session: str, user: str = "u1") -> pd.DataFrame:
    return pd.DataFrame({"event_id": ids, "user_id": user, "session_id": session,
                         "ts": [f"2026-01-01 00:0{i}:00" for i in range(len(ids))],
                         "event_type": "view"})


def _labels(store: Store, sources: tuple[str, ...] = ("ground_truth", "analyst")) -> list:
    frame = lookups.session_labels(store, sources)
    return sorted(frame[["session_id", "is_anomaly", "scenario", "source"]]
                  .itertuples(index=False, name=None))


def _from_scratch(store: Store) -> list:
    """What the rollup must equal: the derivation run over the raw labels now."""
    sql = ROLLUP_SELECT.format(sources="['ground_truth', 'analyst']")
    return sorted(store.con.execute(f"SELECT session_id, source, is_anomaly, scenario "
                                    f"FROM ({sql})").fetchall())


def _rollup(store: Store) -> list:
    return sorted(store.con.execute("SELECT session_id, source, is_anomaly, scenario "
                                    "FROM session_label_rollup").fetchall())


def test_event_labels_make_session_labels_and_explicit_ones_win(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, pd.concat([_events(["a1", "a2"], "sa"), _events(["b1"], "sb")]))
        ingest_labels(store, pd.DataFrame({
            "level": ["event", "event", "event", "session"],
            "entity_id": ["a1", "a2", "b1", "sb"], "is_anomaly": [0, 1, 1, 0],
            "scenario": [None, "card_testing", "bot", "normal"]}))
        assert _labels(store) == [("sa", True, "card_testing", "ground_truth"),
                                  ("sb", False, "normal", "ground_truth")]
        assert _rollup(store) == _from_scratch(store)


def test_event_labels_that_arrive_first_apply_once_their_events_do(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, _events(["a1"], "sa"))
        ingest_labels(store, pd.DataFrame({"level": ["event"], "entity_id": ["late1"],
                                           "is_anomaly": [1], "scenario": ["ato"]}))
        assert _labels(store) == []
        ingest_events(store, _events(["late1"], "s_late", user="u2"))
        assert _labels(store) == [("s_late", True, "ato", "ground_truth")]
        assert _rollup(store) == _from_scratch(store)


def test_analyst_decisions_override_and_reopening_restores(tmp_path: Path) -> None:
    from core import cases

    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, _events(["a1", "a2"], "sa"))
        ingest_labels(store, pd.DataFrame({"session_id": ["sa"], "label": ["normal"]}))
        opened = cases.open_case(store, analyst="ana", session_id="sa")
        cases.decide_case(store, opened.case_id, "fraud_confirmed", analyst="ana",
                          scenario="account_takeover")
        assert _labels(store) == [("sa", True, "account_takeover", "analyst")]
        assert _labels(store, ("ground_truth",)) == [("sa", False, "unspecified", "ground_truth")]
        assert _rollup(store) == _from_scratch(store)
        cases.reopen_case(store, opened.case_id, analyst="ana")
        assert _labels(store) == [("sa", False, "unspecified", "ground_truth")]
        assert _rollup(store) == _from_scratch(store)


def test_migration_builds_the_rollup_of_an_older_store(tmp_path: Path) -> None:
    from core.store.connection import migrate
    from core.store.migrations import CURRENT_VERSION

    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        ingest_events(store, _events(["a1", "a2"], "sa"))
        ingest_labels(store, pd.DataFrame({"level": ["event"], "entity_id": ["a2"],
                                           "is_anomaly": [1], "scenario": ["bot"]}))
        store.con.execute("DROP TABLE session_label_rollup")  # as written by version 8
        store.con.execute("UPDATE schema_meta SET value = '8' WHERE key = 'schema_version'")
        assert migrate(store.con, path) == CURRENT_VERSION
        assert _labels(store) == [("sa", True, "bot", "ground_truth")]
