"""Reference tables of the synthetic world: countries, user agents, IP ranges, event types."""

from __future__ import annotations

import numpy as np

EVENT_TYPES: tuple[str, ...] = (
    "login",
    "search",
    "view",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
    "payment_attempt",
    "payment_failed",
    "payment_method_add",
    "coupon_apply",
    "review",
    "refund_request",
    "password_change",
    "address_change",
    "logout",
)
ET = {name: code for code, name in enumerate(EVENT_TYPES)}

# code, UTC offset (hours), share of customers, first IP octets of its residential ranges
COUNTRIES: tuple[tuple[str, float, float, tuple[int, ...]], ...] = (
    ("US", -5.0, 0.30, (23, 24, 50, 67, 68, 71, 73, 98)),
    ("GB", 0.0, 0.10, (25, 31, 51, 81, 86)),
    ("DE", 1.0, 0.12, (46, 79, 84, 87, 91)),
    ("FR", 1.0, 0.08, (37, 78, 82, 90)),
    ("ES", 1.0, 0.05, (77, 83, 88)),
    ("IT", 1.0, 0.05, (79, 93, 151)),
    ("NL", 1.0, 0.04, (62, 77, 145)),
    ("PL", 1.0, 0.03, (83, 89, 178)),
    ("BR", -3.0, 0.05, (177, 179, 186, 187)),
    ("MX", -6.0, 0.03, (187, 189, 201)),
    ("CA", -5.0, 0.04, (24, 70, 99, 142)),
    ("IN", 5.5, 0.04, (49, 106, 117, 122)),
    ("JP", 9.0, 0.03, (60, 106, 126, 133)),
    ("AU", 10.0, 0.04, (1, 49, 101, 124)),
)
COUNTRY_CODES = np.array([c[0] for c in COUNTRIES], dtype=object)
COUNTRY_OFFSET_H = np.array([c[1] for c in COUNTRIES])
COUNTRY_SHARE = np.array([c[2] for c in COUNTRIES]) / sum(c[2] for c in COUNTRIES)
# Datacenter ranges (cloud and proxy hosting): where bots and proxied attackers come from.
HOSTING_OCTETS = np.array([3, 13, 34, 35, 52, 104, 138, 159, 167, 185])
HOSTING_COUNTRIES = np.array([0, 0, 0, 0, 0, 0, 2, 6, 0, 6])

USER_AGENTS: tuple[str, ...] = (
    # desktop browsers
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:142.0) Gecko/20100101 Firefox/142.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/139.0.0.0 Safari/537.36",
    # phones and tablets
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.6 Mobile/15E148 Safari/604.1",
    # the shop's own apps
    "ShopApp/7.4.1 (iPhone; iOS 18.6; Scale/3.00)",
    "ShopApp/7.4.1 (Android 15; SM-A556B)",
    # automation (bots only)
    "python-requests/2.32.4",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/140.0.0.0 Safari/537.36",
    "Scrapy/2.13.3 (+https://scrapy.org)",
)
# Share of customers' devices per user agent (the automation agents are never picked).
UA_SHARE = np.array([0.17, 0.08, 0.07, 0.04, 0.04, 0.01, 0.22, 0.13, 0.06, 0.04, 0.09, 0.05,
                     0.0, 0.0, 0.0])
UA_SHARE = UA_SHARE / UA_SHARE.sum()
UA_MOBILE = np.array([False] * 6 + [True] * 6 + [False] * 3)
UA_BOT = np.array([12, 13, 14])


def sample_user_agents(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` user-agent codes with customers' device mix."""
    return rng.choice(len(USER_AGENTS), size=n, p=UA_SHARE).astype(np.int16)


def residential_ips(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    """One random residential IPv4 (as uint32) in each given country."""
    octets = np.zeros(len(countries), dtype=np.uint32)
    for code, (_, _, _, firsts) in enumerate(COUNTRIES):
        mask = countries == code
        octets[mask] = rng.choice(np.array(firsts, dtype=np.uint32), size=int(mask.sum()))
    return (octets << 24) | rng.integers(1 << 8, 1 << 24, len(countries), dtype=np.uint32)


def hosting_ips(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` datacenter IPv4s (uint32) and their country codes."""
    pick = rng.integers(0, len(HOSTING_OCTETS), n)
    ips = (HOSTING_OCTETS[pick].astype(np.uint32) << 24) | rng.integers(
        1 << 8, 1 << 24, n, dtype=np.uint32
    )
    return ips, HOSTING_COUNTRIES[pick].astype(np.int8)
