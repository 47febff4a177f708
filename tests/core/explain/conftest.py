"""Shared fixtures for the explain tests: the demo store opened read-only, its models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store


@pytest.fixture(scope="module")
def store(demo_store: Path) -> Iterator[Store]:
    """The demo store, read-only (explanations are computed but not saved)."""
    with Store.open(demo_store, read_only=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def model_of(store: Store) -> dict[str, str]:
    """detector name -> the newest model id of that detector."""
    frame = store.models.listing()
    return dict(zip(frame["detector"], frame["model_id"], strict=True))


@pytest.fixture(scope="module")
def flagged_of(store: Store, model_of: dict[str, str]) -> dict[str, list[str]]:
    """detector name -> the sessions its model flags, highest score first."""
    from core.explain import flagged_session_ids

    return {name: flagged_session_ids(store, mid) for name, mid in model_of.items()}
