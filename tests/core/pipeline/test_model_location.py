"""Model folders are found relative to the store, and the store vouches for their files."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import pytest

import sample_data
from core.errors import ModelError
from core.ingest import ingest_events
from core.pipeline import score_model, train_model
from core.store import Store


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A store with two z-score models (different train ends), in its own folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ANOMALYST_TEXT_FEATURES", "off")
    mp.setenv("ANOMALYST_FEATURE_CACHE", "off")
    data = sample_data.generate(sample_data.GeneratorConfig(users=40, days=3, seed=5))
    db = tmp_path_factory.mktemp("origin") / "s.duckdb"
    with Store.open(db) as store:
        ingest_events(store, data.events)
        ids = [train_model(store, "zscore", quiet=True).model_id,  # two different models
               train_model(store, "zscore", quiet=True,
                           train_end=dt.datetime(2026, 9, 2, 12)).model_id]
    mp.undo()
    return db, ids


@pytest.fixture(autouse=True)
def no_text_features(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_TEXT_FEATURES", "off")
    monkeypatch.setenv("ANOMALYST_FEATURE_CACHE", "off")


def copy_store(source: Path, folder: Path, *, with_models: bool) -> Path:
    folder.mkdir()
    shutil.copy(source, folder / source.name)
    if with_models:
        shutil.copytree(source.parent / "models", folder / "models")
    return folder / source.name


def test_the_registry_holds_a_path_relative_to_the_store(trained: tuple[Path, list[str]]) -> None:
    db, ids = trained
    with Store.open(db, read_only=True) as store:
        row = store.models.by_id(ids[0])
    assert row["path"] == f"models/{ids[0]}"
    assert row["origin_path"] == str((db.parent / "models" / ids[0]).resolve())
    assert len(row["digest"]) == 64


def test_a_moved_store_with_its_models_scores(trained: tuple[Path, list[str]], tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    db, ids = trained
    moved = copy_store(db, tmp_path / "moved", with_models=True)
    shutil.rmtree(db.parent / "models" / ids[0], ignore_errors=False)  # the old place is gone
    try:
        with caplog.at_level(logging.WARNING), Store.open(moved) as store:
            assert score_model(store, ids[0]).n_sessions > 0
        assert "where it was trained" not in caplog.text
    finally:
        shutil.copytree(moved.parent / "models" / ids[0], db.parent / "models" / ids[0])


def test_a_copy_without_models_never_silently_uses_the_originals(
        trained: tuple[Path, list[str]], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    db, ids = trained
    copy = copy_store(db, tmp_path / "copy", with_models=False)
    with caplog.at_level(logging.WARNING), Store.open(copy) as store:
        score_model(store, ids[1])  # still the registered files (checksum), but said aloud
    assert "where it was trained" in caplog.text and ids[1] in caplog.text
    original = db.parent / "models" / ids[1]
    hidden = tmp_path / "hidden"
    original.rename(hidden)
    try:
        with Store.open(copy) as store, pytest.raises(ModelError, match="copy the store's"):
            score_model(store, ids[1])
    finally:
        hidden.rename(original)


def test_a_valid_but_wrong_weights_file_is_refused(trained: tuple[Path, list[str]],
                                                   tmp_path: Path) -> None:
    """Another model's weights and config.json agree with each other, so only the checksum
    recorded in the store can tell that they are not this model's."""
    db, ids = trained
    copy = copy_store(db, tmp_path / "copy", with_models=True)
    mine, other = (copy.parent / "models" / i / "detector" for i in ids)
    shutil.rmtree(mine)
    shutil.copytree(other, mine)
    with Store.open(copy) as store, pytest.raises(ModelError, match="checksum recorded"):
        score_model(store, ids[0])
    with Store.open(copy) as store:  # the untouched model still scores
        assert score_model(store, ids[1]).n_sessions > 0


def test_models_registered_before_relative_paths_still_load(
        trained: tuple[Path, list[str]], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    db, ids = trained
    copy = copy_store(db, tmp_path / "legacy", with_models=True)
    with Store.open(copy) as store:  # as a v9 store held it: absolute path, no checksum
        store.con.execute("UPDATE models SET path = origin_path, digest = NULL")
    with caplog.at_level(logging.WARNING), Store.open(copy) as store:
        assert score_model(store, ids[0]).n_sessions > 0  # its own models/ folder first
    assert "where it was trained" not in caplog.text
    shutil.rmtree(copy.parent / "models")
    with caplog.at_level(logging.WARNING), Store.open(copy) as store:
        assert score_model(store, ids[0]).n_sessions > 0  # the old absolute path, said aloud
    assert "where it was trained" in caplog.text
