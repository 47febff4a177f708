"""Live scoring of the policy's model on a few sessions (core.serve.live_models): a single
model and an ensemble give the scores batch scoring gave, and write them back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.app import models as app_models
from core.app.data import open_store
from core.serve.live_models import load_live_model, score_sessions


@pytest.fixture(scope="module")
def with_ensemble(tmp_path_factory: pytest.TempPathFactory, demo_store: Path) -> Path:
    import shutil

    target = tmp_path_factory.mktemp("live-models") / "demo.duckdb"
    shutil.copy(demo_store, target)
    with open_store(target) as store:
        result = app_models.train(store, app_models.TrainRequest("ensemble", quiet=True))
        app_models.score(store, result.model_id)
    return target


def _batch(store, model_id: str, ids: list[str]) -> np.ndarray:  # noqa: ANN001
    frame = store.scores.of_model(model_id).set_index("session_id")
    return frame.loc[ids, "score"].to_numpy(np.float64)


@pytest.mark.parametrize("kind", ["ensemble", "autoencoder", "sequence_autoencoder"])
def test_live_scores_equal_batch_scores_on_the_same_store(with_ensemble: Path, kind: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with open_store(with_ensemble) as store:
        model_id = store.models.latest_of(kind)
        ids = list(store.scores.of_model(model_id)["session_id"].iloc[::37][:12])
        before = _batch(store, model_id, ids)
        live = load_live_model(store, model_id)
        found = score_sessions(store, live, ids, now).set_index("session_id")
        after = _batch(store, model_id, ids)
        if kind == "ensemble":
            members = [m.model_id for m in live.members]
            shares = store.ensembles.contributions(model_id, ids[0])
            assert set(shares["member_id"]) == set(members)
            assert shares["contribution"].sum() == pytest.approx(after[0], abs=1e-9)
    np.testing.assert_allclose(found.loc[ids, "score"].to_numpy(), before, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-9)


def test_members_of_weight_zero_are_not_scored_live(with_ensemble: Path, tmp_path: Path) -> None:
    import shutil
    from dataclasses import replace

    def scored_at(store, model_id: str) -> pd.Series:  # noqa: ANN001
        frame = store.con.execute("SELECT session_id, scored_at FROM scores WHERE model_id = ?",
                                  [model_id]).df()
        return frame.set_index("session_id")["scored_at"]

    target = tmp_path / "demo.duckdb"
    shutil.copy(with_ensemble, target)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with open_store(target) as store:
        model_id = store.models.latest_of("ensemble")
        live = load_live_model(store, model_id)
        weights = np.zeros(len(live.members))
        weights[0] = 1.0  # only the first member counts
        live = replace(live, combiner=replace(live.combiner, weights=weights))
        ids = list(store.scores.of_model(model_id)["session_id"].iloc[::53][:8])
        idle, used = live.members[1].model_id, live.members[0].model_id
        before = scored_at(store, idle)
        found = score_sessions(store, live, ids, now).set_index("session_id")
        after, fresh = scored_at(store, idle), scored_at(store, used)
        first = store.scores.of_model(used).set_index("session_id")["score"]
    assert (after.loc[ids] == before.loc[ids]).all()  # the idle member was not re-scored
    assert (fresh.loc[ids] == now).all()
    expected = live.combiner.combine(np.column_stack(
        [first.loc[ids].to_numpy()] + [np.zeros(len(ids))] * (len(live.members) - 1)))[0]
    np.testing.assert_allclose(found.loc[ids, "score"].to_numpy(), expected, rtol=1e-12)
