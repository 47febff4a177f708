"""Each scenario leaves the signals it promises, and look-alikes are labelled normal."""

from __future__ import annotations

import pandas as pd
import pytest

from sample_data import GeneratedData
from sample_data.personas import CORE_PERSONAS, LOOKALIKE_OF, PERSONAS
from sample_data.text import COUPON_CODES, FAKE_TEMPLATES, WELCOME_CODE
from sample_data.world import COUNTRIES


def _sessions(events: pd.DataFrame, scenario: str) -> pd.DataFrame:
    return events[events["scenario"] == scenario]


def _count(events: pd.DataFrame, event_type: str) -> pd.Series:
    return events["event_type"].eq(event_type).groupby(events["session_id"]).sum()


def test_card_testing_bursts_of_failures_on_many_cards(rated_events: pd.DataFrame) -> None:
    cards = _sessions(rated_events, "card_testing")
    fails = _count(cards, "payment_failed")
    n_cards = cards.groupby("session_id")["payment_id"].nunique()
    assert (fails >= 1).all() and (n_cards >= 3).all()
    burst = cards[cards["event_type"] == "payment_failed"].groupby("session_id")["ts"]
    minutes = (burst.max() - burst.min()).dt.total_seconds() / 60
    fast = fails[fails >= 10].index
    assert len(fast) > 0
    # Obvious testers fire 10+ declined attempts within a quarter of an hour.
    assert (minutes[fast] < 15).mean() > 0.9
    normal = rated_events[rated_events["scenario"] == "normal"]
    assert (normal.groupby("session_id")["payment_id"].nunique() >= 3).mean() < 0.002
    assert _count(normal, "payment_failed").max() <= 4


def test_scraping_bots_view_hundreds_at_regular_intervals(rated_events: pd.DataFrame) -> None:
    bots = _sessions(rated_events, "scraping_bot")
    views = _count(bots, "view")
    assert (views >= 80).all() and views.median() >= 200
    assert _count(bots, "add_to_cart").sum() == 0
    gaps = bots[bots["event_type"] == "view"].groupby("session_id")["ts"].diff()
    seconds = gaps.dt.total_seconds().groupby(bots["session_id"])
    cv = seconds.std() / seconds.mean()
    assert (cv < 0.5).all()
    assert (cv < 0.15).mean() > 0.4  # the obvious ones tick like a metronome


def test_power_users_look_like_bots_but_are_normal(rated_events: pd.DataFrame) -> None:
    power = rated_events[rated_events["persona"] == "power_user"]
    assert (power["scenario"] == "normal").all()
    views = _count(power, "view")
    assert views.max() >= 60
    long = power[power["session_id"].isin(views[views >= 30].index)]
    gaps = long[long["event_type"] == "view"].groupby("session_id")["ts"].diff()
    seconds = gaps.dt.total_seconds().groupby(long["session_id"])
    cv = seconds.std() / seconds.mean()
    assert cv.median() > 0.6 and (cv > 0.35).mean() > 0.95  # human rhythm, not a metronome


def test_takeover_comes_from_a_device_the_user_never_used(rated_events: pd.DataFrame) -> None:
    ato = _sessions(rated_events, "account_takeover")
    own = rated_events[rated_events["scenario"] == "normal"]
    known = own.groupby("user_id")["device_id"].agg(lambda d: set(d.dropna()))
    for session_id, rows in ato.groupby("session_id"):
        devices = set(rows["device_id"].dropna())
        assert devices and not devices & known.get(rows["user_id"].iloc[0], set()), session_id
    foreign = ato["country"].notna() & (ato["country"] != ato["home_country"])
    per_session = foreign.groupby(ato["session_id"]).any()
    # Most takeovers come from abroad; the subtle ones keep the victim's country.
    assert 0.2 < per_session.mean() < 1.0
    changes = ato["event_type"].isin(["password_change", "address_change", "payment_method_add"])
    assert changes.groupby(ato["user_id"]).any().all()
    bought = ato[ato["event_type"] == "purchase"]["amount"]
    normal_buys = rated_events[(rated_events["scenario"] == "normal")
                               & (rated_events["event_type"] == "purchase")]["amount"]
    assert bought.median() > 2 * normal_buys.median()


def test_travellers_change_country_but_are_normal(rated_events: pd.DataFrame) -> None:
    def share_abroad(events: pd.DataFrame) -> float:
        abroad = events["country"].notna() & (events["country"] != events["home_country"])
        return float(abroad.groupby(events["user_id"]).any().mean())

    travel = rated_events[rated_events["persona"] == "traveller"]
    assert (travel["scenario"] == "normal").all()
    core = rated_events[rated_events["persona"].isin(CORE_PERSONAS)
                        & (rated_events["scenario"] == "normal")]
    assert share_abroad(travel) > 0.2 and share_abroad(travel) > 3 * share_abroad(core)


