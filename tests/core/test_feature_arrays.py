"""The feature builder's array plumbing: row-major assembly, event ordering, background
fetches, and the refusal when the two queries disagree."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from _feature_fixtures import at, events_con, session_rows

from core.errors import StoreError
from core.features import _arrays as A
from core.features import build_session_features
from core.features import session as S


def test_row_major_matches_a_plain_transpose_and_zeroes_non_finite(monkeypatch) -> None:
    monkeypatch.setattr(A, "ROW_BLOCK", 7)  # many blocks, several threads
    rng = np.random.default_rng(0)
    columns = [rng.standard_normal(100) for _ in range(5)]
    columns[1][[3, 50]] = [np.nan, np.inf]
    columns[4] = columns[4].astype(np.float32)
    columns[4][99] = -np.inf
    rows = rng.permutation(100)[:60]
    want = np.stack(columns, axis=1).astype(np.float32)[rows]
    want[~np.isfinite(want)] = 0.0
    got = A.row_major(columns, rows)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


def test_row_major_of_nothing_is_empty() -> None:
    assert A.row_major([np.zeros(0)], np.zeros(0, dtype=np.int64)).shape == (0, 1)


def test_time_order_sorts_by_session_then_time() -> None:
    rng = np.random.default_rng(1)
    seg = rng.integers(0, 50, 2000)
    t = rng.integers(-10**12, 10**12, 2000)  # before and after 1970
    start = np.full(50, np.iinfo(np.int64).max)
    np.minimum.at(start, seg, t)
    pos = S._time_order(seg, t, start)
    assert sorted(pos.tolist()) == list(range(2000))
    key = list(zip(seg[pos].tolist(), t[pos].tolist(), strict=True))
    assert key == sorted(key)


def test_background_fetch_runs_on_its_own_cursor_or_falls_back_to_the_connection() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE events AS SELECT range AS x FROM range(5)")
    wait = A.fetch_in_background(con, "SELECT sum(x) AS s FROM events", {}, {}, "sum")
    assert wait()["s"].tolist() == [10]
    temp = duckdb.connect()
    temp.execute("CREATE TEMP TABLE events AS SELECT range AS x FROM range(3)")
    timings: dict[str, float] = {}
    wait = A.fetch_in_background(temp, "SELECT sum(x) AS s FROM events", {}, timings, "sum")
    assert wait()["s"].tolist() == [3] and "sum" in timings


def test_sessions_that_do_not_match_the_events_are_refused(monkeypatch) -> None:
    """If the events change between the two queries, the build stops with what to do."""
    con = events_con(session_rows("s1", "u1", ["login", "view"], start=at(0))
                     + session_rows("s2", "u1", ["login"], start=at(days=1)))
    other = events_con(session_rows("s1", "u1", ["login"], start=at(0)))
    real = A.fetch_in_background

    def stale(_con, sql, params, timings, step):  # the sessions query sees another table
        return real(other, sql, params, timings, step)

    monkeypatch.setattr(A, "fetch_in_background", stale)
    with pytest.raises(StoreError, match="Build the features again"):
        build_session_features(con)
