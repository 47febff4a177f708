"""Scenarios whose signal lies only in history, and the hard negatives that mimic them.

Every session made here looks like a genuine customer's on its own: persona-shaped browsing,
catalogue prices, the customer's own device, IP and card. What gives them away is history:

- ``compromised_merchant``: for two to four weeks most orders at one small merchant are fraud
  (card data skimmed there); the signal is the merchant's share of fraud over recent days.
- ``device_farm``: many new accounts opened within hours behind one device (or, subtle, one
  IP); the signal is the entity's count of new accounts.
- ``spending_break``: a low, steady spender suddenly buys at 5-10x their own usual amount,
  amounts that are ordinary for the shop; the signal is the user's own rolling baseline.

Hard negatives, labelled normal: a ``flash_sale`` (one merchant, one day, many customers, many
of them new) and a ``family_device`` (three or four established accounts on one device and home
IP over the whole window). ``Context.truth`` records every incident and hard negative.
"""

from __future__ import annotations

import numpy as np

import sample_data.catalogue as cat
import sample_data.text as tx
import sample_data.world as world
from sample_data.config import SCENARIOS
from sample_data.normal import MAX_BROWSE
from sample_data.personas import CORE_PERSONAS, CORE_SHARES, HOURLY, PERSONAS, P
from sample_data.population import DAY_MS, HOUR_MS, MINUTE_MS, Pools, Population
from sample_data.scenarios.base import Context, split_incidents
from sample_data.sessions import Batch, Plan

NC = len(world.COUNTRIES)
CORE_CODES = np.array([PERSONAS.index(p) for p in CORE_PERSONAS])
_HOUR_CDF = np.cumsum(HOURLY) / HOURLY.sum()
NEVER = np.iinfo(np.int64).max


def _code(name: str) -> np.int8:
    return np.int8(SCENARIOS.index(name) + 1)


def _core_personas(rng: np.random.Generator, k: int, buyers: bool = False) -> np.ndarray:
    """``k`` core personas in their population shares (``buyers``: not window shoppers)."""
    share = CORE_SHARES * (np.arange(len(CORE_CODES)) > 0 if buyers else 1.0)
    return CORE_CODES[rng.choice(len(CORE_CODES), size=k, p=share / share.sum())]


def _day_times(rng: np.random.Generator, day: np.ndarray, offset_h: np.ndarray,
               lo_ms: np.ndarray, hi_ms: np.ndarray) -> np.ndarray:
    """A start on each given (local) day at the daily rhythm's hours, kept in [lo, hi)."""
    hour = np.searchsorted(_HOUR_CDF, rng.random(len(day)), side="right") + rng.random(len(day))
    t = day * DAY_MS + (hour * HOUR_MS).astype(np.int64) - (offset_h * HOUR_MS).astype(np.int64)
    return np.clip(t, lo_ms, np.maximum(hi_ms - 1, lo_ms))


