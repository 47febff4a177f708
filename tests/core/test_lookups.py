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
