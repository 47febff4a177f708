"""The store's stamp is part of every cache key, and it changes on every write.

Streamlit leaves any argument whose name starts with an underscore out of a cached function's
key: a ``_stamp`` argument once meant decisions reached no page until the server restarted.
"""

from __future__ import annotations

import inspect

import duckdb
import pytest
from streamlit.runtime.caching.cache_utils import CachedFunc

from dashboard import (
    services,
    services_cases,
    services_data,
    services_entity,
    services_explain,
    services_similar,
    services_user,
)

MODULES = (services, services_cases, services_data, services_entity, services_explain,
           services_similar, services_user)


def _cached() -> list[tuple[str, CachedFunc]]:
    return [(f"{m.__name__}.{name}", obj) for m in MODULES
            for name, obj in vars(m).items() if isinstance(obj, CachedFunc)]


def test_there_are_cached_functions_to_check():
    assert len(_cached()) > 10


@pytest.mark.parametrize(("name", "func"), _cached(), ids=[n for n, _ in _cached()])
def test_no_cached_function_hides_an_argument_from_its_key(name, func):
    hidden = [p for p in inspect.signature(func).parameters if p.startswith("_")]
    assert not hidden, f"{name}: Streamlit leaves {hidden} out of the cache key"


def test_the_stamp_changes_on_a_write_from_another_process(tmp_path, monkeypatch):
    db = tmp_path / "s.duckdb"
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    with duckdb.connect(str(db)) as con:
        con.execute("create table t (x int)")
    seen = {services.store_stamp()}
    for value in range(3):
        # a second connection writes without a checkpoint: only the .wal moves
        con = duckdb.connect(str(db))
        con.execute("set wal_autocheckpoint='1GB'")
        con.execute("insert into t values (?)", [value])
        stamp = services.store_stamp()
        assert stamp not in seen
        seen.add(stamp)
        con.close()  # the checkpoint folds the .wal into the file
        assert services.store_stamp() not in seen
        seen.add(services.store_stamp())
