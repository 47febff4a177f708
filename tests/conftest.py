"""Shared test settings and fixtures: no network, one tiny demo store per test run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_CONFIG = {
    "autoencoder": {"epochs": 3, "hidden_dims": (32, 16), "latent_dim": 6},
    "sequence_autoencoder": {"epochs": 1, "hidden_dim": 16, "embed_dim": 8, "latent_dim": 8},
}
TINY_DETECTORS = ("zscore", "autoencoder", "sequence_autoencoder")


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small scored store (300 users, 14 days, three detectors), built once per run.

    Tests must not write to it; copy it first (see ``demo_store_copy``).
    """
    from cli.demo import build_demo_store

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo_store(path, users=300, days=14, seed=11, detectors=TINY_DETECTORS,
                     config=TINY_CONFIG, quiet=True)
    return path


@pytest.fixture()
def demo_store_copy(demo_store: Path, tmp_path: Path) -> Path:
    """A private copy of the demo store for tests that write (model folders are shared)."""
    import shutil

    target = tmp_path / "demo.duckdb"
    shutil.copy(demo_store, target)
    return target
