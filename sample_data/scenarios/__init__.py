"""Anomaly scenarios: each turns a number of sessions into labelled abuse of one kind.

Every scenario is a function ``(ctx, n_sessions) -> (plan, batch)`` that renders exactly
``n_sessions`` sessions, a ``subtle_share`` of its incidents in a quieter variant.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sample_data.scenarios.account import account_takeover, card_testing, refund_abuse
from sample_data.scenarios.base import ANOMALOUS_TYPES, FLAG_TABLE, Context
from sample_data.scenarios.history import compromised_merchant, device_farm, spending_break
from sample_data.scenarios.shop import coupon_abuse, fake_reviews, inventory_hoarding, scraping_bot
from sample_data.sessions import Batch, Plan

Scenario = Callable[[Context, int], tuple[Plan, Batch]]
REGISTRY: dict[str, Scenario] = {
    "account_takeover": account_takeover,
    "card_testing": card_testing,
    "scraping_bot": scraping_bot,
    "fake_reviews": fake_reviews,
    "coupon_abuse": coupon_abuse,
    "refund_abuse": refund_abuse,
    "inventory_hoarding": inventory_hoarding,
    "compromised_merchant": compromised_merchant,
    "device_farm": device_farm,
    "spending_break": spending_break,
}

__all__ = ["ANOMALOUS_TYPES", "FLAG_TABLE", "REGISTRY", "Context", "allocate_sessions"]


def allocate_sessions(n_normal: int, rate: float, names: tuple[str, ...]) -> dict[str, int]:
    """Anomalous sessions per scenario so that they make ``rate`` of all sessions, split as
    evenly as whole numbers allow (at least one each while the rate is above zero)."""
    if rate <= 0 or not names:
        return {name: 0 for name in names}
    total = max(int(round(rate * n_normal / (1.0 - rate))), len(names))
    base, extra = divmod(total, len(names))
    return {name: base + (i < extra) for i, name in enumerate(names)}


def scenario_codes(names: tuple[str, ...]) -> np.ndarray:
    """Label codes (1 + position in config.SCENARIOS) of the given scenarios."""
    from sample_data.config import SCENARIOS

    return np.array([SCENARIOS.index(n) + 1 for n in names], dtype=np.int8)