def ordinary_plan(
    rng: np.random.Generator,
    users: np.ndarray,
    persona: np.ndarray,
    t0: np.ndarray,
    device: np.ndarray,
    ip: np.ndarray,
    payment: np.ndarray,
    pinned: np.ndarray,
    scenario: np.int8 | int,
    subtle: np.ndarray | None = None,
    p_checkout: np.ndarray | float | None = None,
    welcome: np.ndarray | None = None,
    item_category: np.ndarray | None = None,
) -> Plan:
    """Sessions shaped like genuine ones of ``persona`` (the same parameter table and draws as
    normal.normal_plan), each starting with the cart line ``pinned``."""
    n = len(users)
    p = persona
    coupons = (rng.random(n) < P["p_coupon"][p]).astype(np.int64)
    if welcome is not None:  # new customers use the welcome code, as genuine new ones do
        coupons = np.where(welcome, np.maximum(coupons, rng.random(n) < 0.5), coupons)
    code = np.where((welcome if welcome is not None else np.zeros(n, bool)) & (coupons > 0),
                    tx.WELCOME_CODE, -1)
    focus = (item_category if item_category is not None
             else rng.choice(cat.N_CATEGORIES, size=n, p=cat.ATTENTION)).astype(np.int8)
    account = (rng.random(n) < P["p_account"][p]).astype(np.int64)
    return Plan(
        user=users, t0=t0, device=device, ip=ip, payment=payment, focus=focus,
        scenario=np.full(n, scenario, np.int8),
        subtle=np.zeros(n, bool) if subtle is None else subtle,
        login=((rng.random(n) < 0.75) | (account > 0)).astype(np.int64),
        account=account, account_first=rng.integers(0, 3, n),
        browse=np.minimum(1 + rng.poisson(P["browse"][p] * rng.gamma(2.0, 0.5, n)), MAX_BROWSE),
        p_search=P["p_search"][p], p_add=P["p_add"][p], pinned=pinned,
        p_remove=P["p_remove"][p] * 0.3,  # the pinned first line is the order: rarely removed
        p_checkout=(P["p_checkout"][p] if p_checkout is None
                    else np.broadcast_to(p_checkout, (n,)).astype(float)),
        coupons=coupons, coupon_code=code,
        payfail=np.minimum(rng.poisson(P["payfail"][p]), 4),
        reviews=rng.poisson(P["reviews"][p]),
        logout=(rng.random(n) < 0.35).astype(np.int64),
        speed=P["speed"][p] * rng.lognormal(0.0, 0.3, n),
        qty=P["qty"][p] * rng.lognormal(0.0, 0.3, n), pricey=P["pricey"][p] > 0,
    )


def merchant_daily_orders(ctx: Context) -> np.ndarray:
    """Per merchant: genuine orders a day (purchases whose first cart line is of it, the
    order's merchant_id), from ``ctx.normal``."""
    n_m = ctx.cat.n_merchants
    merchant = ctx.cat.merchant
    assert merchant is not None, "assign_merchants first"
    counts = np.zeros(n_m, np.int64)
    for _, batch in ctx.normal:
        adds = np.flatnonzero(batch.etype == world.ET["add_to_cart"])
        sessions, first = np.unique(batch.session[adds], return_index=True)
        bought = np.isin(sessions, batch.session[batch.etype == world.ET["purchase"]])
        counts += np.bincount(merchant[batch.item[adds[first[bought]]]], minlength=n_m)
    return counts / ctx.days


def _cut(sizes: np.ndarray, n: int, least: int = 3) -> tuple[np.ndarray, np.ndarray, int]:
    """Incident of each of ``n`` sessions and its rank, filling incidents of ``sizes`` in
    order (the last one cut short, or joined to the one before when under ``least``); returns
    also the number of incidents used."""
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, n)) + 1 if n else 0
    size = sizes[:k].copy()
    if k:
        size[-1] -= cum[k - 1] - n
    if k > 1 and size[-1] < least:
        size[-2] += size[-1]
        size, k = size[:-1], k - 1
    incident = np.repeat(np.arange(k), size)
    rank = np.arange(n) - (np.cumsum(size) - size)[incident]
    return incident, rank, k


