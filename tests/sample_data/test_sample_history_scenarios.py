"""Scenarios whose signal lies only in history (issue #22 point 5), their hard negatives, and
the merchant_id column they rest on. Generated at the demo's default size (5,000 customers,
30 days), where every history scenario must have enough sessions to show its signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sample_data
from sample_data import GeneratedData, GeneratorConfig
from sample_data.frame import OUTPUT_COLUMNS

HISTORY = ("compromised_merchant", "device_farm", "spending_break")
DEMO = GeneratorConfig(seed=3)  # the demo's size: cli/demo.py and GeneratorConfig defaults


@pytest.fixture(scope="module")
def demo() -> GeneratedData:
    return sample_data.generate(DEMO)


@pytest.fixture(scope="module")
def events(demo: GeneratedData) -> pd.DataFrame:
    """Events (duplicates dropped, time order) with their session's scenario."""
    labels = demo.labels
    scenario = labels[labels["level"] == "session"].set_index("entity_id")["scenario"]
    ev = demo.events.drop_duplicates("event_id").sort_values(["ts", "event_id"])
    return ev.join(scenario.rename("scenario"), on="session_id")


@pytest.fixture(scope="module")
def purchases(events: pd.DataFrame) -> pd.DataFrame:
    return events[events["event_type"] == "purchase"]


@pytest.fixture(scope="module")
def first_seen(events: pd.DataFrame) -> pd.Series:
    """Each user's first event: when the account first shows up (new accounts sign up in the
    window; established ones are there from day one)."""
    return events.groupby("user_id")["ts"].min()


def _orders(events: pd.DataFrame) -> pd.DataFrame:
    """One row per purchase: the session buying from a merchant (the order's merchant_id)."""
    return events.loc[(events["event_type"] == "purchase") & events["merchant_id"].notna(),
                      ["session_id", "merchant_id", "ts", "scenario"]]


# -- merchant_id ----------------------------------------------------------------------------


def test_merchant_id_is_an_extra_event_column(demo: GeneratedData) -> None:
    assert tuple(demo.events.columns) == OUTPUT_COLUMNS
    assert "merchant_id" in demo.events.columns
    merchants = demo.events["merchant_id"].dropna()
    assert merchants.str.fullmatch(r"m\d{6}").all()
    assert 100 <= merchants.nunique() <= 1000  # a few hundred shops


def test_every_cart_line_and_order_carries_its_items_merchant(events: pd.DataFrame) -> None:
    lines = events[events["event_type"].isin(["add_to_cart", "remove_from_cart",
                                              "refund_request"])]
    assert lines["merchant_id"].notna().all()
    assert (lines.groupby("item_id", observed=True)["merchant_id"].nunique() == 1).all()
    # An order's payment steps and purchase carry the merchant of its first cart line.
    first_line = (events[events["event_type"] == "add_to_cart"]
                  .groupby("session_id")["merchant_id"].first())
    orders = events[events["event_type"].isin(["checkout", "purchase"])
                    & events["session_id"].isin(first_line.index)]
    assert (orders["merchant_id"].to_numpy()
            == first_line.loc[orders["session_id"]].to_numpy()).all()
    assert events.loc[events["event_type"].isin(["view", "login", "search"]),
                      "merchant_id"].isna().all()


