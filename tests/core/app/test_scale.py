"""Scoring event files (requests checked before any work) and ingest-scores (all or
nothing, sessions the store lacks counted)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.app import scale as app_scale
from core.app.data import open_store
from core.errors import ConfigError, IngestError, ModelError


@pytest.fixture()
def store_and_events(demo_store_copy: Path, demo_store: Path) -> tuple[Path, Path]:
    shutil.copytree(demo_store.parent / "models", demo_store_copy.parent / "models")
    return demo_store_copy, demo_store.parent / "sample" / "events.parquet"


def _zscore(db: Path) -> str:
    with open_store(db, read_only=True) as store:
        return str(store.models.latest_of("zscore"))


def test_local_scores_round_trip_through_ingest_scores(store_and_events, tmp_path) -> None:
    db, events = store_and_events
    model_id = _zscore(db)
    with open_store(db, read_only=True) as store:
        before = store.scores.of_model(model_id).set_index("session_id")["score"]
        bundle = app_scale.model_bundle(store, model_id, None)
    request = app_scale.file_score_request([str(events)], str(tmp_path / "out"))
    result = app_scale.score_files(bundle, request)
    assert result.n_sessions == len(before) and result.engine == "local"
    written = pd.read_parquet(tmp_path / "out" / app_scale.SCORES_FILE)
    # change the stored scores, then bring the file's back: they replace them
    with open_store(db) as store:
        with store.scores.staged(pd.DataFrame({"session_id": before.index, "score": 0.0})):
            with store.transaction():
                store.scores.replace(model_id, scored_at=pd.Timestamp.now(), only_new=False)
        outcome = app_scale.ingest_scores(store, str(tmp_path / "out"))
        after = store.scores.of_model(model_id).set_index("session_id")["score"]
    assert outcome.n_scores == len(written) and outcome.n_unknown_sessions == 0
    assert np.allclose(after.reindex(before.index), before, atol=1e-5)
    # what the pages and the score export read: thresholds, flags and the policy's risk
    from core.app import models as app_models

    with open_store(db, read_only=True) as store:
        flagged = app_models.scores_with_flags(store)
    mine = flagged[flagged["model_id"] == model_id].set_index("session_id")
    assert np.allclose(mine["score"].reindex(before.index), before, atol=1e-5)
    assert mine["above_threshold"].notna().all()


def _write(folder: Path, rows: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "part.parquet", index=False)
    return folder


def test_ingest_scores_counts_unknown_sessions_and_keeps_the_rest(store_and_events,
                                                                  tmp_path) -> None:
    db, _ = store_and_events
    model_id = _zscore(db)
    with open_store(db) as store:
        known = store.scores.of_model(model_id)["session_id"].head(2).tolist()
        folder = _write(tmp_path / "s", {"model_id": model_id, "session_id": [*known, "nope"],
                                         "user_id": "u", "score": [7.0, 8.0, 9.0]})
        outcome = app_scale.ingest_scores(store, str(folder))
        assert outcome.n_scores == 2 and outcome.unknown_examples == ("nope",)
        assert store.scores.session_score(model_id, known[1]) == 8.0


@pytest.mark.parametrize("rows, error, match", [
    ({"model_id": "m", "session_id": ["a"], "user_id": "u", "score": [1.0]}, ModelError,
     "registered models"),
    ({"model_id": "ZS", "session_id": ["a", "b"], "user_id": "u", "score": [1.0, np.nan]},
     IngestError, "finite"),
    ({"model_id": "ZS", "session_id": ["a", "a"], "user_id": "u", "score": [1.0, 2.0]},
     IngestError, "mixes runs"),
    ({"session_id": ["a"], "score": [1.0]}, IngestError, "missing model_id, user_id"),
])
def test_ingest_scores_refuses_bad_files_and_writes_nothing(store_and_events, tmp_path,
                                                            rows, error, match) -> None:
    db, _ = store_and_events
    model_id = _zscore(db)
    rows = {k: (model_id if v == "ZS" else v) for k, v in rows.items()}
    folder = _write(tmp_path / "bad", rows)
    with open_store(db) as store:
        before = store.scores.count(model_id)
        with pytest.raises(error, match=match):
            app_scale.ingest_scores(store, str(folder))
        assert store.scores.count(model_id) == before


def test_ingest_scores_refuses_an_unreadable_file(store_and_events, tmp_path) -> None:
    db, _ = store_and_events
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.parquet").write_bytes(b"not parquet")
    with open_store(db) as store, pytest.raises(IngestError, match="readable Parquet"):
        app_scale.ingest_scores(store, str(tmp_path / "bad"))
    with open_store(db) as store, pytest.raises(ConfigError, match="holds none"):
        app_scale.ingest_scores(store, str(tmp_path / "empty"))


def test_file_score_requests_are_checked_first(store_and_events, tmp_path) -> None:
    _, events = store_and_events
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    cases = [
        (dict(events=[str(events)], out=str(tmp_path / "full")), "new or empty folder"),
        (dict(events=[str(events)], out=str(tmp_path / "o"), engine="spark"), "engine must"),
        (dict(events=["s3://bucket/events/"], out=str(tmp_path / "o")), "use --engine ray"),
        (dict(events=[str(events)], out=str(tmp_path / "o"), address="auto"), "--engine ray"),
        (dict(events=[str(events)], out=str(tmp_path / "o"), partitions=0), "at least 1"),
    ]
    for kwargs, match in cases:
        events_arg, out = kwargs.pop("events"), kwargs.pop("out")
        with pytest.raises(ConfigError, match=match):
            app_scale.file_score_request(events_arg, out, **kwargs)


def test_an_ensemble_is_not_scored_from_files(store_and_events) -> None:
    db, _ = store_and_events
    from core.app import models as app_models

    with open_store(db) as store:
        trained = app_models.train(store, app_models.TrainRequest("ensemble", quiet=True))
        with pytest.raises(ModelError, match="Score its members"):
            app_scale.model_bundle(store, trained.model_id, None)
