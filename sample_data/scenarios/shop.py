"""Scenarios about the shop floor: scraping bots, fake reviews, coupon abuse, hoarding."""

from __future__ import annotations

import numpy as np

import sample_data.catalogue as cat
import sample_data.text as tx
import sample_data.world as world
from sample_data.config import SCENARIOS
from sample_data.population import DAY_MS, HOUR_MS, MINUTE_MS
from sample_data.scenarios.base import (
    Context,
    by_type,
    ranks_within,
    shift_after_browse,
    split_incidents,
)
from sample_data.sessions import Batch, Plan

NC = len(world.COUNTRIES)
CHEAP_CATEGORIES = np.array([3, 7, 8, 11, 12])  # fashion, beauty, books, grocery, pet
GUESSED_CODES = np.arange(tx.N_NORMAL_CODES, len(tx.COUPON_CODES))


def _code(name: str) -> np.int8:
    return np.int8(SCENARIOS.index(name) + 1)


def _fresh(ctx: Context, k: int, t: np.ndarray, before: tuple[int, int]) -> np.ndarray:
    """``k`` fraud accounts opened ``before`` (min, max ms) the times ``t``."""
    country = ctx.rng.choice(NC, size=k, p=world.COUNTRY_SHARE).astype(np.int8)
    opened = np.maximum(t - ctx.rng.integers(before[0], before[1], k), 0)
    return ctx.pop.add_fraud_accounts(country, opened)


def scraping_bot(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """An automated client walks the catalogue: hundreds of views in item-id order at
    metronome intervals from a datacenter, never a cart. Subtle: a real browser's user agent,
    a residential IP, random items, a few seconds between pages with 30% jitter."""
    rng, pools = ctx.rng, ctx.pools
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (1, 4), (1, 3))
    k = len(subtle_i)
    t_inc = ctx.starts(k, 12 * HOUR_MS)
    users = _fresh(ctx, k, t_inc, (HOUR_MS, 5 * DAY_MS))
    country = ctx.pop.country[users]
    host_ip, host_country = world.hosting_ips(rng, k)
    ips = pools.add_ips(np.where(subtle_i, world.residential_ips(rng, country), host_ip),
                        np.where(subtle_i, country, host_country))
    ua = np.where(subtle_i, world.sample_user_agents(rng, k), rng.choice(world.UA_BOT, k))
    devices = pools.add_devices(ua)
    plan = Plan(
        user=users[inc], t0=t_inc[inc] + rank * rng.integers(HOUR_MS, 3 * HOUR_MS, n),
        device=devices[inc], ip=ips[inc], payment=np.full(n, -1, np.int64),
        focus=rng.choice(cat.N_CATEGORIES, size=n).astype(np.int8),
        scenario=np.full(n, _code("scraping_bot"), np.int8), subtle=sub,
        login=(rng.random(n) < 0.5).astype(np.int64),
        browse=np.where(sub, rng.integers(100, 250, n), rng.integers(200, 800, n)),
        p_search=np.where(sub, 0.05, 0.01), p_add=np.zeros(n),
        regular_ms=np.where(sub, rng.uniform(3000, 9000, n), rng.uniform(800, 3000, n)),
        jitter=np.where(sub, 0.3, 0.02), p_focus=np.where(sub, 0.3, 0.0),
    )
    batch = ctx.render(plan)
    views = by_type(batch, "view")
    s = batch.session[views]
    sweep = views[~sub[s]]
    start = rng.integers(0, ctx.cat.n_items, n)
    item = (start[batch.session[sweep]] + ranks_within(batch.session[sweep])) % ctx.cat.n_items
    batch.item[sweep] = item
    batch.amount[sweep] = ctx.cat.price[item]
    batch.category[sweep] = ctx.cat.category[item]
    return plan, batch


def fake_reviews(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """Brushing: a ring of fresh accounts on one shared device buys the same cheap item and
    posts templated five-star reviews right after. Subtle: two accounts on two devices, four
    or five stars, the template dressed up with a varied tail."""
    rng, pools = ctx.rng, ctx.pools
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (4, 10), (2, 3))
    k = len(subtle_i)
    size = np.bincount(inc, minlength=k)
    n_acc = np.where(subtle_i, np.minimum(size, 2), np.ceil(size / 1.5)).astype(np.int64)
    acc_start = np.cumsum(n_acc) - n_acc
    acc = acc_start[inc] + rank % n_acc[inc]
    t_inc = ctx.starts(k, 2 * DAY_MS)
    accounts = _fresh(ctx, int(n_acc.sum()), np.repeat(t_inc, n_acc), (HOUR_MS, 3 * DAY_MS))
    ring_devices = pools.add_devices(world.sample_user_agents(rng, 2 * k))
    device = ring_devices[2 * inc + np.where(sub, rank % 2, 0)]
    country = ctx.pop.country[accounts[acc_start]]
    ips = pools.add_ips(world.residential_ips(rng, country), country)
    target_cat = rng.choice(CHEAP_CATEGORIES, size=k).astype(np.int8)
    target = ctx.cat.sample_cheap(rng, target_cat)
    plan = Plan(
        user=accounts[acc], t0=t_inc[inc] + rank * rng.integers(10 * MINUTE_MS, 10 * HOUR_MS, n),
        device=device, ip=ips[inc], payment=pools.add_payments(len(accounts))[acc],
        focus=target_cat[inc], scenario=np.full(n, _code("fake_reviews"), np.int8), subtle=sub,
        browse=1 + rng.poisson(0.7, n), p_add=np.zeros(n), pinned=target[inc],
        p_checkout=np.ones(n), reviews=np.ones(n, np.int64), speed=np.full(n, 0.5),
        logout=(rng.random(n) < 0.2).astype(np.int64),
    )
    batch = ctx.render(plan)
    reviews = by_type(batch, "review")
    s = batch.session[reviews]
    batch.quantity[reviews] = np.where(sub[s] & (rng.random(len(s)) < 0.3), 4, 5)
    template = np.where(sub, rng.integers(0, len(tx.FAKE_TEMPLATES), n),
                        rng.integers(0, len(tx.FAKE_TEMPLATES), k)[inc])
    texts = tx.fake_review_texts(rng, template[s], sub[s])
    batch.text[reviews] = pools.add_texts(texts) + np.arange(len(reviews))
    return plan, batch


