"""Turn session plans into events, vectorised over all sessions at once.

A plan says, per session, who, when, from where, and how many steps of each kind (browse,
cart removals, checkout, coupons, payments, reviews, ...). ``render`` lays the steps out in a
fixed slot order, expands each step into its events (a "view then add" step is two events) and
fills items, amounts, quantities, texts and timestamps, all with numpy array operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

import sample_data.text as tx
from sample_data.catalogue import ATTENTION, N_CATEGORIES, Catalogue
from sample_data.population import Pools
from sample_data.world import ET

PATTERNS: tuple[tuple[str, ...], ...] = (
    ("login",),  # 0
    ("password_change",),  # 1
    ("address_change",),  # 2
    ("payment_method_add",),  # 3
    ("search",),  # 4
    ("view",),  # 5
    ("view", "add_to_cart"),  # 6
    ("remove_from_cart",),  # 7
    ("checkout",),  # 8
    ("coupon_apply",),  # 9
    ("payment_attempt", "payment_failed"),  # 10
    ("payment_attempt", "purchase"),  # 11
    ("payment_method_add", "payment_attempt", "payment_failed"),  # 12
    ("payment_method_add", "payment_attempt", "purchase"),  # 13
    ("review",),  # 14
    ("refund_request",),  # 15
    ("logout",),  # 16
)
PATTERN_LEN = np.array([len(p) for p in PATTERNS])
PATTERN_CODES = np.array([[ET[e] for e in p] + [-1] * (3 - len(p)) for p in PATTERNS], np.int8)
SEARCH, VIEW, VIEW_ADD, CARD_FAIL, CARD_OK = 4, 5, 6, 12, 13
# Slots in session order; each slot's default step pattern.
SLOTS = ("login", "account", "browse", "remove", "checkout", "coupon", "payfail", "pay",
         "cardtest", "review", "refund", "logout")
SLOT_PATTERN = np.array([0, 1, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16])

# Median seconds spent before each event type (the time since the previous event).
GAP_S = {"login": 4, "search": 9, "view": 22, "add_to_cart": 6, "remove_from_cart": 9,
         "checkout": 18, "purchase": 3, "payment_attempt": 14, "payment_failed": 2,
         "payment_method_add": 35, "coupon_apply": 11, "review": 80, "refund_request": 40,
         "password_change": 30, "address_change": 40, "logout": 8}
GAP_MS = np.array([GAP_S[e] * 1000.0 for e in ET], dtype=np.float64)
GAP_SIGMA = 0.7
_ATTENTION_CDF = np.cumsum(ATTENTION)


@dataclass
class Plan:
    """Per-session arrays (length n). Counts are resolved against the cart in ``render``:
    removals, checkout, coupons and payments only happen where a cart allows them."""

    user: np.ndarray
    t0: np.ndarray  # session start, ms since the window start
    device: np.ndarray
    ip: np.ndarray
    payment: np.ndarray
    focus: np.ndarray  # category most views fall in
    scenario: np.ndarray  # 0 = normal, else 1 + index in config.SCENARIOS
    subtle: np.ndarray
    login: np.ndarray = field(default=None)  # type: ignore[arg-type]
    account: np.ndarray = field(default=None)  # type: ignore[arg-type]
    account_first: np.ndarray = field(default=None)  # type: ignore[arg-type]
    browse: np.ndarray = field(default=None)  # type: ignore[arg-type]
    p_search: np.ndarray = field(default=None)  # type: ignore[arg-type]
    p_add: np.ndarray = field(default=None)  # type: ignore[arg-type]
    pinned: np.ndarray = field(default=None)  # type: ignore[arg-type]
    p_remove: np.ndarray = field(default=None)  # type: ignore[arg-type]
    p_checkout: np.ndarray = field(default=None)  # type: ignore[arg-type]
    coupons: np.ndarray = field(default=None)  # type: ignore[arg-type]
    coupon_code: np.ndarray = field(default=None)  # type: ignore[arg-type]
    payfail: np.ndarray = field(default=None)  # type: ignore[arg-type]
    cardtest: np.ndarray = field(default=None)  # type: ignore[arg-type]
    p_cardfail: np.ndarray = field(default=None)  # type: ignore[arg-type]
    reviews: np.ndarray = field(default=None)  # type: ignore[arg-type]
    refund: np.ndarray = field(default=None)  # type: ignore[arg-type]
    logout: np.ndarray = field(default=None)  # type: ignore[arg-type]
    speed: np.ndarray = field(default=None)  # type: ignore[arg-type]
    regular_ms: np.ndarray = field(default=None)  # type: ignore[arg-type]
    jitter: np.ndarray = field(default=None)  # type: ignore[arg-type]
    qty: np.ndarray = field(default=None)  # type: ignore[arg-type]
    pricey: np.ndarray = field(default=None)  # type: ignore[arg-type]
    p_focus: np.ndarray = field(default=None)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        n = len(self.user)
        defaults = {
            "login": (1, np.int64), "account": (0, np.int64), "account_first": (0, np.int64),
            "browse": (0, np.int64), "p_search": (0.3, float), "p_add": (0.1, float),
            "pinned": (-1, np.int64), "p_remove": (0.0, float), "p_checkout": (0.0, float),
            "coupons": (0, np.int64), "coupon_code": (-1, np.int64), "payfail": (0, np.int64),
            "cardtest": (0, np.int64), "p_cardfail": (0.8, float), "reviews": (0, np.int64),
            "refund": (0, np.int64), "logout": (0, np.int64), "speed": (1.0, float),
            "regular_ms": (0.0, float), "jitter": (0.0, float), "qty": (0.0, float),
            "pricey": (False, bool), "p_focus": (0.75, float),
        }
        for name, (value, dtype) in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, np.full(n, value, dtype=dtype))

    def __len__(self) -> int:
        return len(self.user)


def concat_plans(plans: list[Plan]) -> Plan:
    return Plan(**{
        f.name: np.concatenate([getattr(p, f.name) for p in plans]) for f in fields(Plan)
    })


@dataclass
class Batch:
    """Events of rendered sessions, session-major, in time order within each session.

    ``session`` indexes the plan's sessions. Missing values: -1 for indices and quantity,
    NaN for amount. ``quantity`` of a review holds its star rating (1-5).
    """

    session: np.ndarray
    etype: np.ndarray
    t: np.ndarray
    item: np.ndarray
    category: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray
    payment: np.ndarray
    text: np.ndarray

    def __len__(self) -> int:
        return len(self.session)


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner and rank of every item when owner ``i`` has ``counts[i]`` items, owner-major."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - np.repeat(starts, counts)


def render(plan: Plan, rng: np.random.Generator, cat: Catalogue, pools: Pools) -> Batch:
    """All events of all planned sessions."""
    n = len(plan)
    # Browse steps first: they decide the cart, which decides everything after it.
    b_sess, b_rank = expand(plan.browse)
    u = rng.random(len(b_sess))
    kind = np.where(u < plan.p_search[b_sess], SEARCH, VIEW)
    kind[(kind == VIEW) & (rng.random(len(b_sess)) < plan.p_add[b_sess])] = VIEW_ADD
    pinned_first = (b_rank == 0) & (plan.pinned[b_sess] >= 0)
    kind[pinned_first] = VIEW_ADD
    n_add = np.bincount(b_sess[kind == VIEW_ADD], minlength=n)
    n_remove = rng.binomial(n_add, plan.p_remove)
    checkout = ((n_add > n_remove) & (rng.random(n) < plan.p_checkout)).astype(np.int64)

    counts = np.stack([
        plan.login, plan.account, plan.browse, n_remove, checkout, plan.coupons * checkout,
        plan.payfail * checkout, checkout, plan.cardtest, plan.reviews, plan.refund, plan.logout,
    ], axis=1)
    flat_owner, unit_rank = expand(counts.ravel())
    unit_sess, unit_slot = np.divmod(flat_owner, len(SLOTS))
    pattern = SLOT_PATTERN[unit_slot]
    pattern[unit_slot == 2] = kind
    is_acct = unit_slot == 1
    pattern[is_acct] = 1 + (plan.account_first[unit_sess[is_acct]] + unit_rank[is_acct]) % 3
    is_card = unit_slot == 8
    pattern[is_card & (rng.random(len(unit_sess)) >= plan.p_cardfail[unit_sess])] = CARD_OK

    ev_unit, ev_rank = expand(PATTERN_LEN[pattern])
    etype = PATTERN_CODES[pattern[ev_unit], ev_rank]
    sess = unit_sess[ev_unit]
    m = len(sess)
    item = np.full(m, -1, np.int64)
    category = np.full(m, -1, np.int8)
    amount = np.full(m, np.nan)
    quantity = np.full(m, -1, np.int32)
    text = np.full(m, -1, np.int64)
    payment = np.full(m, -1, np.int64)

    # Browsing: views land in the session's focus category, searches name it.
    view = np.flatnonzero(etype == ET["view"])
    vs = sess[view]
    view_cat = _categories(rng, plan, vs)
    items = cat.sample(rng, view_cat)
    pricey = plan.pricey[vs]
    if pricey.any():
        items[pricey] = cat.sample_pricey(rng, view_cat[pricey])
    first_view = unit_rank[ev_unit[view]] == 0  # the first browse step of its session
    items = np.where(first_view & (plan.pinned[vs] >= 0), plan.pinned[vs], items)
    item[view] = items
    amount[view] = cat.price[items]
    search = np.flatnonzero(etype == ET["search"])
    search_cat = _categories(rng, plan, sess[search])
    text[search] = tx.search_text(rng, search_cat)
    category[search] = search_cat

    # Cart: an add repeats the item just viewed; removals take back the last lines added.
    add = np.flatnonzero(etype == ET["add_to_cart"])
    item[add] = item[add - 1]
    quantity[add] = 1 + rng.poisson(plan.qty[sess[add]])
    amount[add] = cat.price[item[add]] * quantity[add]
    add_first = np.cumsum(n_add) - n_add
    rem = np.flatnonzero(etype == ET["remove_from_cart"])
    rs = sess[rem]
    line = add[add_first[rs] + n_add[rs] - 1 - unit_rank[ev_unit[rem]]]
    item[rem], quantity[rem], amount[rem] = item[line], quantity[line], amount[line]
    cart = np.bincount(sess[add], amount[add], n) - np.bincount(rs, amount[rem], n)
    units = np.bincount(sess[add], quantity[add], n) - np.bincount(rs, quantity[rem], n)
    cart = np.round(np.maximum(cart, 0.0), 2)

    # Checkout: coupons take 10-20% off; every payment step carries the order total.
    has_coupon = (plan.coupons > 0) & (checkout > 0)
    discount = np.round(np.where(has_coupon, cart * rng.uniform(0.1, 0.2, n), 0.0), 2)
    order_total = cart - discount
    is_coupon = etype == ET["coupon_apply"]
    cs = sess[is_coupon]
    code = np.where(plan.coupon_code[cs] >= 0, plan.coupon_code[cs],
                    rng.integers(0, tx.N_NORMAL_CODES, len(cs)))
    text[is_coupon] = tx.coupon_text(code)
    amount[is_coupon] = discount[cs]
    is_pay = np.isin(etype, [ET["checkout"], ET["payment_attempt"], ET["payment_failed"],
                             ET["purchase"]])
    amount[is_pay] = order_total[sess[is_pay]]
    quantity[etype == ET["purchase"]] = units[sess[etype == ET["purchase"]]]
    pay_steps = is_pay & (etype != ET["checkout"])
    payment[pay_steps] = plan.payment[sess[pay_steps]]
    # A new payment method is a new instrument; card tests pay with the card just added.
    pm_add = np.flatnonzero(etype == ET["payment_method_add"])
    payment[pm_add] = pools.add_payments(len(pm_add))
    card_step = np.flatnonzero(is_card[ev_unit] & (ev_rank > 0))
    payment[card_step] = payment[card_step - ev_rank[card_step]]

    # Reviews: J-shaped ratings, natural text about an item of the session's category.
    rev = np.flatnonzero(etype == ET["review"])
    rv_s = sess[rev]
    rv_item = np.where(plan.pinned[rv_s] >= 0, plan.pinned[rv_s],
                       cat.sample(rng, _categories(rng, plan, rv_s)))
    item[rev] = rv_item
    quantity[rev] = tx.review_ratings(rng, len(rev))
    if len(rev):
        text[rev] = pools.add_texts(
            tx.review_texts(rng, cat.category[rv_item], quantity[rev])
        ) + np.arange(len(rev))
    # Refunds: the session's first cart line if any, else an earlier order of its category.
    ref = np.flatnonzero(etype == ET["refund_request"])
    fs = sess[ref]
    earlier = cat.sample(rng, _categories(rng, plan, fs))
    first_line = add[np.minimum(add_first[fs], max(len(add) - 1, 0))] if len(add) else earlier
    ref_item = np.where(plan.pinned[fs] >= 0, plan.pinned[fs],
                        np.where(n_add[fs] > 0, item[first_line], earlier))
    item[ref] = ref_item
    quantity[ref] = 1
    amount[ref] = cat.price[ref_item]
    payment[ref] = plan.payment[fs]

    has_item = item >= 0
    category[has_item] = cat.category[item[has_item]]
    return Batch(session=sess, etype=etype, t=_times(rng, plan, sess, etype), item=item,
                 category=category, amount=amount, quantity=quantity, payment=payment,
                 text=text)


def _categories(rng: np.random.Generator, plan: Plan, sess: np.ndarray) -> np.ndarray:
    """Per event of sessions ``sess``: the session's focus category with probability
    ``p_focus``, else one by shoppers' attention."""
    other = np.searchsorted(_ATTENTION_CDF, rng.random(len(sess)), side="right")
    keep = rng.random(len(sess)) < plan.p_focus[sess]
    return np.where(keep, plan.focus[sess], np.minimum(other, N_CATEGORIES - 1)).astype(np.int8)


