"""Read-only views of the store: linked accounts, segments, user search."""

from __future__ import annotations

import pandas as pd

from core import lookups
from core.ingest import ingest_events
from core.store import Store


def test_linked_accounts_segments_and_search() -> None:
    frame = pd.DataFrame({
        "user_id": ["a", "a", "b", "c", "d"],
        "ts": ["2026-01-01 10:00", "2026-01-20 10:00", "2026-01-01 11:00", "2026-01-02",
               "2026-01-03"],
        "event_type": ["login"] * 5,
        "device_id": ["d1", "d2", "d1", "d9", "d2"],
        "ip": ["1.1.1.1", None, "9.9.9.9", "1.1.1.1", None],
        "payment_id": [None, None, None, None, "card"],
        "country": ["DE", "FR", "DE", "US", None],
    })
    with Store.open(":memory:") as store:
        ingest_events(store, frame)
        linked = lookups.linked_accounts(store, "a").set_index("user_id")
        segments = store.frame("session_segments").set_index("session_id")
        found = lookups.find_users(store, "%")
    assert sorted(linked.index) == ["b", "c", "d"]
    assert list(linked.loc["b", "shared"]) == ["device:d1"]
    assert list(linked.loc["c", "shared"]) == ["ip:1.1.1.1"]
    assert linked.loc["d", "n_shared"] == 1
    # a's second session is 19 days after the first: returning; countries come along.
    assert segments.loc["a@2026-01-20T10:00:00", "tenure"] == "returning"
    assert segments.loc["a@2026-01-01T10:00:00", "country"] == "DE"
    assert segments.loc["d@2026-01-03T00:00:00", "country"] == "unknown"
    assert found == []  # '%' is matched literally, not as a wildcard


def _login(user: str, ts: str, device: str, ip: str | None = None) -> dict[str, object]:
    return {"user_id": user, "ts": ts, "event_type": "login", "device_id": device, "ip": ip}


def test_user_entities_follow_every_ingest_without_repeats() -> None:
    first = pd.DataFrame([_login("a", "2026-01-01", "d1", "1.1.1.1"),
                          _login("a", "2026-01-01 00:05", "d1", "1.1.1.1"),
                          _login("b", "2026-01-02", "d2")])
    later = pd.DataFrame([_login("b", "2026-01-05", "d1"), _login("a", "2026-01-06", "d1")])
    with Store.open(":memory:") as store:
        ingest_events(store, first)
        assert lookups.linked_accounts(store, "a").empty
        ingest_events(store, first)  # the same file again: nothing new
        ingest_events(store, later)
        entities = store.con.execute(
            "SELECT kind, value, user_id FROM user_entities ORDER BY ALL").fetchall()
        linked = lookups.linked_accounts(store, "a")
    assert entities == [("device", "d1", "a"), ("device", "d1", "b"), ("device", "d2", "b"),
                        ("ip", "1.1.1.1", "a")]
    assert linked["user_id"].tolist() == ["b"] and list(linked["shared"][0]) == ["device:d1"]


def test_migration_fills_user_entities_from_the_events_already_stored(tmp_path) -> None:
    from core.store.connection import migrate

    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame([_login("a", "2026-01-01", "d1"),
                                           _login("b", "2026-01-02", "d1", "2.2.2.2")]))
        # back to version 7: as a store written before user_entities existed
        store.con.execute("DROP TABLE user_entities")
        store.con.execute("UPDATE schema_meta SET value = '7' WHERE key = 'schema_version'")
        assert migrate(store.con, path) == 8
        linked = lookups.linked_accounts(store, "b")
    assert linked["user_id"].tolist() == ["a"]
