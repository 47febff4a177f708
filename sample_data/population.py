"""Who shops: genuine customers with stable devices, IPs, payment methods, trips and new phones.

Devices, IPs, payment instruments and free texts live in growing registries (``Pools``); events
refer to them by integer index and only the final table turns indices into strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

import sample_data.catalogue as cat
import sample_data.world as world
from sample_data.personas import PERSONAS, P, persona_shares
from sample_data.text import base_texts

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
FRAUD_PERSONA = -1
"""Persona code of accounts that fraudsters opened (they are not customers)."""


@dataclass
class Pools:
    """Registries that hand out index ranges for new devices, IPs, payment ids and texts."""

    device_ua: list[np.ndarray] = field(default_factory=list)
    ip_value: list[np.ndarray] = field(default_factory=list)
    ip_country: list[np.ndarray] = field(default_factory=list)
    texts: list[pa.Array] = field(default_factory=lambda: [base_texts()])
    n_devices: int = 0
    n_ips: int = 0
    n_payments: int = 0
    n_texts: int = field(default_factory=lambda: len(base_texts()))

    def add_devices(self, ua: np.ndarray) -> np.ndarray:
        self.device_ua.append(np.asarray(ua, dtype=np.int16))
        self.n_devices += len(ua)
        return np.arange(self.n_devices - len(ua), self.n_devices, dtype=np.int64)

    def ua_of(self, devices: np.ndarray) -> np.ndarray:
        """User-agent codes of the given devices."""
        return np.concatenate(self.device_ua)[devices]

    def add_ips(self, values: np.ndarray, countries: np.ndarray) -> np.ndarray:
        self.ip_value.append(np.asarray(values, dtype=np.uint32))
        self.ip_country.append(np.asarray(countries, dtype=np.int8))
        self.n_ips += len(values)
        return np.arange(self.n_ips - len(values), self.n_ips, dtype=np.int64)

    def add_payments(self, n: int) -> np.ndarray:
        self.n_payments += n
        return np.arange(self.n_payments - n, self.n_payments, dtype=np.int64)

    def add_texts(self, texts: pa.Array) -> int:
        """Register ``texts``; returns the index of the first one."""
        self.texts.append(texts)
        self.n_texts += len(texts)
        return self.n_texts - len(texts)


@dataclass
class Population:
    """Per-user arrays (index = user number). Fraud accounts have persona FRAUD_PERSONA and
    no devices of their own (their scenario supplies them); their ``*_count`` are 0."""

    persona: np.ndarray
    country: np.ndarray
    active_from_ms: np.ndarray
    activity: np.ndarray
    fav: np.ndarray  # (n, 2) favourite categories
    dev_start: np.ndarray
    dev_count: np.ndarray
    ip_start: np.ndarray
    ip_count: np.ndarray
    pay_start: np.ndarray
    pay_count: np.ndarray
    new_dev: np.ndarray  # device index of a new phone, -1 if none
    new_dev_at_ms: np.ndarray
    trip_from_ms: np.ndarray
    trip_to_ms: np.ndarray
    trip_ip: np.ndarray
    trip_dev: np.ndarray  # device used abroad, -1 = the usual ones

    @property
    def n(self) -> int:
        return len(self.persona)

    def add_fraud_accounts(self, countries: np.ndarray, active_from_ms: np.ndarray) -> np.ndarray:
        """Append accounts opened by fraudsters; returns their user numbers."""
        k = len(countries)
        start = self.n
        fill = {
            "persona": np.full(k, FRAUD_PERSONA, np.int8),
            "country": np.asarray(countries, np.int8),
            "active_from_ms": np.asarray(active_from_ms, np.int64),
            "activity": np.ones(k),
            "fav": np.zeros((k, 2), np.int8),
        }
        for name, value in self.__dict__.items():
            extra = fill.get(name)
            if extra is None:
                extra = np.full(k, 0 if name.endswith("_count") else -1, value.dtype)
            setattr(self, name, np.concatenate([value, extra]))
        return np.arange(start, start + k, dtype=np.int64)


def build_population(
    rng: np.random.Generator, n: int, days: int, lookalike_share: float, pools: Pools
) -> Population:
    """``n`` genuine customers with personas, homes, devices, IPs, payment methods and trips."""
    window_ms = days * DAY_MS
    persona = rng.choice(len(PERSONAS), size=n, p=persona_shares(lookalike_share)).astype(np.int8)
    country = rng.choice(len(world.COUNTRIES), size=n, p=world.COUNTRY_SHARE).astype(np.int8)
    # One in nine customers signs up inside the window (as do all fraud accounts).
    is_new = rng.random(n) < 0.11
    active_from = np.where(is_new, rng.integers(0, window_ms, n), 0).astype(np.int64)
    activity = rng.lognormal(-0.125, 0.5, n)  # mean 1
    fav = rng.choice(cat.N_CATEGORIES, size=(n, 2), p=cat.ATTENTION).astype(np.int8)
    names = np.array(PERSONAS)
    fav[names[persona] == "big_spender", 0] = rng.choice(
        cat.HIGH_VALUE_CATEGORIES, size=int((names[persona] == "big_spender").sum())
    )
    fav[names[persona] == "returner", 0] = rng.choice(
        [3, 4], size=int((names[persona] == "returner").sum())
    )

    dev_count = 1 + rng.binomial(2, 0.3, n)
    dev_start = pools.add_devices(world.sample_user_agents(rng, int(dev_count.sum())))[0] + (
        np.cumsum(dev_count) - dev_count
    )
    ip_count = 1 + (rng.random(n) < 0.5)
    ip_home = np.repeat(country, ip_count)
    ip_start = pools.add_ips(world.residential_ips(rng, ip_home), ip_home)[0] + (
        np.cumsum(ip_count) - ip_count
    )
    pay_count = 1 + (rng.random(n) < 0.35)
    pay_start = pools.add_payments(int(pay_count.sum()))[0] + (np.cumsum(pay_count) - pay_count)

    has_phone = rng.random(n) < P["p_new_phone"][persona]
    new_dev = np.full(n, -1, np.int64)
    mobile = np.flatnonzero(world.UA_MOBILE & (world.UA_SHARE > 0))
    new_dev[has_phone] = pools.add_devices(rng.choice(mobile, size=int(has_phone.sum())))
    new_dev_at = np.where(has_phone, rng.integers(0, window_ms, n), np.iinfo(np.int64).max)

    travels = rng.random(n) < P["p_travel"][persona]
    k = int(travels.sum())
    trip_from = np.full(n, np.iinfo(np.int64).max, np.int64)
    trip_to = np.full(n, np.iinfo(np.int64).max, np.int64)
    start = rng.integers(0, window_ms, k)
    trip_from[travels] = start
    long = names[persona[travels]] == "traveller"  # the look-alike is away for longer
    trip_to[travels] = start + rng.integers(np.where(long, 4, 2) * DAY_MS,
                                            np.where(long, 15, 10) * DAY_MS)
    # Abroad: another country, a hotel or roaming IP, sometimes a phone bought on the way.
    shift = rng.integers(1, len(world.COUNTRIES), k)
    abroad = ((country[travels] + shift) % len(world.COUNTRIES)).astype(np.int8)
    trip_ip = np.full(n, -1, np.int64)
    trip_ip[travels] = pools.add_ips(world.residential_ips(rng, abroad), abroad)
    trip_dev = np.full(n, -1, np.int64)
    buys = travels & (rng.random(n) < 0.25)
    trip_dev[buys] = pools.add_devices(world.sample_user_agents(rng, int(buys.sum())))

    # Households: two to four accounts on the same devices and home IPs.
    members = np.flatnonzero(names[persona] == "household")
    if len(members):
        size = rng.integers(2, 5, len(members))
        group = np.repeat(np.arange(len(members)), size)[: len(members)]
        head = members[np.searchsorted(group, group)]
        for arr in (dev_start, dev_count, ip_start, ip_count):
            arr[members] = arr[head]
        country[members] = country[head]

    return Population(
        persona=persona, country=country, active_from_ms=active_from, activity=activity, fav=fav,
        dev_start=dev_start.astype(np.int64), dev_count=dev_count.astype(np.int64),
        ip_start=ip_start.astype(np.int64), ip_count=ip_count.astype(np.int64),
        pay_start=pay_start.astype(np.int64), pay_count=pay_count.astype(np.int64),
        new_dev=new_dev, new_dev_at_ms=new_dev_at.astype(np.int64), trip_from_ms=trip_from,
        trip_to_ms=trip_to, trip_ip=trip_ip, trip_dev=trip_dev,
    )
