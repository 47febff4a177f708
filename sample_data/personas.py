"""Personas of genuine customers: the parameters of their sessions, one row per persona.

The first five are ordinary shoppers. The rest are legitimate look-alikes: genuine customers
whose habits resemble a fraud scenario (named in ``LOOKALIKE_OF``) but who are labelled normal,
so that no single feature separates the classes.
"""

from __future__ import annotations

import numpy as np

# Columns of PERSONA_TABLE. Per-session counts are Poisson draws around these means.
PARAMS: tuple[str, ...] = (
    "rate",  # sessions per active day
    "browse",  # mean browse steps (search / view) per session
    "p_search",  # share of browse steps that are searches
    "p_add",  # chance a view ends in add_to_cart
    "p_remove",  # chance an added line is removed again
    "p_checkout",  # chance a non-empty cart is checked out (else abandoned)
    "p_coupon",  # chance a checkout applies a coupon
    "payfail",  # mean declined payment attempts before the good one
    "reviews",  # mean reviews written per session
    "p_refund",  # chance a session requests a refund of an earlier order
    "p_account",  # chance a session changes password, address or payment method
    "speed",  # multiplier of the time between events (small = fast)
    "qty",  # mean extra units per cart line
    "pricey",  # 1 = picks the expensive items of a category
    "p_travel",  # chance the user travels abroad once in the window
    "p_new_phone",  # chance the user switches to a new phone in the window
    "night",  # share of sessions at a uniformly random hour instead of the daily rhythm
)

PERSONA_TABLE: dict[str, tuple[float, ...]] = {
    #                    rate  brw  srch  add  rem  chk  cpn  pf   rev   rfd   acct  spd  qty
    #                    prc  trv   phone night
    "window_shopper": (0.13, 9, 0.30, 0.06, 0.30, 0.15, 0.05, 0.02, 0.01, 0.003, 0.005, 1.2,
                       0.1, 0, 0.03, 0.04, 0.05),
    "focused_buyer": (0.07, 4, 0.45, 0.35, 0.10, 0.85, 0.05, 0.03, 0.05, 0.01, 0.01, 0.8,
                      0.2, 0, 0.05, 0.05, 0.03),
    "bargain_hunter": (0.15, 11, 0.35, 0.12, 0.35, 0.45, 0.70, 0.05, 0.03, 0.01, 0.01, 1.0,
                       0.3, 0, 0.03, 0.04, 0.05),
    "frequent_reviewer": (0.10, 6, 0.25, 0.15, 0.15, 0.55, 0.10, 0.03, 0.60, 0.01, 0.01, 1.0,
                          0.1, 0, 0.04, 0.04, 0.05),
    "loyal_customer": (0.21, 5, 0.20, 0.25, 0.10, 0.65, 0.15, 0.02, 0.08, 0.01, 0.008, 0.9,
                       0.2, 0, 0.04, 0.05, 0.04),
    "power_user": (0.60, 45, 0.12, 0.03, 0.30, 0.40, 0.10, 0.02, 0.05, 0.01, 0.01, 0.30,
                   0.2, 0, 0.05, 0.05, 0.25),
    "traveller": (0.18, 6, 0.30, 0.22, 0.15, 0.60, 0.05, 0.05, 0.04, 0.01, 0.06, 0.9,
                  0.1, 0, 1.0, 0.35, 0.15),
    "big_spender": (0.09, 5, 0.40, 0.30, 0.10, 0.85, 0.02, 0.05, 0.03, 0.01, 0.05, 0.6,
                    0.4, 1, 0.15, 0.10, 0.08),
    "prolific_reviewer": (0.18, 5, 0.20, 0.20, 0.10, 0.60, 0.10, 0.02, 2.2, 0.01, 0.01, 0.8,
                          0.1, 0, 0.04, 0.04, 0.08),
    "bulk_buyer": (0.12, 5, 0.40, 0.35, 0.30, 0.80, 0.10, 0.04, 0.03, 0.02, 0.01, 0.9,
                   12.0, 0, 0.03, 0.04, 0.05),
    "household": (0.15, 7, 0.30, 0.20, 0.20, 0.55, 0.60, 0.03, 0.03, 0.01, 0.01, 1.0,
                  0.2, 0, 0.03, 0.04, 0.05),
    "returner": (0.15, 7, 0.30, 0.25, 0.20, 0.70, 0.10, 0.03, 0.05, 0.25, 0.01, 1.0,
                 0.3, 0, 0.03, 0.04, 0.05),
    "retry_payer": (0.12, 5, 0.35, 0.25, 0.10, 0.75, 0.05, 1.2, 0.03, 0.01, 0.06, 0.9,
                    0.2, 0, 0.04, 0.05, 0.05),
}
PERSONAS: tuple[str, ...] = tuple(PERSONA_TABLE)
CORE_PERSONAS: tuple[str, ...] = PERSONAS[:5]
CORE_SHARES = np.array([0.30, 0.20, 0.18, 0.10, 0.22])
LOOKALIKE_OF: dict[str, str] = {
    "power_user": "scraping_bot",
    "traveller": "account_takeover",
    "big_spender": "account_takeover",
    "prolific_reviewer": "fake_reviews",
    "bulk_buyer": "inventory_hoarding",
    "household": "coupon_abuse",
    "returner": "refund_abuse",
    "retry_payer": "card_testing",
}
TABLE = np.array(list(PERSONA_TABLE.values()), dtype=np.float64)
P = {name: TABLE[:, i] for i, name in enumerate(PARAMS)}
"""Per-persona parameter vectors: ``P["rate"][persona_code]``."""

HOURLY = np.array([0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.8, 2.8, 3.2, 3.4, 3.6,
                   4.2, 4.0, 3.5, 3.4, 3.6, 4.0, 4.6, 5.4, 6.0, 5.6, 4.2, 2.2])
"""Relative activity per local hour: quiet nights, a lunch bump and an evening peak."""
WEEKLY = np.array([0.92, 0.90, 0.93, 0.97, 1.05, 1.18, 1.15])
"""Relative activity Monday..Sunday: weekends are busier."""


def persona_shares(lookalike_share: float) -> np.ndarray:
    """Share of genuine customers per persona, in PERSONAS order."""
    n_look = len(PERSONAS) - len(CORE_PERSONAS)
    core = CORE_SHARES / CORE_SHARES.sum() * (1.0 - lookalike_share)
    return np.concatenate([core, np.full(n_look, lookalike_share / n_look)])
