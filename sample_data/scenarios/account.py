"""Scenarios about accounts and money: account takeover, card testing, refund abuse."""

from __future__ import annotations

import numpy as np

import sample_data.catalogue as cat
import sample_data.world as world
from sample_data.config import SCENARIOS
from sample_data.normal import local_times
from sample_data.population import DAY_MS, HOUR_MS, MINUTE_MS
from sample_data.scenarios.base import Context, by_type, split_incidents
from sample_data.sessions import Batch, Plan

NIGHT = np.array([5, 6, 6, 6, 5, 4] + [0.3] * 17 + [2.0])
"""Victims' local hours of a takeover: attackers strike while the owner sleeps."""
NC = len(world.COUNTRIES)


def account_takeover(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """A stranger logs into a customer's account from a new device, changes the password,
    address and payment method, then buys resellable, expensive items fast. Subtle: same
    country and the victim's browser, one account change, daytime, moderate speed."""
    rng, pop = ctx.rng, ctx.pop
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (1, 3), (1, 2))
    k = len(subtle_i)
    victim = ctx.claim_users(k)
    home = pop.country[victim]
    abroad = ((home + rng.integers(1, NC, k)) % NC).astype(np.int8)
    country = np.where(subtle_i, home, abroad).astype(np.int8)
    hosting = ~subtle_i & (rng.random(k) < 0.5)
    host_ip, host_country = world.hosting_ips(rng, k)
    ips = ctx.pools.add_ips(np.where(hosting, host_ip, world.residential_ips(rng, country)),
                            np.where(hosting, host_country, country))
    ua = np.where(subtle_i, ctx.pools.ua_of(pop.dev_start[victim]),
                  world.sample_user_agents(rng, k))
    devices = ctx.pools.add_devices(ua)
    offset = world.COUNTRY_OFFSET_H[home]
    night = local_times(rng, pop.active_from_ms[victim], ctx.days, offset, ctx.start_weekday,
                        hours=NIGHT)
    day = local_times(rng, pop.active_from_ms[victim], ctx.days, offset, ctx.start_weekday)
    t_inc = np.where(subtle_i, day, night)
    follow = rank * rng.integers(20 * MINUTE_MS, 8 * HOUR_MS, n)

    first = rank == 0
    focus = rng.choice(cat.HIGH_VALUE_CATEGORIES, size=n).astype(np.int8)
    pinned = cat_sample_pricey(ctx, focus)
    plan = Plan(
        user=victim[inc], t0=np.minimum(t_inc[inc] + follow, ctx.window_ms - 1),
        device=devices[inc], ip=ips[inc], payment=pop.pay_start[victim[inc]], focus=focus,
        scenario=np.full(n, SCENARIOS.index("account_takeover") + 1, np.int8), subtle=sub,
        account=np.where(first, np.where(sub, 1, 3), 0),
        account_first=np.where(sub, rng.integers(1, 3, n), 0),
        browse=1 + rng.poisson(np.where(sub, 4.0, 2.0)), p_search=np.full(n, 0.2),
        p_add=np.where(sub, 0.3, 0.6), pinned=np.where(sub & (rng.random(n) < 0.4), -1, pinned),
        p_checkout=np.where(sub, 0.9, 1.0), payfail=rng.poisson(0.3, n),
        speed=np.where(sub, 0.7, 0.3) * rng.lognormal(0.0, 0.2, n),
        qty=np.where(sub, 0.1, 0.6), pricey=~sub | (rng.random(n) < 0.5),
        p_focus=np.where(sub, 0.6, 0.9),
    )
    return plan, ctx.render(plan)