def test_fake_reviews_are_templated_five_stars_from_shared_devices(
    rated_events: pd.DataFrame,
) -> None:
    fake = _sessions(rated_events, "fake_reviews")
    reviews = fake[fake["event_type"] == "review"]
    assert len(reviews) > 0
    assert reviews["text"].map(lambda t: t.startswith(FAKE_TEMPLATES)).all()
    assert reviews["quantity"].ge(4).all() and reviews["quantity"].eq(5).mean() > 0.7
    purchases = fake[fake["event_type"] == "purchase"]["amount"]
    assert purchases.median() < 30
    users_per_device = fake.groupby("device_id")["user_id"].nunique()
    assert users_per_device.max() >= 3
    normal_reviews = rated_events[(rated_events["scenario"] == "normal")
                                  & (rated_events["event_type"] == "review")]
    assert normal_reviews["text"].nunique() > 0.8 * len(normal_reviews)


def test_prolific_reviewers_review_a_lot_and_are_normal(rated_events: pd.DataFrame) -> None:
    fans = rated_events[rated_events["persona"] == "prolific_reviewer"]
    assert (fans["scenario"] == "normal").all()
    per_user = _count(fans, "review").groupby(fans.groupby("session_id")["user_id"].first())
    assert per_user.sum().median() >= 3


def test_coupon_abuse_farms_the_welcome_code_on_shared_devices(
    rated_events: pd.DataFrame,
) -> None:
    abuse = _sessions(rated_events, "coupon_abuse")
    coupons = abuse[abuse["event_type"] == "coupon_apply"]
    assert coupons["session_id"].nunique() == abuse["session_id"].nunique()
    last = coupons.groupby("session_id")["text"].last()
    assert (last == COUPON_CODES[WELCOME_CODE]).all()
    assert abuse.groupby("device_id")["user_id"].nunique().max() >= 4


def test_refund_abuse_loops_purchase_and_refund(rated_events: pd.DataFrame) -> None:
    abuse = _sessions(rated_events, "refund_abuse")
    per_user = abuse.groupby("user_id")["event_type"]
    assert (per_user.apply(lambda t: (t == "refund_request").sum()) >= 1).all()
    assert (per_user.apply(lambda t: (t == "purchase").sum()) >= 2).all()
    normal = rated_events[rated_events["scenario"] == "normal"]
    refunds_per_user = normal[normal["event_type"] == "refund_request"].groupby("user_id").size()
    assert refunds_per_user.median() <= 2


def test_hoarding_adds_large_quantities_then_removes(rated_events: pd.DataFrame) -> None:
    hoard = _sessions(rated_events, "inventory_hoarding")
    adds = hoard[hoard["event_type"] == "add_to_cart"].groupby("session_id")["quantity"].max()
    assert adds.median() >= 10
    assert (_count(hoard, "remove_from_cart") > 0).mean() > 0.9
    normal = rated_events[(rated_events["scenario"] == "normal")
                          & (rated_events["event_type"] == "add_to_cart")]
    assert normal["quantity"].median() == 1
    bulk = rated_events[(rated_events["persona"] == "bulk_buyer")
                        & (rated_events["event_type"] == "add_to_cart")]
    assert bulk["quantity"].median() >= 5  # look-alike: big carts, bought


@pytest.mark.parametrize("persona", list(LOOKALIKE_OF))
def test_lookalikes_are_labelled_normal(rated: GeneratedData, persona: str) -> None:
    users = rated.users[rated.users["persona"] == persona]["user_id"]
    labels = rated.labels.set_index("entity_id")
    assert len(users) > 0
    assert not labels.loc[users, "is_anomaly"].any()


def test_at_least_five_personas(rated: GeneratedData) -> None:
    personas = set(rated.users["persona"])
    assert set(CORE_PERSONAS) <= personas and len(personas & set(PERSONAS)) >= 10


def test_daily_rhythm_in_local_time(rated_events: pd.DataFrame) -> None:
    normal = rated_events[rated_events["scenario"] == "normal"]
    starts = normal.groupby("session_id").agg(ts=("ts", "min"), home=("home_country", "first"))
    offset = starts["home"].map({c[0]: c[1] for c in COUNTRIES})
    hour = (starts["ts"] + pd.to_timedelta(offset, unit="h")).dt.hour
    night = hour.between(2, 5).mean()
    evening = hour.between(18, 21).mean()
    assert evening > 4 * night
    weekday = (starts["ts"] + pd.to_timedelta(offset, unit="h")).dt.day_of_week
    assert (weekday >= 5).mean() > 2 / 7


def test_carts_are_often_abandoned(rated_events: pd.DataFrame) -> None:
    normal = rated_events[rated_events["scenario"] == "normal"]
    has_cart = _count(normal, "add_to_cart") > 0
    bought = _count(normal, "purchase") > 0
    abandoned = (has_cart & ~bought).sum() / has_cart.sum()
    assert 0.15 < abandoned < 0.8
    purchases = normal[normal["event_type"] == "purchase"]["amount"]
    assert (purchases > 0).all() and purchases.quantile(0.99) > 5 * purchases.median()
