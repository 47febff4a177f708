"""The partitioned plan, in process: each user's history whole, each partition given the
context its cross-user features need, and scores equal to one store's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.scale import plan
from core.scale.bundle import ModelBundle
from core.scale.partition import context_rule, user_partition
from tests.core.scale.conftest import ScaleData, store_scores


def _bundle(data: ScaleData, detector: str) -> ModelBundle:
    from core.app.data import open_store

    with open_store(data.store, read_only=True) as store:
        return ModelBundle.from_store(store, data.models[detector])


def _largest_gap(scores: pd.DataFrame, reference: pd.Series) -> float:
    found = scores.set_index("session_id")["score"]
    assert set(found.index) == set(reference.index)
    return float((found - reference.reindex(found.index)).abs().max())


@pytest.fixture(scope="module")
def raw(scale_data: ScaleData) -> pd.DataFrame:
    return plan.read_events([str(scale_data.events)])


@pytest.mark.parametrize("detector", ["gbdt", "zscore", "sequence_autoencoder"])
@pytest.mark.parametrize("n_partitions", [1, 3])
def test_partitioned_scores_equal_the_store(scale_data: ScaleData, raw: pd.DataFrame,
                                            detector: str, n_partitions: int) -> None:
    bundle = _bundle(scale_data, detector)
    seconds: dict[str, float] = {}
    scores = plan.score_in_process(raw, bundle, n_partitions=n_partitions, seconds=seconds)
    assert _largest_gap(scores, store_scores(scale_data, bundle.model_id)) <= 1e-5
    assert (scores["model_id"] == bundle.model_id).all()
    assert set(seconds) == {"store", "features", "model"} and min(seconds.values()) > 0


def test_without_context_the_cross_user_features_differ(
        scale_data: ScaleData, raw: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality above needs the context: partitions that see only their own users
    score sessions differently (sharing, entity history)."""
    monkeypatch.setattr(plan, "context_needs", lambda *a: pd.DataFrame(
        {"kind": pd.Series(dtype=object), "id": pd.Series(dtype=object),
         "_target": pd.Series(dtype=np.int64)}))
    bundle = _bundle(scale_data, "gbdt")
    scores = plan.score_in_process(raw, bundle, n_partitions=3)
    assert _largest_gap(scores, store_scores(scale_data, bundle.model_id)) > 1e-3


def test_user_partition_is_stable_and_in_range() -> None:
    users = [f"u{i}" for i in range(500)]
    first, again = user_partition(users, 4), user_partition(list(reversed(users)), 4)
    assert np.array_equal(first, again[::-1])
    assert set(first) == {0, 1, 2, 3}
    with pytest.raises(ConfigError, match="at least 1"):
        user_partition(users, 0)


def test_context_rule_follows_the_spec(scale_data: ScaleData) -> None:
    gbdt = context_rule(_bundle(scale_data, "gbdt").load().spec)
    assert {"device_id", "ip", "payment_id"} <= set(gbdt.session_columns)  # entity history
    assert gbdt.first_use_columns == () and gbdt.text_writers  # texts: earliest writers
    zscore = context_rule(_bundle(scale_data, "zscore").load().spec)
    assert zscore.session_columns == () and zscore.first_use_columns == ("device_id", "ip")
    assert context_rule({"kind": "sequences"}).is_empty


def test_event_files_name_what_matches_nothing(tmp_path) -> None:
    with pytest.raises(ConfigError, match="matches no file"):
        plan.event_files([str(tmp_path / "none" / "*.parquet")])