def card_testing(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """A fresh account adds card after card and fires small payment attempts seconds apart;
    most are declined. Subtle: a compromised customer account, a handful of cards a minute or
    two apart, amounts that look like real baskets."""
    rng, pop = ctx.rng, ctx.pop
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (1, 2))
    k = len(subtle_i)
    t_inc = ctx.starts(k, 4 * HOUR_MS)
    users = np.empty(k, dtype=np.int64)
    country = rng.choice(NC, size=k, p=world.COUNTRY_SHARE).astype(np.int8)
    fresh = ~subtle_i
    users[fresh] = pop.add_fraud_accounts(
        country[fresh], np.maximum(t_inc[fresh] - rng.integers(5 * MINUTE_MS, DAY_MS, k)[fresh], 0)
    )
    users[subtle_i] = ctx.claim_users(int(subtle_i.sum()))
    t_inc = np.maximum(t_inc, pop.active_from_ms[users])
    host_ip, host_country = world.hosting_ips(rng, k)
    ips = ctx.pools.add_ips(np.where(fresh, host_ip, world.residential_ips(rng, country)),
                            np.where(fresh, host_country, country))
    devices = ctx.pools.add_devices(world.sample_user_agents(rng, k))
    plan = Plan(
        user=users[inc], t0=t_inc[inc] + rank * rng.integers(10 * MINUTE_MS, 3 * HOUR_MS, n),
        device=devices[inc], ip=ips[inc], payment=np.full(n, -1, np.int64),
        focus=np.full(n, cat.GIFT_CARDS, np.int8),
        scenario=np.full(n, SCENARIOS.index("card_testing") + 1, np.int8), subtle=sub,
        browse=rng.poisson(np.where(sub, 2.0, 0.5)), p_add=np.zeros(n), p_search=np.full(n, 0.2),
        cardtest=np.where(sub, 4 + rng.poisson(4.0, n), 15 + rng.poisson(25.0, n)),
        p_cardfail=np.where(sub, 0.6, 0.85),
        speed=np.where(sub, 1.5, 0.12) * rng.lognormal(0.0, 0.2, n),
    )
    batch = ctx.render(plan)
    # Testers probe with one tiny amount per session; subtle ones vary a plausible amount.
    steps = by_type(batch, "payment_attempt", "payment_failed", "purchase")
    base = np.round(rng.uniform(0.5, 3.0, n), 2)
    real = np.round(rng.uniform(5.0, 25.0, len(steps)), 2)
    s = batch.session[steps]
    batch.amount[steps] = np.where(sub[s], real, base[s])
    batch.quantity[by_type(batch, "purchase")] = 1
    return plan, batch


def refund_abuse(ctx: Context, n: int) -> tuple[Plan, Batch]:
    """A customer buys and asks for a refund of the same order, again and again, within
    minutes. Subtle: fewer loops, each refund asked in the next visit."""
    rng, pop = ctx.rng, ctx.pop
    subtle_i, inc, rank, sub = split_incidents(ctx, n, (3, 6), (2, 3))
    k = len(subtle_i)
    users = ctx.claim_users(k)
    start = pop.active_from_ms[users] + (
        rng.random(k) * (ctx.window_ms - pop.active_from_ms[users]) * 0.5
    ).astype(np.int64)
    t0 = start[inc] + rank * rng.integers(DAY_MS // 2, 3 * DAY_MS, n)
    t0 = np.where(t0 >= ctx.window_ms, start[inc] + rank * HOUR_MS, t0)
    u = users[inc]
    focus = rng.choice([0, 3, 4, 14], size=n, p=[0.3, 0.35, 0.25, 0.1]).astype(np.int8)
    pinned = cat_sample_pricey(ctx, focus)
    plan = Plan(
        user=u, t0=t0, device=pop.dev_start[u], ip=pop.ip_start[u], payment=pop.pay_start[u],
        focus=focus, scenario=np.full(n, SCENARIOS.index("refund_abuse") + 1, np.int8),
        subtle=sub, browse=1 + rng.poisson(3.0, n), p_add=np.full(n, 0.15), pinned=pinned,
        p_checkout=np.ones(n), refund=np.where(sub, rank > 0, 1).astype(np.int64),
        logout=(rng.random(n) < 0.3).astype(np.int64),
    )
    batch = ctx.render(plan)
    # Subtle loops return the previous visit's order instead of this one's.
    refunds = by_type(batch, "refund_request")
    s = batch.session[refunds]
    late = sub[s]
    prev = pinned[np.maximum(s - 1, 0)]
    batch.item[refunds] = np.where(late, prev, batch.item[refunds])
    batch.amount[refunds] = ctx.cat.price[batch.item[refunds]]
    batch.category[refunds] = ctx.cat.category[batch.item[refunds]]
    return plan, batch


def cat_sample_pricey(ctx: Context, focus: np.ndarray) -> np.ndarray:
    return ctx.cat.sample_pricey(ctx.rng, focus)