def compromised_merchant(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """For 10-21 days most orders at one small merchant are fraud: established customers'
    ordinary sessions (their own device, IP and card, persona-shaped browsing) buying one of its
    items at its catalogue price, a few a day where the merchant normally sees about one.
    Subtle: 14-28 days at a lower rate (still most of the merchant's orders). A compromise
    outlasts the usual delay before fraud labels arrive (7 days, as with chargebacks), as real
    ones do (skimmed terminals run for weeks): delayed label risk sees its later part."""
    rng, pop = ctx.rng, ctx.pop
    daily = merchant_daily_orders(ctx)
    busy = np.flatnonzero(daily > 0)
    pool = busy[np.argsort(daily[busy], kind="stable")] if len(busy) >= 5 else np.arange(len(daily))
    pool = pool[len(pool) * 3 // 10: max(len(pool) * 7 // 10, 1)]  # neither dormant nor busy
    m = max(n, 1)
    subtle = rng.random(m) < ctx.subtle_share
    merchant = np.resize(rng.permutation(pool), m)
    dur = np.minimum(np.where(subtle, rng.integers(14, 29, m), rng.integers(10, 22, m)),
                     ctx.days)
    rate = np.where(subtle, 1.2 * daily[merchant] + rng.uniform(0.5, 1.0, m),
                    1.5 * daily[merchant] + rng.uniform(1.0, 2.0, m))
    sizes = np.maximum(np.round(dur * rate).astype(np.int64), 3)
    inc, rank, k = _cut(sizes, n)
    subtle, merchant, dur = subtle[:k], merchant[:k], dur[:k]
    # A cut-short last incident is shorter rather than thinner: the rate stays what it was.
    size = np.bincount(inc, minlength=k)
    dur = np.clip(np.ceil(size / rate[:k]).astype(np.int64), 1, dur)
    first_day = rng.integers(0, np.maximum(ctx.days - dur, 0) + 1)
    lo, hi = first_day * DAY_MS, np.minimum(first_day + dur, ctx.days) * DAY_MS

    users = ctx.claim_users(n, eligible=pop.active_from_ms == 0)
    users = users[rng.permutation(n)]
    day = first_day[inc] + np.floor(rng.random(n) * dur[inc]).astype(np.int64)
    # Sessions start at the customers' local hours and end inside the period.
    t0 = _day_times(rng, day, world.COUNTRY_OFFSET_H[pop.country[users]], lo[inc],
                    hi[inc] - 2 * HOUR_MS)
    pinned = ctx.cat.sample_of_merchant(rng, merchant[inc])
    plan = ordinary_plan(
        rng, users, pop.persona[users], t0, pop.dev_start[users], pop.ip_start[users],
        pop.pay_start[users], pinned, _code("compromised_merchant"), subtle[inc],
        p_checkout=1.0, item_category=ctx.cat.category[pinned],
    )
    for i in range(k):  # one record per incident (not per session)
        ctx.truth.append({"kind": "compromised_merchant", "entity": "merchant_id",
                          "index": int(merchant[i]), "start_ms": int(lo[i]),
                          "end_ms": int(hi[i]), "subtle": bool(subtle[i]),
                          "n_sessions": int((inc == i).sum())})
    return plan, ctx.render(plan)


def device_farm(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """Eight to twenty-odd new accounts opened minutes apart behind one device and one IP, each
    with its own card and one or two plausible shopping sessions (a buying persona's). Subtle:
    five to eight accounts, each on its own device (fingerprints reset), behind one IP."""
    rng, pop, pools = ctx.rng, ctx.pop, ctx.pools
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (10, 30), (6, 10))
    k = len(subtle_i)
    size = np.bincount(inc, minlength=k)
    n_acc = np.maximum(np.ceil(size / np.where(subtle_i, 1.25, 1.4)).astype(np.int64), 1)
    acc_start = np.cumsum(n_acc) - n_acc
    acc = acc_start[inc] + rank % n_acc[inc]  # an account's second session follows the first
    acc_inc = np.repeat(np.arange(k), n_acc)
    t_farm = ctx.starts(k, 2 * DAY_MS)
    gap = rng.integers(2 * MINUTE_MS, 60 * MINUTE_MS, len(acc_inc))
    within = np.cumsum(gap) - np.repeat(np.cumsum(gap)[acc_start] - gap[acc_start], n_acc)
    opened = np.minimum(t_farm[acc_inc] + within, ctx.window_ms - HOUR_MS)
    country = rng.choice(NC, size=k, p=world.COUNTRY_SHARE).astype(np.int8)
    accounts = pop.add_fraud_accounts(country[acc_inc], opened)

    first = rank < n_acc[inc]
    t0 = opened[acc] + np.where(first, rng.integers(MINUTE_MS, 20 * MINUTE_MS, n),
                                rng.integers(2 * HOUR_MS, 30 * HOUR_MS, n))
    t0 = np.minimum(t0, ctx.window_ms - 2 * HOUR_MS)  # sessions end inside the window
    farm_device = pools.add_devices(world.sample_user_agents(rng, k))
    own_device = pools.add_devices(world.sample_user_agents(rng, len(acc_inc)))
    farm_ip = pools.add_ips(world.residential_ips(rng, country), country)
    cards = pools.add_payments(len(acc_inc))
    persona = _core_personas(rng, len(acc_inc), buyers=True)[acc]
    plan = ordinary_plan(
        rng, accounts[acc], persona, t0, np.where(sub, own_device[acc], farm_device[inc]),
        farm_ip[inc], cards[acc], np.full(n, -1, np.int64), _code("device_farm"), sub,
        p_checkout=np.maximum(P["p_checkout"][persona], 0.7), welcome=first,
    )
    for i in range(k):
        mine = acc_inc == i
        ctx.truth.append({"kind": "device_farm", "entity": "ip" if subtle_i[i] else "device_id",
                          "index": int(farm_ip[i] if subtle_i[i] else farm_device[i]),
                          "start_ms": int(opened[mine].min()),
                          "end_ms": int(t0[inc == i].max()) + 1, "subtle": bool(subtle_i[i]),
                          "n_sessions": int((inc == i).sum()), "n_accounts": int(mine.sum())})
    return plan, ctx.render(plan)


def normal_purchases(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, time, order total) of every genuine purchase so far, sorted by user then time."""
    users, times, amounts = [], [], []
    for plan, batch in ctx.normal:
        buy = np.flatnonzero(batch.etype == world.ET["purchase"])
        users.append(plan.user[batch.session[buy]])
        times.append(batch.t[buy])
        amounts.append(batch.amount[buy])
    user, t, amount = (np.concatenate(a) if a else np.zeros(0) for a in (users, times, amounts))
    order = np.lexsort((t, user))
    return user[order].astype(np.int64), t[order].astype(np.int64), amount[order]


def spending_break(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """A low, steady spender (three or more purchases, none above 2.5x their mean) suddenly
    places two to four orders in a day, each 6-10x their own mean over the previous 30 days, for
    amounts the shop sees every day (at most its 95th percentile of orders): from their own
    device, IP and card. Subtle: one or two orders at 5-6.5x."""
    rng, pop = ctx.rng, ctx.pop
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (2, 4), (1, 2))
    k = len(subtle_i)
    user, t, amount = normal_purchases(ctx)
    q95 = float(np.quantile(amount, 0.95)) if len(amount) else 200.0
    n_buy = np.bincount(user, minlength=pop.n)
    mean = np.bincount(user, amount, minlength=pop.n) / np.maximum(n_buy, 1)
    peak = np.zeros(pop.n)
    np.maximum.at(peak, user, amount)
    seg = np.concatenate([[0], np.cumsum(n_buy)])
    steady = (n_buy >= 3) & (peak <= 2.5 * mean) & (mean * 6.5 <= q95) & (mean > 0)
    established = pop.active_from_ms == 0
    users = ctx.claim_users(k, eligible=steady & established)
    # The break comes a day or more after the customer's third purchase (or mid-window).
    third = np.where(n_buy[users] >= 3, t[np.minimum(seg[users] + 2, max(len(t) - 1, 0))],
                     ctx.window_ms // 2)
    latest = max(ctx.window_ms - 16 * HOUR_MS, 0)  # room for the day's orders
    earliest = np.minimum(third + DAY_MS, latest)
    span = np.maximum(latest - earliest, 1)
    t_break = earliest + (rng.random(k) * span).astype(np.int64)
    # Their own mean over the previous 30 days, exactly as a rolling feature would see it.
    width = np.int64(ctx.window_ms + 1)  # (user, time) as one sortable int64
    key = user * width + t
    hi = np.searchsorted(key, users * width + t_break)
    lo = np.searchsorted(key, users * width + np.maximum(t_break - 30 * DAY_MS, 0))
    csum = np.concatenate([[0.0], np.cumsum(amount)])
    prior = np.where(hi > lo, (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1), mean[users])
    prior = np.where(prior > 0, prior, q95 / 10)
    factor = np.where(subtle_i, rng.uniform(5.3, 6.5, k), rng.uniform(6.0, 10.0, k))
    target = np.maximum(np.minimum(factor * prior, q95), 5.3 * prior)[inc]
    # The cheapest item at or above the target (any category but gift cards), one of the next
    # few in price order so that orders vary.
    ok = np.flatnonzero(ctx.cat.category != cat.GIFT_CARDS)
    by_price = ok[np.argsort(ctx.cat.price[ok], kind="stable")]
    pos = np.searchsorted(ctx.cat.price[by_price], target) + rng.integers(0, 3, n)
    pinned = by_price[np.minimum(pos, len(by_price) - 1)]

    u = users[inc]
    t0 = np.minimum(t_break[inc] + rank * rng.integers(30 * MINUTE_MS, 4 * HOUR_MS, n),
                    max(ctx.window_ms - 2 * HOUR_MS, 0))
    plan = ordinary_plan(
        rng, u, pop.persona[u], t0, pop.dev_start[u], pop.ip_start[u], pop.pay_start[u], pinned,
        _code("spending_break"), sub, p_checkout=1.0, item_category=ctx.cat.category[pinned],
    )
    plan.p_add[:] = 0.0  # the order is the one line: its amount is the break
    plan.p_remove[:] = 0.0
    plan.coupons[:] = 0
    plan.qty[:] = 0.0
    return plan, ctx.render(plan)


def add_family_devices(
    rng: np.random.Generator, pop: Population, k: int
) -> tuple[list[dict[str, object]], np.ndarray]:
    """Hard negative: ``k`` families of three or four established customers who share one
    device and one home IP over the whole window (labelled normal). Run before the genuine
    sessions are planned; returns the truth records and the members (whom no scenario should
    claim, so that the families stay normal)."""
    eligible = np.flatnonzero(np.isin(pop.persona, CORE_CODES) & (pop.active_from_ms == 0))
    size = rng.integers(3, 5, k)
    total = min(int(size.sum()), len(eligible))
    size = size[np.cumsum(size) <= total]
    if not len(size):
        return [], np.zeros(0, np.int64)
    members = rng.choice(eligible, size=int(size.sum()), replace=False)
    group = np.repeat(np.arange(len(size)), size)
    head = members[np.cumsum(size) - size][group]
    pop.dev_start[members] = pop.dev_start[head]
    pop.dev_count[members] = 1
    pop.ip_start[members] = pop.ip_start[head]
    pop.ip_count[members] = 1
    pop.country[members] = pop.country[head]
    pop.new_dev[members] = -1  # no one leaves the family device for a new phone
    pop.new_dev_at_ms[members] = NEVER
    pop.trip_dev[members] = -1
    pop.activity[members] = np.maximum(pop.activity[members], 1.0)  # visible, day in day out
    return [{"kind": "family_device", "entity": "device_id", "index": int(pop.dev_start[h]),
             "start_ms": -1, "end_ms": -1, "subtle": False, "n_accounts": int(s)}
            for h, s in zip(members[np.cumsum(size) - size], size, strict=True)], members


def add_customers(rng: np.random.Generator, pop: Population, pools: Pools,
                  active_from_ms: np.ndarray) -> np.ndarray:
    """Genuine customers who sign up at ``active_from_ms``: a core persona, a device, a home IP
    and a card of their own. Returns their user numbers."""
    k = len(active_from_ms)
    country = rng.choice(NC, size=k, p=world.COUNTRY_SHARE).astype(np.int8)
    users = pop.add_fraud_accounts(country, active_from_ms)
    pop.persona[users] = _core_personas(rng, k)
    pop.activity[users] = rng.lognormal(-0.125, 0.5, k)
    pop.fav[users] = rng.choice(cat.N_CATEGORIES, size=(k, 2), p=cat.ATTENTION)
    pop.dev_start[users] = pools.add_devices(world.sample_user_agents(rng, k))
    pop.ip_start[users] = pools.add_ips(world.residential_ips(rng, country), country)
    pop.pay_start[users] = pools.add_payments(k)
    pop.dev_count[users] = pop.ip_count[users] = pop.pay_count[users] = 1
    pop.new_dev_at_ms[users] = pop.trip_from_ms[users] = pop.trip_to_ms[users] = NEVER
    return users


def flash_sales(ctx: Context, n_normal: int) -> list[tuple[Plan, Batch]]:
    """Hard negative: on one day a busy merchant runs a sale; 6-10% of the day's sessions (and
    at least 3-5x the merchant's usual day) buy one of its few sale items, 40% of them from
    customers who sign up for it. Labelled
    normal. One sale per ten days of window."""
    rng, pop = ctx.rng, ctx.pop
    daily = merchant_daily_orders(ctx)
    n_sales = max(1, ctx.days // 10)
    busy = np.argsort(-daily, kind="stable")[: max(len(daily) // 10, n_sales)]
    merchants = rng.choice(busy, size=n_sales, replace=len(busy) < n_sales)
    days = rng.choice(np.arange(1, ctx.days) if ctx.days > 1 else np.zeros(1, np.int64),
                      size=n_sales, replace=ctx.days - 1 < n_sales)
    per_day = n_normal / ctx.days
    sizes = np.maximum(np.round(np.maximum(rng.uniform(0.06, 0.10, n_sales) * per_day,
                                           rng.uniform(3.0, 5.0, n_sales) * daily[merchants])),
                       10).astype(np.int64)
    out = []
    for merchant, day, size in zip(merchants, days, sizes, strict=True):  # a few sales
        lo, hi = int(day) * DAY_MS, min(int(day) + 1, ctx.days) * DAY_MS
        old_pool = np.flatnonzero((pop.persona >= 0) & (pop.active_from_ms <= lo)
                                  & (pop.dev_count > 0))
        new = (rng.random(size) < 0.4) | (len(old_pool) == 0)
        n_new = int(new.sum())
        end = max(hi - 2 * HOUR_MS, lo + HOUR_MS)  # sessions end inside the day
        t_new = _day_times(rng, np.full(n_new, day), np.zeros(n_new),
                           np.full(n_new, lo + 30 * MINUTE_MS), np.full(n_new, end))
        fresh = add_customers(rng, pop, ctx.pools,
                              t_new - rng.integers(MINUTE_MS, 20 * MINUTE_MS, n_new))
        old = rng.choice(old_pool, size=size - n_new, replace=len(old_pool) < size - n_new)
        t_old = _day_times(rng, np.full(len(old), day), world.COUNTRY_OFFSET_H[pop.country[old]],
                           np.full(len(old), lo), np.full(len(old), end))
        users = np.concatenate([fresh, old])
        t0 = np.concatenate([t_new, t_old])
        order = np.argsort(t0, kind="stable")
        users, t0, is_new = users[order], t0[order], np.repeat([True, False],
                                                               [n_new, len(old)])[order]
        sale_items = ctx.cat.sample_of_merchant(rng, np.full(int(rng.integers(1, 5)), merchant))
        pinned = sale_items[rng.integers(0, len(sale_items), size)]
        plan = ordinary_plan(
            rng, users, pop.persona[users], t0, pop.dev_start[users], pop.ip_start[users],
            pop.pay_start[users], pinned, 0, p_checkout=0.85, welcome=is_new,
            item_category=ctx.cat.category[pinned],
        )
        out.append((plan, ctx.render(plan)))
        ctx.truth.append({"kind": "flash_sale", "entity": "merchant_id", "index": int(merchant),
                          "start_ms": lo, "end_ms": hi, "subtle": False,
                          "n_sessions": int(size), "n_accounts": n_new})
    return out
