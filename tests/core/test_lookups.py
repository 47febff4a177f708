"""Read-only views of the store: linked accounts, segments, user search."""

from __future__ import annotations

import pandas as pd

from core import lookups
from core.ingest import ingest_events
from core.store import Store
from core.store.label_rollup import CHOSEN_LABELS


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
        segments = store.scores.segments().set_index("session_id")
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
    from core.store.migrations import CURRENT_VERSION

    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame([_login("a", "2026-01-01", "d1"),
                                           _login("b", "2026-01-02", "d1", "2.2.2.2")]))
        # back to version 7: as a store written before user_entities existed
        store.con.execute("DROP TABLE user_entities")
        store.con.execute("UPDATE schema_meta SET value = '7' WHERE key = 'schema_version'")
        assert migrate(store.con, path) == CURRENT_VERSION
        linked = lookups.linked_accounts(store, "b")
    assert linked["user_id"].tolist() == ["a"]


def _scored_store(store: Store) -> None:
    """Three sessions (s1 labelled anomalous, s2 normal, s3 unlabelled), one sequence model
    and one feature model scoring them."""
    from core.ingest.labels import ingest_labels

    ingest_events(store, pd.DataFrame({
        "event_id": ["e1", "e2", "e3", "e4"], "user_id": ["a", "a", "b", "c"],
        "session_id": ["s1", "s1", "s2", "s3"],
        "ts": ["2026-01-01 10:00", "2026-01-01 10:01", "2026-01-02", "2026-01-03"],
        "event_type": ["purchase", "purchase", "view", "view"], "amount": [5.0, 7.5, None, None],
    }))
    ingest_labels(store, pd.DataFrame({"session_id": ["s1", "s2"], "label": [1, 0],
                                       "scenario": ["card_testing", None]}))
    for model, kind in (("seq", "sequences"), ("feat", "features")):
        store.con.execute(
            "INSERT INTO models (model_id, detector, created_at, config, feature_spec, path) "
            "VALUES (?, ?, now(), '{}', ?, '')", [model, model, f'{{"kind": "{kind}"}}'])
        store.con.execute("INSERT INTO scores SELECT ?, session_id, random(), now() "
                          "FROM sessions", [model])


def test_scored_models_say_their_input_kind_and_labelled_scores_join_labels() -> None:
    with Store.open(":memory:") as store:
        _scored_store(store)
        models = lookups.scored_models(store).set_index("model_id")
        labelled = lookups.labelled_scores(store, "seq").set_index("session_id")
    assert models["input_kind"].to_dict() == {"seq": "sequences", "feat": "features"}
    assert models["n_scores"].to_dict() == {"seq": 3, "feat": 3}
    assert list(labelled.index) == ["s1", "s2", "s3"]  # time order
    assert labelled.loc["s1", "is_anomaly"] == True  # noqa: E712
    assert labelled.loc["s1", "scenario"] == "card_testing"
    assert labelled.loc["s2", "is_anomaly"] == False  # noqa: E712
    assert pd.isna(labelled.loc["s3", "is_anomaly"])


def test_session_details_give_labels_and_amounts_of_the_sessions_asked() -> None:
    with Store.open(":memory:") as store:
        _scored_store(store)
        details = lookups.session_details(store, ["s3", "s1", "nope"]).set_index("session_id")
        params = {"sources": ["ground_truth"]}
        large = store._large_frame("session_labels", CHOSEN_LABELS, params)
        small = store._frame("session_labels", CHOSEN_LABELS, params)
    assert sorted(details.index) == ["nope", "s1", "s3"]
    assert details.loc["s1", "amount"] == 12.5 and details.loc["s3", "amount"] == 0
    assert details.loc["s1", "is_anomaly"] == True  # noqa: E712
    assert pd.isna(details.loc["s3", "is_anomaly"]) and pd.isna(details.loc["nope", "scenario"])
    # the Arrow path gives the same frame as the row path
    pd.testing.assert_frame_equal(large.sort_values("session_id", ignore_index=True),
                                  small.sort_values("session_id", ignore_index=True))


def test_a_failing_large_read_names_the_query() -> None:
    import pytest

    from core.errors import StoreError

    with Store.open(":memory:") as store, pytest.raises(StoreError, match="'broken' failed"):
        store._large_frame("broken", "SELECT * FROM no_such_table")


def test_every_reader_of_tenure_agrees_at_the_seven_day_boundary() -> None:

    frame = pd.DataFrame([_login("a", ts, "d1") for ts in (
        "2026-01-01 10:00", "2026-01-08 09:00", "2026-01-08 10:00", "2026-02-01")])
    with Store.open(":memory:") as store:
        ingest_events(store, frame)
        segments = store.scores.segments().set_index("session_id")["tenure"]
        table = store.scores.table([])
        by_table = table.set_index("session_id")["tenure"]
        one_by_one = {sid: store.explanations.session(sid).tenure for sid in segments.index}
    expected = {"a@2026-01-01T10:00:00": "new", "a@2026-01-08T09:00:00": "new",
                "a@2026-01-08T10:00:00": "returning", "a@2026-02-01T00:00:00": "returning"}
    assert segments.to_dict() == expected
    assert by_table.to_dict() == expected
    assert one_by_one == expected
