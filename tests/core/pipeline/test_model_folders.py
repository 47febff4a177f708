"""Partial model folders: registered whole, or swept once their process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ModelError, StoreError
from core.pipeline.model_folders import (
    PARTIAL_PREFIX,
    model_folder,
    partial_folder,
    register_model_folder,
    sweep_partial_folders,
)
from core.store import Store


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


@pytest.mark.skipif(os.name == "nt", reason="no liveness probe on Windows")
def test_only_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = tmp_path / f"{PARTIAL_PREFIX}{_dead_pid()}-zscore-1"
    alive = tmp_path / f"{PARTIAL_PREFIX}{os.getppid()}-zscore-2"
    done = tmp_path / "zscore-3"
    for folder in (dead, alive, done):
        folder.mkdir()
    with Store.open(":memory:") as store:
        assert sweep_partial_folders(store, tmp_path) == [dead]
        mine = partial_folder(store, tmp_path, "zscore-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, done.name])
    assert mine.name == f"{PARTIAL_PREFIX}{os.getpid()}-zscore-4"


def test_a_failed_registration_leaves_no_folder(tmp_path: Path) -> None:
    with Store.open(":memory:") as store:
        partial = partial_folder(store, tmp_path, "zscore-5")
        partial.mkdir()
        (partial / "weights.json").write_text("{}")
        with pytest.raises(StoreError):
            register_model_folder(store, partial, {"model_id": "zscore-5"})  # columns missing
    assert list(tmp_path.iterdir()) == []


def test_a_registered_model_whose_rename_was_cut_off_is_completed_by_its_reader(
    tmp_path: Path,
) -> None:
    pending = tmp_path / f"{PARTIAL_PREFIX}{_dead_pid()}-zscore-6"
    pending.mkdir()
    row = {"path": str(tmp_path / "zscore-6"), "detector": "zscore"}
    assert model_folder(row) == tmp_path / "zscore-6"
    assert (tmp_path / "zscore-6").is_dir() and not pending.exists()
    with pytest.raises(ModelError, match="train zscore again"):
        model_folder({"path": str(tmp_path / "zscore-7"), "detector": "zscore"})