def _times(
    rng: np.random.Generator, plan: Plan, sess: np.ndarray, etype: np.ndarray
) -> np.ndarray:
    """Event times: log-normal think times per event type, or a metronome for automation."""
    m = len(sess)
    gap = GAP_MS[etype] * plan.speed[sess] * np.exp(GAP_SIGMA * rng.standard_normal(m))
    regular = plan.regular_ms[sess]
    is_regular = regular > 0
    if is_regular.any():
        jitter = plan.jitter[sess[is_regular]] * rng.standard_normal(int(is_regular.sum()))
        gap[is_regular] = regular[is_regular] * np.clip(1.0 + jitter, 0.2, 3.0)
    gap = np.maximum(np.round(gap), 50.0).astype(np.int64)
    first = np.ones(m, dtype=bool)
    first[1:] = sess[1:] != sess[:-1]
    gap[first] = 0
    total = np.cumsum(gap)
    return plan.t0[sess] + total - total[first][np.cumsum(first) - 1]


RENDER_PARTS = 2
"""Genuine sessions are rendered in this many contiguous parts, one thread each. Fixed (not the
machine's core count), so the same seed gives the same bytes everywhere."""
_LOCAL_BASE = 1 << 40
"""Where part k's new payment and text ids start ((k + 1) * this, above every existing id)
until they are renumbered."""


