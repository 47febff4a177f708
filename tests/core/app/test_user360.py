"""The User 360 view (core.app.user360): risk read for one user's sessions equals the
store-wide risk table (with and without a daily budget), decisions of sessions and linked
users, cases of the user and linked accounts, amounts with a currency, bounded points."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.app import policy as policies
from core.app import user360 as u360
from core.errors import ConfigError
from core.store import Store

SHARED = "dev-ring"
RING = ["u00", "u01", "u02"]


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    start = pd.Timestamp("2026-03-01 08:00:00")
    for u in range(24):
        user = f"u{u:02d}"
        for s in range(5):
            day = start + pd.Timedelta(days=int(s * 2 + u % 3), hours=int(u % 7))
            for e in range(3):
                rows.append({
                    "user_id": user, "session_id": f"{user}-s{s}",
                    "ts": day + pd.Timedelta(minutes=e * (3 + 20 * (u == 0 and s == 4))),
                    "event_type": ("login", "view", "purchase")[e],
                    "amount": float(round(rng.gamma(2.0, 20.0), 2)) if e == 2 else None,
                    "device_id": SHARED if user in RING and s >= 3 else f"dev-{user}",
                    "ip": f"10.0.{u}.{s}", "country": "DE" if u % 2 else "FR",
                    "payment_id": f"card-{user}",
                    "currency": "EUR" if user == "u03" else None,
                })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from core.app import data as app_data
    from core.app import models as app_models
    from core.cases import decide_case, open_case
    from core.ingest.events import ingest_events

    path = tmp_path_factory.mktemp("user360") / "tiny.duckdb"
    with app_data.open_store(path) as store:
        ingest_events(store, _events())
        result = app_models.train(store, app_models.TrainRequest("zscore", quiet=True))
        app_models.score(store, result.model_id)
        fraud = open_case(store, analyst="ana", session_id="u01-s4")
        decide_case(store, fraud.case_id, "fraud_confirmed", analyst="ana", scenario="ring")
        cleared = open_case(store, analyst="ana", session_id="u00-s1")
        decide_case(store, cleared.case_id, "false_positive", analyst="ana")
        open_case(store, analyst="ana", session_id="u00-s2")  # stays open
    return path


@pytest.fixture()
def tiny_copy(tiny: Path, tmp_path: Path) -> Path:
    target = tmp_path / "tiny.duckdb"
    shutil.copy(tiny, target)
    return target


def _view(store: Store, user: str, **kwargs) -> u360.User360:
    policy = kwargs.pop("policy", None) or policies.in_force(store)
    linked = store.users.linked_accounts(user)["user_id"].tolist()
    return u360.user360(store, user, policy, linked_ids=linked, **kwargs)


def test_risk_and_flags_equal_the_store_wide_risk_table(tiny: Path) -> None:
    with Store.open(tiny, read_only=True) as store:
        policy = policies.in_force(store)
        full = policies.risk_table(store, policy).set_index("session_id")
        for budget in (None, 1):
            chosen = policy.with_budget(budget)
            table = policies.risk_table(store, chosen).set_index("session_id")
            for user in ("u00", "u01", "u05"):
                got = _view(store, user, policy=chosen).sessions.set_index("session_id")
                want = table.loc[got.index]
                assert np.allclose(got["risk"], want["risk"], equal_nan=True)
                assert (got["flagged"] == want["flagged"]).all(), (user, budget)
        assert full["flagged"].any()  # the check above compared some flags


def test_decisions_of_sessions_and_linked_users(tiny: Path) -> None:
    with Store.open(tiny, read_only=True) as store:
        view = _view(store, "u00")
    decisions = view.sessions.set_index("session_id")["decision"]
    assert decisions["u00-s1"] == "not fraud" and decisions["u00-s0"] is None
    assert view.sessions.set_index("session_id")["open_case"]["u00-s2"] == "C-00003"
    linked = view.linked.set_index("user_id")
    assert linked.index[0] == "u00" and set(RING) <= set(linked.index)
    assert linked.loc["u01", "decision"] == "fraud" and linked.loc["u01", "decided_case"] == \
        "C-00001"
    assert linked.loc["u00", "decision"] == "not fraud"
    assert linked.loc["u02", "decision"] is None
    assert ((linked["max_risk"] >= 0) & (linked["max_risk"] <= 100)).all()
    cases = view.cases.set_index("case_id")
    assert set(cases.index) == {"C-00001", "C-00002", "C-00003"}
    assert cases.loc["C-00001", "relation"] == "linked"
    assert cases.loc["C-00002", "relation"] == "this user"
    assert cases.loc["C-00001", "decision"] == "fraud_confirmed"
    assert list(view.cases.columns[:7]) == ["case_id", "user", "relation", "status", "decision",
                                            "scenario", "updated"]


def test_amounts_carry_their_currency(tiny_copy: Path) -> None:
    with Store.open(tiny_copy) as store:
        own = _view(store, "u03")
        plain_user = _view(store, "u04")
        assert set(own.totals["currency"]) == {"EUR"}  # the events' own column
        assert set(plain_user.totals["currency"]) == {u360.CURRENCY_NOT_SET}
        assert u360.currency_label(plain_user.totals, None) == "(currency not set)"
        with pytest.raises(ConfigError, match="ISO 4217"):
            u360.set_display_currency(store, "dollars")
        assert u360.set_display_currency(store, "usd") == "USD"
        again = _view(store, "u04")
        assert set(again.totals["currency"]) == {"USD"} and again.store_currency == "USD"
        assert set(_view(store, "u03").totals["currency"]) == {"EUR"}  # its own wins
        assert u360.set_display_currency(store, None) is None
    assert own.amounts_per == "session" and len(own.amounts) == 5
    assert own.totals["amount"].sum() == pytest.approx(own.amounts["amount"].sum())


def test_sessions_and_amounts_are_bounded(tiny: Path) -> None:
    with Store.open(tiny, read_only=True) as store:
        view = _view(store, "u00", max_sessions=2, max_amount_rows=3, max_cases=1)
    assert len(view.sessions) == 2 and view.n_sessions == 5 and view.sessions_cut
    assert list(view.sessions["session_id"]) == ["u00-s3", "u00-s4"]  # the newest
    assert view.amounts_per == "day" and len(view.amounts) <= 3
    assert len(view.cases) == 1 and view.cases_cut


def _sessions(n: int) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01")
    risk = np.linspace(0, 100, n)
    return pd.DataFrame({
        "session_id": [f"s{i}" for i in range(n)],
        "start_ts": start + pd.to_timedelta(np.arange(n) * 600, unit="s"),
        "end_ts": start + pd.to_timedelta(np.arange(n) * 600 + 60, unit="s"),
        "risk": risk, "score": risk, "flagged": risk > 99.9,
        "decision": [("fraud" if i == 5 else None) for i in range(n)]})


def test_thin_points_keeps_flagged_decided_and_focus_and_buckets_the_rest() -> None:
    few = _sessions(50)
    points, buckets, name = u360.thin_points(few, focus="s3")
    assert len(points) == 50 and buckets.empty and name is None
    many = _sessions(100_000)
    points, buckets, name = u360.thin_points(many, focus="s7", max_points=500, max_kept=50)
    assert len(buckets) <= 500 and buckets["n_sessions"].sum() == 100_000
    assert {"s5", "s7"} <= set(points["session_id"]) and len(points) <= 50
    assert points["flagged"].sum() >= 40 and name in {"day", "week"}
    assert buckets["max_risk"].max() == pytest.approx(100.0)


def test_focus_window_is_the_asked_session_else_the_riskiest_flagged() -> None:
    frame = _sessions(200)
    focus, why, window = u360.focus_window(frame, "s10")
    assert (focus, why) == ("s10", "asked")
    start = frame.loc[10, "start_ts"]
    assert window[0] == start - u360.MIN_PAD and window[1] == start + pd.Timedelta("1min") + \
        u360.MIN_PAD
    focus, why, window = u360.focus_window(frame, "no-such-session")
    assert (focus, why) == ("s199", "highest risk") and window is not None
    calm = frame.assign(flagged=False)
    assert u360.focus_window(calm, None) == (None, "all", None)


def test_a_users_only_session_fills_the_timeline() -> None:
    trace = _sessions(1)  # a log trace: 21 events within 20 ms, no other session
    start = trace.loc[0, "start_ts"]
    trace["end_ts"] = start + pd.Timedelta("20ms")
    _, _, window = u360.focus_window(trace, "s0")
    assert window == (start - pd.Timedelta("10ms"), start + pd.Timedelta("30ms"))
    instant = trace.assign(end_ts=start)  # one event: nothing to fill, the usual padding
    assert u360.focus_window(instant, "s0")[2] == (start - u360.MIN_PAD, start + u360.MIN_PAD)
