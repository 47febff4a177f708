"""What every scenario shares: the generation context, incident splitting, flagged event types."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sample_data.catalogue import Catalogue
from sample_data.config import SCENARIOS
from sample_data.personas import CORE_PERSONAS, PERSONAS
from sample_data.population import DAY_MS, Pools, Population
from sample_data.sessions import Batch, Plan, render
from sample_data.world import ET

# The events that *are* the abuse in a scenario's sessions; the rest of those sessions (views,
# logouts, ...) are labelled normal at event level.
ANOMALOUS_TYPES: dict[str, tuple[str, ...]] = {
    "account_takeover": ("login", "password_change", "address_change", "payment_method_add",
                         "add_to_cart", "checkout", "payment_attempt", "payment_failed",
                         "purchase"),
    "card_testing": ("payment_method_add", "payment_attempt", "payment_failed", "purchase"),
    "scraping_bot": ("login", "search", "view"),
    "fake_reviews": ("add_to_cart", "checkout", "payment_attempt", "purchase", "review"),
    "coupon_abuse": ("coupon_apply", "checkout", "payment_attempt", "purchase"),
    "refund_abuse": ("purchase", "refund_request"),
    "inventory_hoarding": ("add_to_cart", "remove_from_cart"),
    # History scenarios: the sessions look ordinary; the order is what is fraudulent.
    "compromised_merchant": ("add_to_cart", "checkout", "payment_attempt", "payment_failed",
                             "purchase"),
    "device_farm": ("login", "add_to_cart", "checkout", "payment_attempt", "payment_failed",
                    "purchase"),
    "spending_break": ("add_to_cart", "checkout", "payment_attempt", "payment_failed",
                       "purchase"),
}
FLAG_TABLE = np.zeros((len(SCENARIOS) + 1, len(ET)), dtype=bool)
for _code, _name in enumerate(SCENARIOS, start=1):
    FLAG_TABLE[_code, [ET[e] for e in ANOMALOUS_TYPES[_name]]] = True
"""FLAG_TABLE[scenario_code, event_type] is True where that event is the injected abuse."""


@dataclass
class Context:
    """Shared state of one generation run (the scenarios add accounts, devices, IPs, texts)."""

    rng: np.random.Generator
    pop: Population
    pools: Pools
    cat: Catalogue
    days: int
    start_weekday: int
    subtle_share: float
    claimed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    normal: list[tuple[Plan, Batch]] = field(default_factory=list)
    """The genuine sessions rendered so far: the history that history scenarios read."""
    truth: list[dict[str, object]] = field(default_factory=list)
    """Entity-level incidents and hard negatives (kind, entity, index, start_ms, end_ms, ...),
    turned into ``GeneratedData.truth`` with the entities' string ids."""

    @property
    def window_ms(self) -> int:
        return self.days * DAY_MS

    def starts(self, k: int, margin_ms: int) -> np.ndarray:
        """``k`` incident start times, leaving ``margin_ms`` (at most half the window) for
        the incident to unfold before the window ends."""
        return self.rng.integers(0, max(self.window_ms - margin_ms, self.window_ms // 2), k)

    def claim_users(self, k: int, eligible: np.ndarray | None = None) -> np.ndarray:
        """``k`` ordinary customers (core personas) not yet involved in another incident,
        among ``eligible`` (a mask over users) when given; repeats only when a tiny population
        runs out."""
        if len(self.claimed) < self.pop.n:
            self.claimed = np.concatenate(
                [self.claimed, np.zeros(self.pop.n - len(self.claimed), bool)]
            )
        core = np.isin(self.pop.persona, [PERSONAS.index(p) for p in CORE_PERSONAS])
        if eligible is not None and (core & eligible & ~self.claimed).sum() >= k:
            core = core & eligible
        free = np.flatnonzero(core & ~self.claimed)
        if len(free) >= k:
            picked = self.rng.choice(free, size=k, replace=False)
        else:
            picked = self.rng.choice(np.flatnonzero(core), size=k, replace=True)
        self.claimed[picked] = True
        return np.sort(picked) if k else picked.astype(np.int64)

    def render(self, plan: Plan) -> Batch:
        return render(plan, self.rng, self.cat, self.pools)


def split_incidents(
    ctx: Context,
    n_sessions: int,
    sizes: tuple[int, int],
    subtle_sizes: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split exactly ``n_sessions`` sessions into incidents of ``sizes`` (low, high) sessions,
    ``subtle_sizes`` for the subtle ones (``ctx.subtle_share`` of the incidents).

    Returns (subtle flag per incident, incident of each session, rank of each session in its
    incident, subtle flag per session).
    """
    rng = ctx.rng
    m = max(n_sessions, 1)
    subtle = rng.random(m) < ctx.subtle_share
    low, high = sizes
    s_low, s_high = subtle_sizes or sizes
    size = rng.integers(np.where(subtle, s_low, low), np.where(subtle, s_high, high) + 1)
    cum = np.cumsum(size)
    k = int(np.searchsorted(cum, n_sessions)) + 1 if n_sessions else 0
    size, subtle = size[:k].copy(), subtle[:k]
    if k:
        size[-1] -= cum[k - 1] - n_sessions
    if k > 1 and size[-1] < np.where(subtle[-1], s_low, low):
        # A cut-off last incident joins the one before, so every incident keeps its shape.
        size[-2] += size[-1]
        size, subtle = size[:-1], subtle[:-1]
        k -= 1
    incident = np.repeat(np.arange(k), size)
    rank = np.arange(n_sessions) - (np.cumsum(size) - size)[incident]
    return subtle, incident, rank, subtle[incident]


def ranks_within(session: np.ndarray) -> np.ndarray:
    """Rank of each position among the positions of the same session (``session`` sorted)."""
    if not len(session):
        return np.zeros(0, dtype=np.int64)
    first = np.ones(len(session), dtype=bool)
    first[1:] = session[1:] != session[:-1]
    starts = np.flatnonzero(first)
    return np.arange(len(session)) - starts[np.cumsum(first) - 1]


def by_type(batch: Batch, *names: str) -> np.ndarray:
    """Positions of events of the given types."""
    return np.flatnonzero(np.isin(batch.etype, [ET[n] for n in names]))


def shift_after_browse(batch: Batch, wait_ms: np.ndarray) -> None:
    """Delay every event after a session's browsing (removals, checkout, ...) by ``wait_ms``
    of its session: the cart sits untouched for a while."""
    late = ~np.isin(batch.etype, [ET["login"], ET["view"], ET["search"], ET["add_to_cart"],
                                  ET["password_change"], ET["address_change"]])
    batch.t[late] += wait_ms[batch.session[late]]