def slice_plan(plan: Plan, start: int, stop: int) -> Plan:
    """Sessions ``start:stop`` of ``plan``."""
    return Plan(**{f.name: getattr(plan, f.name)[start:stop] for f in fields(Plan)})


def render_parts(
    plan: Plan, rng: np.random.Generator, cat: Catalogue, pools: Pools
) -> list[tuple[Plan, Batch]]:
    """``render`` of ``plan`` in RENDER_PARTS parts on as many threads (numpy releases the GIL
    in bulk array work, so on 2 cores the parts render faster than one pass).

    Each part draws from its own child of ``rng`` and registers new payment ids and texts in a
    private pool numbered from ``(k + 1) * 2**40``; afterwards the parts' new ids are renumbered to
    follow one another in part order, exactly as one sequential pass would hand them out.
    """
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, len(plan), RENDER_PARTS + 1).astype(np.int64)
    plans = [slice_plan(plan, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:],
                                                                 strict=True)]
    rngs = rng.spawn(RENDER_PARTS)
    starts = [(k + 1) * _LOCAL_BASE for k in range(RENDER_PARTS)]
    local = [Pools(texts=[], n_payments=start, n_texts=start) for start in starts]
    with ThreadPoolExecutor(max_workers=RENDER_PARTS) as executor:
        batches = list(executor.map(render, plans, rngs, [cat] * RENDER_PARTS, local))
    for start, batch, own in zip(starts, batches, local, strict=True):
        _renumber(batch.payment, start, pools.n_payments)
        _renumber(batch.text, start, pools.n_texts)
        pools.add_payments(own.n_payments - start)
        for texts in own.texts:
            pools.add_texts(texts)
    return list(zip(plans, batches, strict=True))


def _renumber(ids: np.ndarray, local_start: int, global_start: int) -> None:
    """Move ids at or above ``local_start`` (a part's new ones) to start at ``global_start``."""
    new = ids >= local_start
    ids[new] += global_start - local_start
