"""Streaming equals batch (issue #26): a data set replayed through the service in event-time
order, a micro-batch at a time, leaves every closed session with the score that ingesting the
whole set and scoring it in batch gives (to 1e-5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli.demo import write_live_events
from core.app import models as app_models
from core.app.data import open_store
from core.ingest.events import ingest_events
from core.policy import publish_policy
from core.serve.events_in import parse_events
from core.serve.service import ScoringService, ServiceConfig

FAST = ServiceConfig(fsync=False, wait_s=60.0, batch_ms=1.0, text_wait_s=60.0)
CHUNK = 40  # events a request: sessions span many micro-batches, and batches mix users


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory, demo_store: Path
             ) -> tuple[Path, Path, pd.DataFrame]:
    """(live store, batch store, the new events): both copies of the demo store."""
    root = tmp_path_factory.mktemp("stream-vs-batch")
    base = root / "base" / "demo.duckdb"
    base.parent.mkdir()
    shutil.copy(demo_store, base)
    with open_store(base) as store:  # an ensemble of the feature models: the fast path's
        members = [store.models.latest_of(k) for k in ("zscore", "autoencoder")]
        trained = app_models.train(store, app_models.TrainRequest("ensemble", quiet=True,
                                                                  members=members))
        app_models.score(store, trained.model_id)
    live, batch = root / "live" / "demo.duckdb", root / "batch" / "demo.duckdb"
    for target in (live, batch):
        target.parent.mkdir()
        shutil.copy(base, target)
    events = pd.read_parquet(write_live_events(live, users=24, days=1, seed=5))
    return live, batch, events.sort_values(["ts", "event_id"]).reset_index(drop=True)


def _body(frame: pd.DataFrame) -> bytes:
    frame = frame.assign(ts=pd.to_datetime(frame["ts"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%f"))
    rows = [{k: v for k, v in r.items() if v is not None and v == v and v != ""}
            for r in frame.to_dict(orient="records")]
    return json.dumps(rows, default=str).encode()


@pytest.mark.parametrize("kind", ["ensemble", "autoencoder", "sequence_autoencoder"])
def test_replayed_sessions_score_as_batch_scoring_scores_them(
        replayed: tuple[Path, Path, pd.DataFrame], kind: str, tmp_path: Path) -> None:
    source_live, source_batch, events = replayed
    live, batch = tmp_path / "live.duckdb", tmp_path / "batch.duckdb"
    shutil.copy(source_live, live)
    shutil.copy(source_batch, batch)
    with open_store(live) as store:
        model_id = store.models.latest_of(kind)
        publish_policy(store, analyst="test", model_id=model_id, thresholds={"all": 1e12})

    last_score: dict[str, float] = {}
    with ScoringService.open(live, FAST) as service:
        # feature models are answered from memory, a sequence model through the store
        assert service.health()["scoring"] == ("store" if kind.startswith("sequence")
                                               else "memory")
        for start in range(0, len(events), CHUNK):
            result = service.submit(parse_events(_body(events.iloc[start:start + CHUNK])))
            assert result.applied
            for answer in result.events:  # the session's score after this event
                assert answer.get("score") is not None, answer
                last_score[answer["session_id"]] = answer["score"]

    with open_store(batch) as store:
        ingest_events(store, events)
        if kind == "ensemble":  # an ensemble combines its members' stored scores
            for member in ("zscore", "autoencoder"):
                app_models.score(store, store.models.latest_of(member))
        app_models.score(store, model_id)
        scored = store.scores.of_model(model_id).set_index("session_id")["score"]
    assert len(last_score) > 20
    ids = sorted(last_score)
    assert set(ids) <= set(scored.index), "the service and batch ingest made other sessions"
    np.testing.assert_allclose([last_score[s] for s in ids], scored.loc[ids].to_numpy(),
                               rtol=1e-5, atol=1e-6)
