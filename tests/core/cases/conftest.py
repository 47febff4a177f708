"""A private, writable copy of the demo store per test, opened for writing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store


@pytest.fixture()
def store(demo_store_copy: Path) -> Iterator[Store]:
    with Store.open(demo_store_copy) as opened:
        yield opened

