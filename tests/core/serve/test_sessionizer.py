"""OnlineSessionizer: batch ingest's rule and ids, bounded state, lookup, late events."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd

from core.ingest.events import ingest_events
from core.serve.sessionizer import OnlineSessionizer, OpenSession
from core.store import Store

T0 = dt.datetime(2026, 1, 1, 10)


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def test_events_join_by_the_gap_and_own_ids_are_kept() -> None:
    s = OnlineSessionizer(30)
    assert s.assign("u1", minutes(0)) == ("u1@2026-01-01T10:00:00", True)
    assert s.assign("u1", minutes(30)) == ("u1@2026-01-01T10:00:00", False)  # exactly the gap
    assert s.assign("u1", minutes(60.5)) == ("u1@2026-01-01T11:00:30", True)
    assert s.assign("u2", minutes(61), "given-1") == ("given-1", False)
    assert s.open_session("u2") is None
    assert s.closed_since_last_call() == ["u1@2026-01-01T10:00:00"]
    assert s.closed_since_last_call() == []


def test_replay_in_time_order_gives_batch_ingest_ids() -> None:
    rng = random.Random(3)
    rows = []
    for u in range(6):
        t = 0.0
        for _ in range(40):
            t += rng.choice([1, 5, 29, 31, 90, 400]) + rng.random()
            rows.append({"user_id": f"u{u}", "ts": minutes(t), "event_type": "view"})
    frame = pd.DataFrame(rows)
    with Store.open(":memory:") as store:
        ingest_events(store, frame)
        stored = store.con.execute("SELECT user_id, ts, session_id FROM events").fetchall()
    batch = {(u, ts): sid for u, ts, sid in stored}
    stored: dict[str, OpenSession] = {}  # what the service's store lookup would answer
    for max_open in (100, 2):  # 2: users are evicted all the time and come back by lookup
        s = OnlineSessionizer(30, max_open=max_open, lookup=stored.get)
        stored.clear()
        for row in sorted(rows, key=lambda r: r["ts"]):
            sid, new = s.assign(row["user_id"], row["ts"])
            assert sid == batch[(row["user_id"], row["ts"])]
            first = row["ts"] if new else stored[row["user_id"]].first_ts
            stored[row["user_id"]] = OpenSession(sid, first, row["ts"], 1)


def test_the_watermark_closes_and_evicts_idle_sessions() -> None:
    s = OnlineSessionizer(30)
    s.assign("u1", minutes(0))
    s.assign("u2", minutes(10))
    assert s.n_open == 2
    s.assign("u3", minutes(35))  # u1's last ts + gap is before the watermark
    assert s.closed_since_last_call() == ["u1@2026-01-01T10:00:00"]
    assert s.n_open == 2 and s.open_session("u1") is None
    assert s.watermark == minutes(35)


def test_lru_eviction_and_lookup_recover_an_open_session() -> None:
    held: dict[str, OpenSession] = {}

    def lookup(user_id: str) -> OpenSession | None:
        return held.get(user_id)

    s = OnlineSessionizer(30, max_open=1, lookup=lookup)
    s.assign("u1", minutes(0))
    held["u1"] = OpenSession("u1@2026-01-01T10:00:00", minutes(0), minutes(0), 1)
    s.assign("u2", minutes(1))  # evicts u1 (least recently used), still open
    assert s.open_session("u1") is None
    assert s.assign("u1", minutes(2)) == ("u1@2026-01-01T10:00:00", False)  # via lookup
    without = OnlineSessionizer(30, max_open=1)
    without.assign("u1", minutes(0))
    without.assign("u2", minutes(1))
    assert without.assign("u1", minutes(2)) == ("u1@2026-01-01T10:02:00", True)


def test_late_events_join_within_reach_else_get_their_own_session() -> None:
    s = OnlineSessionizer(30)
    s.assign("u1", minutes(100))
    s.assign("u1", minutes(120))
    assert s.assign("u1", minutes(110)) == ("u1@2026-01-01T11:40:00", False)  # between
    assert s.assign("u1", minutes(75)) == ("u1@2026-01-01T11:40:00", False)  # first - gap
    assert s.assign("u1", minutes(10)) == ("u1@2026-01-01T10:10:00", True)  # far too late
    assert s.open_session("u1").session_id == "u1@2026-01-01T11:40:00"  # not replaced
    assert s.assign("u1", minutes(130)) == ("u1@2026-01-01T11:40:00", False)
