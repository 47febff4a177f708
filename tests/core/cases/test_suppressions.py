"""Snoozing users, devices and IPs: hidden from the queue until expiry or lift, audited."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from core import cases
from core.errors import ConfigError
from core.store import Store

T0 = dt.datetime(2026, 10, 1, 12, 0)


def a_user_with_events(store: Store) -> tuple[str, pd.DataFrame]:
    events = store.users.events(store.sessions.meta()["user_id"].iloc[
        0])
    return str(store.sessions.meta()["user_id"].iloc[0]), events


def test_snoozed_user_is_hidden_until_expiry(store: Store) -> None:
    user_id, events = a_user_with_events(store)
    own = set(events["session_id"])
    sid = cases.snooze(store, "user", user_id, days=2, reason="known QA account",
                       analyst="ana", now=T0)
    assert cases.suppressed_session_ids(store, at=T0 - dt.timedelta(minutes=1)) == set()
    assert cases.suppressed_session_ids(store, at=T0 + dt.timedelta(days=1)) == own
    assert cases.suppressed_session_ids(store, at=T0 + dt.timedelta(days=2, seconds=1)) == set()
    active = cases.active_suppressions(store, at=T0 + dt.timedelta(hours=1))
    assert active[["suppression_id", "kind", "value", "reason", "created_by"]].values.tolist(
        ) == [[sid, "user", user_id, "known QA account", "ana"]]
    table = store.sessions.meta()
    kept = cases.drop_suppressed(store, table, at=T0 + dt.timedelta(days=1))
    assert len(kept) == len(table) - len(own) and not kept["session_id"].isin(own).any()
    assert len(cases.drop_suppressed(store, table, at=T0 + dt.timedelta(days=3))) == len(table)


def test_device_and_ip_snoozes_hide_every_session_that_used_them(store: Store) -> None:
    _, events = a_user_with_events(store)
    device = events["device_id"].dropna().iloc[0]
    ip = events["ip"].dropna().iloc[-1]
    cases.snooze(store, "device", device, days=1, reason="lab device", analyst="ana", now=T0)
    cases.snooze(store, "ip", ip, days=1, reason="office NAT", analyst="ana", now=T0)
    every = store.con.execute("SELECT session_id, device_id, ip FROM events").df()
    expected = set(every[(every["device_id"] == device) | (every["ip"] == ip)]["session_id"])
    assert cases.suppressed_session_ids(store, at=T0 + dt.timedelta(hours=1)) == expected


def test_lift_ends_a_snooze_and_both_are_audited(store: Store) -> None:
    user_id, events = a_user_with_events(store)
    sid = cases.snooze(store, "user", user_id, days=30, reason="known", analyst="ana")
    assert cases.suppressed_session_ids(store) == set(events["session_id"])
    cases.lift(store, sid, analyst="bob")
    assert cases.suppressed_session_ids(store) == set()
    assert cases.active_suppressions(store).empty
    trail = cases.recent_audit(store)
    assert trail[["action", "actor", "entity"]].values.tolist() == [
        ["lift", "bob", f"user:{user_id}"], ["snooze", "ana", f"user:{user_id}"]]
    assert trail.iloc[1]["detail"]["reason"] == "known"
    with pytest.raises(ConfigError, match="must be active"):
        cases.lift(store, sid, analyst="bob")
    with pytest.raises(ConfigError, match="must exist"):
        cases.lift(store, 999, analyst="bob")
    row = store.suppressions.get(sid)
    assert row["lifted_by"] == "bob"  # lifted, never deleted


@pytest.mark.parametrize(("kind", "value", "days", "reason", "match"), [
    ("email", "x", 1, "r", "kind must be one of"),
    ("user", " ", 1, "r", "must be set"),
    ("user", "u", 0, "r", "days must be in"),
    ("user", "u", 400, "r", "days must be in"),
    ("user", "u", 1, "  ", "reason must be set"),
])
def test_snooze_checks_its_input(store: Store, kind: str, value: str, days: float,
                                 reason: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cases.snooze(store, kind, value, days=days, reason=reason, analyst="ana")
    assert store.suppressions.every().empty and cases.recent_audit(store).empty