def coupon_abuse(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """Fresh accounts opened minutes apart on one device, each buying a little with the
    new-customer code, some guessing codes first, all paying with one card. Subtle: two or
    three accounts on two devices of one home network, one code each, their own cards."""
    rng, pools = ctx.rng, ctx.pools
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (4, 12), (2, 3))
    k = len(subtle_i)
    t0 = ctx.starts(k, 12 * HOUR_MS)[inc] + rank * rng.integers(
        3 * MINUTE_MS, 40 * MINUTE_MS, n
    )
    users = _fresh(ctx, n, t0, (MINUTE_MS, 10 * MINUTE_MS))
    ring_devices = pools.add_devices(world.sample_user_agents(rng, 2 * k))
    country = ctx.pop.country[users[np.searchsorted(inc, np.arange(k))]]
    ips = pools.add_ips(world.residential_ips(rng, country), country)
    ring_card = pools.add_payments(k)
    focus = rng.choice(cat.N_CATEGORIES, size=n, p=cat.ATTENTION).astype(np.int8)
    plan = Plan(
        user=users, t0=t0, device=ring_devices[2 * inc + np.where(sub, rank % 2, 0)],
        ip=ips[inc],  # the home network of the ring's first account
        payment=np.where(sub, pools.add_payments(n), ring_card[inc]), focus=focus,
        scenario=np.full(n, _code("coupon_abuse"), np.int8), subtle=sub,
        browse=1 + rng.poisson(2.0, n), p_add=np.full(n, 0.3),
        pinned=ctx.cat.sample(rng, focus), p_checkout=np.ones(n),
        coupons=np.where(sub, 1, 1 + np.minimum(rng.poisson(1.5, n), 4)),
        coupon_code=np.full(n, tx.WELCOME_CODE), speed=np.full(n, 0.6),
    )
    batch = ctx.render(plan)
    # Guessed codes first, the farmed welcome code last (the one that works).
    coupons = by_type(batch, "coupon_apply")
    s = batch.session[coupons]
    r = ranks_within(s)
    last = r == np.bincount(s, minlength=n)[s] - 1
    guess = GUESSED_CODES[rng.integers(0, len(GUESSED_CODES), len(s))]
    batch.text[coupons] = tx.coupon_text(np.where(last, tx.WELCOME_CODE, guess))
    return plan, batch


def inventory_hoarding(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """Whole shelves go into the cart (tens of units a line), sit there, and are removed
    again without buying. Subtle: a few units a line, part of it bought."""
    rng, pop, pools = ctx.rng, ctx.pop, ctx.pools
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (1, 2))
    k = len(subtle_i)
    t_inc = ctx.starts(k, 6 * HOUR_MS)
    fresh = ~subtle_i & (rng.random(k) < 0.5)
    users = np.empty(k, dtype=np.int64)
    users[fresh] = _fresh(ctx, int(fresh.sum()), t_inc[fresh], (HOUR_MS, 10 * DAY_MS))
    users[~fresh] = ctx.claim_users(int((~fresh).sum()))
    t_inc = np.maximum(t_inc, pop.active_from_ms[users])
    country = pop.country[users]
    new_dev = pools.add_devices(world.sample_user_agents(rng, k))
    new_ip = pools.add_ips(world.residential_ips(rng, country), country)
    device = np.where(fresh, new_dev, pop.dev_start[users])
    ip = np.where(fresh, new_ip, pop.ip_start[users])
    card = np.where(fresh, pools.add_payments(k), pop.pay_start[users])
    plan = Plan(
        user=users[inc], t0=t_inc[inc] + rank * rng.integers(2 * HOUR_MS, 30 * HOUR_MS, n),
        device=device[inc], ip=ip[inc], payment=card[inc],
        focus=rng.choice([0, 2, 9, 11], size=n).astype(np.int8),
        scenario=np.full(n, _code("inventory_hoarding"), np.int8), subtle=sub,
        browse=3 + rng.poisson(6.0, n), p_add=np.full(n, 0.7), p_search=np.full(n, 0.2),
        qty=np.where(sub, 5.0, 25.0), p_remove=np.where(sub, 0.6, 0.95),
        p_checkout=np.where(sub, 0.4, 0.1), p_focus=np.full(n, 0.9),
    )
    batch = ctx.render(plan)
    wait = np.where(sub, rng.integers(5, 15, n), rng.integers(10, 25, n)) * MINUTE_MS
    shift_after_browse(batch, wait)
    return plan, batch
