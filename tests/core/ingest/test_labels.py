"""Label ingest: layouts, label spellings, idempotence and rejected files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import ingest_events
from core.ingest.labels import ingest_labels
from core.store import Store


@pytest.fixture()
def store(tmp_path: Path):
    with Store.open(tmp_path / "s.duckdb") as s:
        ingest_events(s, pd.DataFrame({
            "event_id": ["e1", "e2"], "user_id": ["u1", "u2"], "session_id": ["s1", "s2"],
            "ts": ["2026-01-01", "2026-01-02"], "event_type": ["view", "view"],
        }))
        yield s


def labels(store: Store) -> list[tuple]:
    return store.con.execute(
        "SELECT level, entity_id, is_anomaly, scenario, source FROM labels ORDER BY ALL"
    ).fetchall()


def test_wide_session_labels_with_spellings(store: Store) -> None:
    frame = pd.DataFrame({"session_id": ["s1", "s2"], "label": ["fraud", "normal"],
                          "scenario": ["card_testing", None]})
    report = ingest_labels(store, frame)
    assert report.n_added == 2
    assert labels(store) == [("session", "s1", True, "card_testing", "ground_truth"),
                             ("session", "s2", False, None, "ground_truth")]


def test_long_format_and_idempotence(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("level,entity_id,is_anomaly,scenario\nuser,u1,1,ato\nevent,e2,0,normal\n")
    ingest_labels(store, path)
    first = labels(store)
    ingest_labels(store, path)
    assert labels(store) == first and len(first) == 2


def test_list_without_label_column_means_anomalous_only_when_said(store: Store) -> None:
    with pytest.raises(IngestError, match="must have a label column .* --all-anomalous"):
        ingest_labels(store, pd.DataFrame({"user_id": ["u2"], "class": ["fraud"]}))
    assert labels(store) == []
    report = ingest_labels(store, pd.DataFrame({"user_id": ["u2"]}), all_anomalous=True)
    assert labels(store) == [("user", "u2", True, None, "ground_truth")]
    assert "all 1 listed ids were taken as anomalous" in report.summary()
    with pytest.raises(IngestError, match="must not be used with a label column"):
        ingest_labels(store, pd.DataFrame({"user_id": ["u2"], "label": [0]}),
                      all_anomalous=True)


def test_unknown_ids_are_noted_not_lost(store: Store) -> None:
    report = ingest_labels(store, pd.DataFrame({"session_id": ["s9"], "label": [1]}))
    assert report.n_added == 1 and "not in the store yet" in report.notes[0]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (pd.DataFrame({"session_id": ["s1"], "label": ["maybe"]}), "label maybe is not a label"),
        (pd.DataFrame({"session_id": [""], "label": [1]}), "id is empty"),
        (pd.DataFrame({"session_id": ["s1", "s1"], "label": [1, 0]}), "both anomalous and normal"),
        (pd.DataFrame({"thing": ["x"]}), "needs a event_id, session_id or user_id"),
    ],
)
def test_bad_labels_write_nothing(store: Store, frame: pd.DataFrame, expected: str) -> None:
    with pytest.raises(IngestError, match=expected):
        ingest_labels(store, frame)
    assert labels(store) == []
