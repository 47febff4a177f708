"""Genuine customers' sessions: how many, when (local daily and weekly rhythm), from where."""

from __future__ import annotations

import numpy as np

import sample_data.catalogue as cat
from sample_data.personas import HOURLY, PERSONAS, WEEKLY, P
from sample_data.population import DAY_MS, HOUR_MS, Population
from sample_data.sessions import Plan
from sample_data.world import COUNTRY_OFFSET_H

MAX_BROWSE = 400
"""Longest genuine browse (views + searches) in one session; power users come close."""


def local_times(
    rng: np.random.Generator,
    from_ms: np.ndarray,
    days: int,
    offset_h: np.ndarray,
    start_weekday: int,
    night: np.ndarray | float = 0.0,
    hours: np.ndarray = HOURLY,
) -> np.ndarray:
    """Session starts (ms since the window start, UTC) drawn from a local daily and weekly
    rhythm; ``night`` is the share of sessions at a uniformly random hour instead."""
    n = len(from_ms)
    first_day = from_ms // DAY_MS
    day = np.empty(n, dtype=np.int64)
    todo = np.arange(n)
    # Weekday by rejection: keep a drawn day with probability WEEKLY[weekday] / max(WEEKLY).
    for _ in range(50):
        if not len(todo):
            break
        lo = first_day[todo]
        cand = lo + np.floor(rng.random(len(todo)) * (days - lo)).astype(np.int64)
        keep = rng.random(len(todo)) * WEEKLY.max() < WEEKLY[(cand + start_weekday) % 7]
        day[todo[keep]] = cand[keep]
        todo = todo[~keep]
    day[todo] = first_day[todo]
    cdf = np.cumsum(hours) / hours.sum()
    hour = np.searchsorted(cdf, rng.random(n), side="right").astype(np.float64)
    flat = rng.random(n) < night
    hour[flat] = rng.integers(0, 24, int(flat.sum()))
    local_ms = day * DAY_MS + ((hour + rng.random(n)) * HOUR_MS).astype(np.int64)
    utc = local_ms - (offset_h * HOUR_MS).astype(np.int64)
    window = days * DAY_MS
    # Wrap what the time zone pushed out of the window back into it (keeps counts exact).
    utc = np.mod(utc, window)
    return np.maximum(utc, from_ms)


def normal_plan(
    rng: np.random.Generator,
    pop: Population,
    days: int,
    start_weekday: int,
    activity: float,
) -> Plan:
    """Every session of every genuine customer (personas >= 0)."""
    genuine = np.flatnonzero(pop.persona >= 0)
    per = pop.persona[genuine]
    active_days = days - pop.active_from_ms[genuine] / DAY_MS
    lam = P["rate"][per] * pop.activity[genuine] * active_days * activity
    n_sessions = rng.poisson(lam)
    user = np.repeat(genuine, n_sessions)
    n = len(user)
    p = pop.persona[user]
    t0 = local_times(rng, pop.active_from_ms[user], days, COUNTRY_OFFSET_H[pop.country[user]],
                     start_weekday, P["night"][p])
    # Sessions in start order: the events then come out nearly in time order, which makes the
    # final sort and every gather by it cheap.
    order = np.argsort(t0, kind="stable")
    user, p, t0 = user[order], p[order], t0[order]

    # Where from: mostly the first device and home IP; new phones and trips change that.
    dev = pop.dev_start[user] + np.where(
        rng.random(n) < 0.7, 0, rng.integers(0, 1 << 30, n) % pop.dev_count[user]
    )
    switched = (t0 >= pop.new_dev_at_ms[user]) & (rng.random(n) < 0.85)
    dev = np.where(switched, pop.new_dev[user], dev)
    ip = pop.ip_start[user] + np.where(
        rng.random(n) < 0.75, 0, rng.integers(0, 1 << 30, n) % pop.ip_count[user]
    )
    abroad = (t0 >= pop.trip_from_ms[user]) & (t0 < pop.trip_to_ms[user])
    ip = np.where(abroad, pop.trip_ip[user], ip)
    dev = np.where(abroad & (pop.trip_dev[user] >= 0), pop.trip_dev[user], dev)
    payment = pop.pay_start[user] + np.where(
        rng.random(n) < 0.8, 0, rng.integers(0, 1 << 30, n) % pop.pay_count[user]
    )
    r = rng.random(n)
    fav = pop.fav[user]
    focus = np.where(r < 0.55, fav[:, 0], np.where(r < 0.8, fav[:, 1], rng.choice(
        cat.N_CATEGORIES, size=n, p=cat.ATTENTION))).astype(np.int8)

    # How much: Poisson counts around the persona's means; browse length is over-dispersed
    # (gamma-Poisson) so that a few sessions are long, as in real click streams.
    browse = 1 + rng.poisson(P["browse"][p] * rng.gamma(2.0, 0.5, n))
    account = (rng.random(n) < P["p_account"][p] + 0.08 * abroad).astype(np.int64)
    coupons = (rng.random(n) < P["p_coupon"][p]).astype(np.int64)
    coupons += (coupons > 0) & (rng.random(n) < 0.15)  # a second code after the first fails
    is_new = pop.active_from_ms[user] > 0
    welcome = is_new & (t0 - pop.active_from_ms[user] < 2 * DAY_MS) & (coupons > 0)
    names = np.array(PERSONAS)
    shared = names[p] == "household"
    return Plan(
        user=user, t0=t0, device=dev, ip=ip, payment=payment, focus=focus,
        scenario=np.zeros(n, np.int8), subtle=np.zeros(n, bool),
        login=((rng.random(n) < 0.75) | (account > 0)).astype(np.int64),
        account=account, account_first=rng.integers(0, 3, n),
        browse=np.minimum(browse, MAX_BROWSE),
        p_search=P["p_search"][p], p_add=P["p_add"][p], p_remove=P["p_remove"][p],
        p_checkout=P["p_checkout"][p], coupons=coupons,
        coupon_code=np.where(welcome | (shared & (rng.random(n) < 0.5)), 1, -1),
        payfail=np.minimum(rng.poisson(P["payfail"][p]), 4),
        reviews=rng.poisson(P["reviews"][p]),
        refund=(rng.random(n) < P["p_refund"][p]).astype(np.int64),
        logout=(rng.random(n) < 0.35).astype(np.int64),
        speed=P["speed"][p] * rng.lognormal(0.0, 0.3, n),
        qty=P["qty"][p] * rng.lognormal(0.0, 0.3, n),
        pricey=P["pricey"][p] > 0,
    )
