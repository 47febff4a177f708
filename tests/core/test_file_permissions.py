"""Data the product writes is its owner's alone: 0600 files, 0700 folders, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import sample_data
from cli.main import main
from core.ingest import ingest_events
from core.pipeline import score_model, train_model
from core.store import Store


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The usual 022: without explicit care, files would come out 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_folders_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "deeper" / "s.duckdb"
    with Store.open(db):
        pass
    assert mode(db) == 0o600
    assert mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700


def test_an_old_world_readable_store_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Store.open(db):
        pass
    os.chmod(db, 0o644)
    with Store.open(db):
        pass
    assert mode(db) == 0o600


def test_model_folders_and_the_feature_cache_are_private(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_FEATURE_CACHE", "on")
    monkeypatch.setenv("ANOMALYST_TEXT_FEATURES", "off")  # keeps the test fast
    data = sample_data.generate(sample_data.GeneratorConfig(users=40, days=3, seed=5))
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        ingest_events(store, data.events)
        result = train_model(store, "zscore", quiet=True)
        score_model(store, result.model_id)
    trees = [tmp_path / "models", tmp_path / "feature_cache"]
    assert all(t.is_dir() for t in trees)
    found = 0
    for tree in trees:
        for folder, _dirs, files in os.walk(tree):
            assert mode(Path(folder)) == 0o700, folder
            for name in files:
                assert mode(Path(folder) / name) == 0o600, name
                found += 1
    assert found >= 4  # weights, config, input spec, cached features and header


def test_cli_commands_run_under_a_private_umask_and_restore_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def record_umask(self: Store) -> dict:
        current = os.umask(0)
        os.umask(current)
        seen.append(current)
        raise SystemExit(0)

    db = tmp_path / "s.duckdb"
    Store.open(db).close()
    monkeypatch.setattr(Store, "info", record_umask)
    CliRunner().invoke(main, ["info", "--db", str(db)])
    assert seen == [0o077]
    current = os.umask(0o022)
    assert current == 0o022  # given back when the command ended