def test_merchant_sizes_are_skewed(events: pd.DataFrame) -> None:
    adds = events.loc[events["event_type"] == "add_to_cart", "merchant_id"].value_counts()
    top = adds.iloc[: max(len(adds) // 10, 1)].sum() / adds.sum()
    assert top > 0.4, top  # the biggest tenth of the shops takes a large share of the orders


# -- the scenarios occur, labelled --------------------------------------------------------


def test_each_history_scenario_has_enough_labelled_sessions(demo: GeneratedData) -> None:
    labels = demo.labels
    sessions = labels[labels["level"] == "session"]
    per = sessions.loc[sessions["is_anomaly"], "scenario"].value_counts()
    for name in HISTORY:
        assert per.get(name, 0) >= 30, (name, per.to_dict())
    flagged = labels[(labels["level"] == "event") & labels["is_anomaly"]]
    assert set(HISTORY) <= set(flagged["scenario"])
    users = labels[(labels["level"] == "user") & labels["is_anomaly"]]
    assert set(HISTORY) <= set(users["scenario"])


@pytest.mark.parametrize("name", HISTORY)
def test_scenario_alone_on_a_tiny_window(name: str) -> None:
    data = sample_data.generate(GeneratorConfig(users=60, days=2, seed=4, anomaly_rate=0.1,
                                                scenarios=(name,)))
    sessions = data.labels[data.labels["level"] == "session"]
    assert set(sessions["scenario"]) == {"normal", name}


# -- each session on its own looks ordinary ------------------------------------------------


def _weighted_ks(sample: np.ndarray, reference: np.ndarray, weight: np.ndarray) -> float:
    """Largest gap between the ECDF of ``sample`` and the weighted ECDF of ``reference``."""
    grid = np.sort(np.concatenate([sample, reference]))
    own = np.searchsorted(np.sort(sample), grid, side="right") / len(sample)
    order = np.argsort(reference)
    cum = np.concatenate([[0.0], np.cumsum(weight[order])]) / weight.sum()
    ref = cum[np.searchsorted(reference[order], grid, side="right")]
    return float(np.abs(own - ref).max())


@pytest.mark.parametrize("name", HISTORY[:2])
def test_order_amounts_overlap_normal_ones(
    events: pd.DataFrame, purchases: pd.DataFrame, name: str
) -> None:
    """A two-sample check with a tolerance, not equality. device_farm accounts shop like any
    new customer: their orders against all normal orders. A compromised merchant sells its own
    categories: its orders against normal orders of the same categories (weighted alike)."""
    normal = purchases[purchases["scenario"] == "normal"]
    mine = purchases[purchases["scenario"] == name]
    assert len(mine) >= 10, len(mine)
    # A small shop sells a handful of items, so its amounts are lumpy: a loose tolerance (or the
    # KS test's 1% critical value where that is looser).
    tolerance = max(0.35, 1.63 / np.sqrt(len(mine)))
    inside = (mine["amount"].between(*normal["amount"].quantile([0.005, 0.995]))).mean()
    assert inside >= 0.9
    if name == "device_farm":
        ks = stats.ks_2samp(mine["amount"], normal["amount"]).statistic
        assert ks < tolerance, (name, ks)
        return
    first_line = (events[events["event_type"] == "add_to_cart"]
                  .groupby("session_id")["category"].first().dropna().astype(str))
    mine = mine[mine["session_id"].isin(first_line.index)]
    mine_cat = first_line.loc[mine["session_id"]].to_numpy()
    ref = normal[normal["session_id"].isin(first_line.index)]
    ref_cat = first_line.loc[ref["session_id"]].to_numpy()
    want = pd.Series(mine_cat).value_counts(normalize=True)
    have = pd.Series(ref_cat).value_counts(normalize=True)
    weight = want.reindex(ref_cat).fillna(0.0).to_numpy() / have.reindex(ref_cat).to_numpy()
    ks = _weighted_ks(mine["amount"].to_numpy(), ref["amount"].to_numpy(), weight)
    assert ks < tolerance, (name, ks)


@pytest.fixture(scope="module")
def shapes(events: pd.DataFrame) -> pd.DataFrame:
    """Per session: scenario, events, duration (s), whether it bought, account changes."""
    kind = events["event_type"].astype(str)
    by = events.assign(
        buy=kind == "purchase",
        change=kind.isin(["password_change", "address_change", "payment_method_add"]),
    ).groupby("session_id")
    out = by.agg(scenario=("scenario", "first"), n=("event_id", "size"), start=("ts", "min"),
                 end=("ts", "max"), buy=("buy", "any"), change=("change", "any"))
    out["span_s"] = (out["end"] - out["start"]).dt.total_seconds()
    return out


@pytest.mark.parametrize("name", HISTORY)
def test_session_shapes_look_like_buying_customers(
    events: pd.DataFrame, shapes: pd.DataFrame, name: str
) -> None:
    normal = shapes[(shapes["scenario"] == "normal") & shapes["buy"]]
    mine = shapes[(shapes["scenario"] == name) & shapes["buy"]]  # buying sessions alike
    ratio = mine["n"].median() / normal["n"].median()
    assert 0.6 < ratio < 1.6, (name, mine["n"].median(), normal["n"].median())
    assert 0.4 < mine["span_s"].median() / normal["span_s"].median() < 2.5
    assert set(events.loc[events["scenario"] == name, "event_type"]) <= set(
        events.loc[events["scenario"] == "normal", "event_type"])
    assert mine["change"].mean() < 0.1  # account changes at the genuine rate, not a takeover's


@pytest.mark.parametrize("name", ("compromised_merchant", "spending_break"))
def test_customers_use_their_own_device(events: pd.DataFrame, name: str) -> None:
    """Established customers, from a device they used before in normal sessions."""
    normal = events[events["scenario"] == "normal"]
    known = set(zip(normal["user_id"], normal["device_id"], strict=True))
    mine = events[(events["scenario"] == name) & events["device_id"].notna()]
    pairs = mine.groupby("session_id")[["user_id", "device_id"]].first()
    seen = np.mean([pair in known for pair in zip(pairs["user_id"], pairs["device_id"],
                                                  strict=True)])
    assert seen > 0.8, seen


# -- the signal is in history --------------------------------------------------------------


def test_compromised_merchant_is_mostly_fraud_only_during_its_period(
    demo: GeneratedData, events: pd.DataFrame
) -> None:
    orders = _orders(events)
    incidents = demo.truth[demo.truth["kind"] == "compromised_merchant"]
    assert len(incidents) >= 2
    inside, outside = [], []
    for row in incidents.itertuples():
        at = orders[orders["merchant_id"] == row.entity_id]
        during = (at["ts"] >= row.start) & (at["ts"] < row.end)
        inside.append(at.loc[during, "scenario"])
        outside.append(at.loc[~during, "scenario"])
        assert (at.loc[during, "scenario"] == "compromised_merchant").mean() >= 0.5, row
    inside, outside = pd.concat(inside), pd.concat(outside)
    assert (inside != "normal").mean() > 0.5
    # Outside its period the merchant is not compromised; other scenarios' fraud still buys
    # there at about the shop's base rate (most anomalous sessions buy, most normal ones don't).
    assert (outside == "compromised_merchant").mean() < 0.05
    base = (orders["scenario"] != "normal").mean()
    assert (outside != "normal").mean() < max(0.05, 2 * base), ((outside != "normal").mean(), base)
    # Every compromised_merchant order is at a compromised merchant.
    mine = orders[orders["scenario"] == "compromised_merchant"]
    assert mine["merchant_id"].isin(incidents["entity_id"]).all()


def test_device_farm_puts_many_new_accounts_behind_one_entity(
    demo: GeneratedData, events: pd.DataFrame, first_seen: pd.Series
) -> None:
    farms = demo.truth[demo.truth["kind"] == "device_farm"]
    assert len(farms) >= 2 and set(farms["entity"]) <= {"device_id", "ip"}
    for row in farms.itertuples():
        users = events.loc[events[row.entity] == row.entity_id, "user_id"].unique()
        first = first_seen.loc[users].sort_values()
        # New accounts: first seen inside the window, not on day one.
        new = first[first > pd.Timestamp(DEMO.start) + pd.Timedelta(hours=1)]
        in_a_day = (new.searchsorted(new + pd.Timedelta(days=1)) - np.arange(len(new))).max()
        assert in_a_day >= (8 if row.entity == "device_id" else 5), row
    # Among genuine devices, sharing stops at a family or household (four accounts).
    scen = events.groupby("device_id")["scenario"].agg(lambda s: set(s))
    normal_only = scen[scen.map(lambda s: s == {"normal"})].index
    per_device = events[events["device_id"].isin(normal_only)].groupby("device_id")[
        "user_id"].nunique()
    assert per_device.max() <= 4


def test_spending_break_is_far_above_the_users_own_baseline(
    events: pd.DataFrame, purchases: pd.DataFrame
) -> None:
    normal = purchases[purchases["scenario"] == "normal"]
    p99 = normal["amount"].quantile(0.99)
    breaks = purchases[purchases["scenario"] == "spending_break"]
    first_break = breaks.groupby("user_id")["ts"].min()
    ratios = []
    for row in breaks.itertuples():
        start = first_break[row.user_id]
        mine = normal[(normal["user_id"] == row.user_id) & (normal["ts"] < start)
                      & (normal["ts"] >= start - pd.Timedelta(days=30))]
        assert len(mine) >= 1
        ratios.append(row.amount / mine["amount"].mean())
    ratios = np.array(ratios)
    assert len(ratios) >= 20
    assert (ratios >= 5.0).mean() >= 0.9, np.sort(ratios)[:5]
    assert (breaks["amount"] <= p99).mean() >= 0.95  # ordinary for the shop as a whole
    # Several such orders in one day per customer, from established accounts.
    per_day = breaks.groupby(["user_id", breaks["ts"].dt.floor("D")]).size()
    assert per_day.max() >= 2


# -- hard negatives -----------------------------------------------------------------------


def test_flash_sale_is_a_labelled_normal_spike(
    demo: GeneratedData, events: pd.DataFrame, first_seen: pd.Series
) -> None:
    sales = demo.truth[demo.truth["kind"] == "flash_sale"]
    assert len(sales) >= 1 and (sales["label"] == "normal").all()
    orders = _orders(events)
    for row in sales.itertuples():
        at = orders[orders["merchant_id"] == row.entity_id]
        day = (at["ts"] >= row.start) & (at["ts"] < row.end)
        daily = at.groupby(at["ts"].dt.floor("D")).size()
        assert day.sum() >= 3 * daily.median(), (row, day.sum(), daily.median())
        assert (at.loc[day, "scenario"] == "normal").mean() >= 0.9  # (others' at the base rate)
        users = events.loc[events["session_id"].isin(at.loc[day, "session_id"]), "user_id"]
        first = first_seen.loc[users.unique()]
        assert ((first >= row.start) & (first < row.end)).mean() >= 0.25  # many new ones


def test_family_device_is_shared_by_established_normal_accounts(
    demo: GeneratedData, events: pd.DataFrame, first_seen: pd.Series
) -> None:
    families = demo.truth[demo.truth["kind"] == "family_device"]
    assert len(families) >= 2 and (families["label"] == "normal").all()
    users_label = demo.labels[demo.labels["level"] == "user"].set_index("entity_id")
    seen = []
    for row in families.itertuples():
        on = events[events["device_id"] == row.entity_id]
        users = on["user_id"].unique()
        assert 3 <= row.n_accounts <= 4 and 2 <= len(users) <= row.n_accounts
        seen.append(len(users))
        assert (users_label.loc[users, "scenario"] == "normal").all()
        assert on["ts"].max() - on["ts"].min() > pd.Timedelta(days=7)  # not a burst
    assert np.mean(np.array(seen) >= 3) >= 0.5  # (a member may not visit in the window)


def test_truth_names_entities_that_occur(demo: GeneratedData) -> None:
    truth = demo.truth
    assert set(truth["kind"]) == {"compromised_merchant", "device_farm", "flash_sale",
                                  "family_device"}
    for row in truth.itertuples():
        assert (demo.events[row.entity] == row.entity_id).any(), row


def test_truth_is_deterministic() -> None:
    config = GeneratorConfig(users=400, days=10, seed=9, anomaly_rate=0.08)
    a, b = sample_data.generate(config), sample_data.generate(config)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.events, b.events)
