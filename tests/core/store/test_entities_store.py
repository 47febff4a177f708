"""store.entities: one entity's summary, volume, risk, users and decided cases on a tiny store;
the column is checked against ENTITY_COLUMNS before any SQL is built."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest

from core.errors import ConfigError
from core.ingest.events import ingest_events
from core.store import Store
from core.store.entities import ENTITY_COLUMNS

NOW = dt.datetime(2026, 3, 10, 12, 0)


def _event(user: str, session: str, ts: str, device: str, ip: str, amount: float,
           item: str = "i1") -> dict[str, object]:
    return {"user_id": user, "session_id": session, "ts": ts, "event_type": "purchase",
            "item_id": item, "amount": amount, "device_id": device, "ip": ip,
            "country": "DE", "payment_id": f"p-{user}"}


ROWS = [
    # device d1: shared by u1 (2 sessions, day 1 and 2), u2 (1 session, day 2), u3 (day 3)
    _event("u1", "s1", "2026-03-01 10:00:00", "d1", "10.0.0.1", 10.0),
    _event("u1", "s1", "2026-03-01 10:05:00", "d1", "10.0.0.1", 5.0),
    _event("u1", "s2", "2026-03-02 09:00:00", "d1", "10.0.0.2", 20.0),
    _event("u2", "s3", "2026-03-02 11:00:00", "d1", "10.0.0.3", 30.0),
    _event("u3", "s4", "2026-03-03 08:00:00", "d1", "10.0.0.3", 40.0, item="i2"),
    # u2's earlier session on another device: u2 is not new on day 2
    _event("u2", "s0", "2026-02-20 08:00:00", "d9", "10.0.0.9", 1.0),
    _event("u4", "s5", "2026-03-03 09:00:00", "d2", "10.0.0.4", 2.0, item="i2"),
]


@pytest.fixture()
def store() -> Iterator[Store]:
    with Store.open(":memory:") as opened:
        ingest_events(opened, pd.DataFrame(ROWS))
        yield opened


def _score(store: Store, model_id: str, scores: dict[str, float]) -> None:
    for session_id, score in scores.items():
        store.con.execute("INSERT INTO scores VALUES (?, ?, ?, ?)",
                          [model_id, session_id, score, NOW])


def test_kinds_are_the_constant_present_in_events(store: Store) -> None:
    kinds = store.entities.kinds()
    assert set(kinds) <= set(ENTITY_COLUMNS)
    assert {"device_id", "ip", "item_id", "payment_id", "country"} <= set(kinds)
    present = {r[0] for r in store.con.execute("DESCRIBE events").fetchall()}
    assert ("merchant_id" in kinds) == ("merchant_id" in present)


def test_merchant_counts_only_where_events_have_it(store: Store) -> None:
    if "merchant_id" not in store.entities.kinds():
        with pytest.raises(ConfigError, match="column of this store"):
            store.entities.summary("merchant_id", "m1")
    store.con.execute("ALTER TABLE events ADD COLUMN IF NOT EXISTS merchant_id VARCHAR")
    store.con.execute("UPDATE events SET merchant_id = 'm1' WHERE user_id IN ('u1', 'u4')")
    assert "merchant_id" in store.entities.kinds()
    assert store.entities.summary("merchant_id", "m1")["n_users"] == 2


@pytest.mark.parametrize("kind", [
    "user_id", "text", "device_id; DROP TABLE events", "device_id = device_id OR 1=1 --",
    "DEVICE_ID", "", "ip ", "1", "(SELECT 1)", None, 3,
])
def test_unknown_columns_and_injection_are_refused(store: Store, kind: object) -> None:
    with pytest.raises(ConfigError, match="entity kind must be"):
        store.entities.summary(kind, "d1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        store.entities.users(kind, "d1")  # type: ignore[arg-type]
    assert store.summary.count_events() == len(ROWS)


def test_values_are_parameters_not_sql(store: Store) -> None:
    for value in ("d1' OR '1'='1", "x'); DROP TABLE events; --", "%", "d%"):
        assert store.entities.summary("device_id", value)["n_events"] == 0
        assert store.entities.users("device_id", value).empty
    assert store.summary.count_events() == len(ROWS)


def test_summary(store: Store) -> None:
    got = store.entities.summary("device_id", "d1")
    assert (got["n_sessions"], got["n_users"], got["n_events"]) == (4, 3, 5)
    assert got["amount"] == pytest.approx(105.0)
    assert pd.Timestamp(got["first_seen"]) == pd.Timestamp("2026-03-01 10:00:00")
    assert pd.Timestamp(got["last_seen"]) == pd.Timestamp("2026-03-03 08:00:00")
    unseen = store.entities.summary("device_id", "nope")
    assert (unseen["n_events"], unseen["amount"]) == (0, 0)


def test_volume_per_day_counts_new_accounts(store: Store) -> None:
    got = store.entities.volume("device_id", "d1")
    assert [pd.Timestamp(d).day for d in got["day"]] == [1, 2, 3]  # oldest first
    assert got["sessions"].tolist() == [1, 2, 1]
    assert got["users"].tolist() == [1, 2, 1]
    # u1 new on day 1, u2 was seen on Feb 20 (not new on day 2), u3 new on day 3
    assert got["new_users"].tolist() == [1, 0, 1]
    assert len(store.entities.volume("device_id", "d1", limit=2)) == 2


def test_risk_per_day_of_one_model(store: Store) -> None:
    _score(store, "m1", {"s1": 0.1, "s2": 0.5, "s3": 0.9, "s4": 0.3, "s5": 0.99})
    _score(store, "m2", {"s1": 5.0})
    got = store.entities.risk("device_id", "d1", "m1")
    assert got["n_scored"].tolist() == [1, 2, 1]
    assert got["max_score"].tolist() == pytest.approx([0.1, 0.9, 0.3])
    assert got["mean_score"].tolist() == pytest.approx([0.1, 0.7, 0.3])
    assert store.entities.risk("device_id", "d1", "none").empty


def test_users_with_latest_decision_bounded(store: Store) -> None:
    for case_id, user, decision, at in (("C-00001", "u1", "false_positive", 1),
                                        ("C-00002", "u1", "fraud_confirmed", 2),
                                        ("C-00003", "u4", "fraud_confirmed", 3)):
        store.con.execute(
            "INSERT INTO cases (case_id, user_id, status, decision, created_by, created_at, "
            "updated_at, decided_at) VALUES (?, ?, 'closed', ?, 'ana', ?, ?, ?)",
            [case_id, user, decision, NOW, NOW, NOW + dt.timedelta(hours=at)])
    store.con.execute("INSERT INTO case_sessions VALUES ('C-00003', 's5')")
    got = store.entities.users("device_id", "d1")
    assert got["user_id"].tolist() == ["u1", "u3", "u2"]  # most sessions, then latest
    assert got["n_sessions"].tolist() == [2, 1, 1]
    assert got.set_index("user_id")["latest_decision"].to_dict()["u1"] == "fraud_confirmed"
    assert pd.isna(got.set_index("user_id")["latest_decision"]["u2"])
    assert len(store.entities.users("device_id", "d1", limit=1)) == 1
    cases = store.entities.decided_cases("device_id", "d1")
    assert cases["case_id"].tolist() == ["C-00002", "C-00001"]  # not u4's case
    assert store.entities.decided_cases("device_id", "d2")["case_id"].tolist() == ["C-00003"]
    assert store.entities.decided_cases("device_id", "d2")["sessions_on_entity"].tolist() == [1]


def test_latest_sessions_and_entities_of_a_user_or_session(store: Store) -> None:
    assert store.entities.latest_sessions("device_id", "d1") == ["s4", "s3", "s2", "s1"]
    assert store.entities.latest_sessions("device_id", "d1", limit=2) == ["s4", "s3"]
    mine = store.entities.of_user("u1")
    assert mine["kind"].iloc[0] == "device_id"  # in ENTITY_COLUMNS order
    pairs = set(zip(mine["kind"], mine["value"], strict=True))
    assert {("device_id", "d1"), ("ip", "10.0.0.1"), ("ip", "10.0.0.2"), ("item_id", "i1"),
            ("payment_id", "p-u1"), ("country", "DE")} == pairs
    assert mine.set_index("value").loc["d1", "n_sessions"] == 2
    assert len(store.entities.of_user("u1", limit=1)) == len(set(mine["kind"]))
    one = store.entities.of_session("s4")
    assert ("item_id", "i2") in set(zip(one["kind"], one["value"], strict=True))
    assert store.entities.of_user("nobody").empty
