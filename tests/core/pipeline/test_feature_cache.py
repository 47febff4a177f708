"""The feature cache: a full build is read back unchanged; any change of events, spec or file
is a miss that rebuilds, never stale or broken features."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ingest import ingest_events
from core.pipeline import feature_cache, score_model
from core.pipeline.inputs import build_input
from core.store import Store


@pytest.fixture()
def store_path(demo_store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cache.duckdb"
    shutil.copy(demo_store, target)
    return target


def _no_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.pipeline.inputs as inputs

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("features were rebuilt")

    monkeypatch.setattr(inputs, "build_session_features", fail)


def test_a_full_build_is_read_back_unchanged(store_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(store_path) as store:
        learned = build_input(store, "features")
        assert not feature_cache.cache_dir(store).exists()  # a training build is not cached
        built = build_input(store, "features", learned.spec)
        assert list(feature_cache.cache_dir(store).glob("*.json"))
        _no_builds(monkeypatch)
        again = build_input(store, "features", built.spec)
    np.testing.assert_array_equal(again.data.values, built.data.values)
    assert again.data.names == built.data.names
    assert list(again.data.session_ids) == list(built.data.session_ids)
    pd.testing.assert_frame_equal(again.meta, built.meta, check_dtype=False)
    assert again.data.values.flags.writeable  # copy-on-write: detectors may scale in place


def test_a_few_sessions_are_read_from_a_current_entry_in_the_order_asked(
        store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(store_path) as store:
        full = build_input(store, "features", build_input(store, "features").spec)
        ids = [str(s) for s in full.meta["session_id"].iloc[[7, 2, 40]]]
        monkeypatch.setenv(feature_cache.ENV, "off")  # a scoped build, from the events
        fresh = build_input(store, "features", full.spec, session_ids=ids)
        monkeypatch.delenv(feature_cache.ENV)
        assert feature_cache.read_rows(store, full.spec, [*ids, "no-such-session"]) is None
        _no_builds(monkeypatch)
        cached = build_input(store, "features", full.spec, session_ids=ids)
    assert list(cached.data.session_ids) == ids
    order = {s: i for i, s in enumerate(fresh.meta["session_id"])}
    np.testing.assert_allclose(cached.data.values, fresh.data.values[[order[i] for i in ids]],
                               rtol=1e-6, atol=1e-6)


def test_new_events_spec_changes_and_subsets_rebuild(store_path: Path) -> None:
    with Store.open(store_path) as store:
        built = build_input(store, "features", build_input(store, "features").spec)
        ingest_events(store, pd.DataFrame({"user_id": ["newcomer"] * 2,
                                           "ts": ["2027-01-01 10:00", "2027-01-01 10:01"],
                                           "event_type": ["login", "view"]}))
        assert feature_cache.read(store, built.spec) is None
        rebuilt = build_input(store, "features", built.spec)
        assert len(rebuilt.meta) == len(built.meta) + 1
        assert feature_cache.read(store, built.spec) is not None  # written again
        other = {**built.spec, "hash": "0" * 16}
        assert feature_cache.read(store, other) is None
        one = build_input(store, "features", built.spec,
                          session_ids=[str(built.meta["session_id"].iloc[0])])
        assert len(one.meta) == 1


def test_a_damaged_entry_is_rebuilt_with_a_warning(
    store_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    with Store.open(store_path) as store:
        built = build_input(store, "features", build_input(store, "features").spec)
        for npy in feature_cache.cache_dir(store).glob("*.npy"):
            npy.write_bytes(b"not an array")
        with caplog.at_level(logging.WARNING, logger="core.pipeline.feature_cache"):
            again = build_input(store, "features", built.spec)
    assert "unreadable" in caplog.text
    np.testing.assert_array_equal(again.data.values, built.data.values)


def test_turned_off_it_writes_nothing(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(feature_cache.ENV, "off")
    with Store.open(store_path) as store:
        build_input(store, "features", build_input(store, "features").spec)
        assert not feature_cache.cache_dir(store).exists()


def test_only_the_newest_specs_are_kept(store_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feature_cache, "SETTLE_S", 0.0)
    with Store.open(store_path) as store:
        built = build_input(store, "features")
        for i in range(feature_cache.KEEP + 2):
            feature_cache.write(store, {**built.spec, "hash": f"{i:016x}"}, built.data,
                                built.meta)
        folder = feature_cache.cache_dir(store)
        headers = sorted(p.stem for p in folder.glob("*.json"))
    assert len(headers) == feature_cache.KEEP
    assert len(list(folder.glob("*.npy"))) == len(list(folder.glob("*.parquet"))) == len(headers)


def test_the_cache_of_a_deleted_store_is_removed_when_another_store_writes(
    store_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = store_path.with_name("other.duckdb")
    shutil.copy(store_path, other)
    with Store.open(other) as store:
        built = build_input(store, "features")
        feature_cache.write(store, built.spec, built.data, built.meta)
        orphan = feature_cache.cache_dir(store)
    other.unlink()
    with Store.open(store_path) as store:
        feature_cache.write(store, built.spec, built.data, built.meta)  # too recent to sweep
        assert orphan.exists()
        monkeypatch.setattr(feature_cache, "SETTLE_S", 0.0)
        feature_cache.write(store, built.spec, built.data, built.meta)
        assert feature_cache.cache_dir(store).exists()
    assert not orphan.exists()


def test_rescoring_from_the_cache_gives_the_same_scores(
    store_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Store.open(store_path) as store:
        models = store.models.listing()
        model_id = models.loc[models["detector"] == "autoencoder", "model_id"].iloc[0]
        query = "SELECT session_id, score FROM scores WHERE model_id = ? ORDER BY 1"
        before = store.con.execute(query, [model_id]).df()
        score_model(store, model_id)  # cold: builds and caches
        _no_builds(monkeypatch)
        score_model(store, model_id)  # warm: reads the cache
        after = store.con.execute(query, [model_id]).df()
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-5)


def test_an_in_memory_store_has_no_cache() -> None:
    with Store.open(":memory:") as store:
        assert feature_cache.cache_dir(store) is None


def test_history_features_are_rebuilt_when_labels_change(store_path: Path) -> None:
    """Delayed label risk reads labels: a decision must not leave stale cached features."""
    from core import cases
    from core.features import TrainingScope
    from core.features.history import HistorySpec

    with Store.open(store_path) as store:
        end = store.con.execute("SELECT max(start_ts) FROM sessions").fetchone()[0]
        learned = build_input(store, "features", training=TrainingScope(
            until=end, history=HistorySpec()))
        assert learned.spec["features"].get("history")
        built = build_input(store, "features", learned.spec)
        assert feature_cache.read(store, built.spec) is not None
        session_id = str(built.meta["session_id"].iloc[0])
        case = cases.open_case(store, analyst="ana", session_id=session_id)
        cases.decide_case(store, case.case_id, "fraud_confirmed", analyst="ana",
                          scenario="card_testing")
        assert feature_cache.read(store, built.spec) is None  # the labels moved
    with Store.open(store_path) as store:
        plain = build_input(store, "features", build_input(store, "features").spec)
        assert not plain.spec["features"].get("history")
        assert feature_cache.read(store, plain.spec) is not None
        case = cases.open_case(store, analyst="ana",
                               session_id=str(plain.meta["session_id"].iloc[1]))
        cases.decide_case(store, case.case_id, "false_positive", analyst="ana")
        assert feature_cache.read(store, plain.spec) is not None  # no labels in it: kept
