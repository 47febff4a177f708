"""The generator's configuration: one frozen, validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from core.errors import ConfigError

SCENARIOS: tuple[str, ...] = (
    "account_takeover",
    "card_testing",
    "scraping_bot",
    "fake_reviews",
    "coupon_abuse",
    "refund_abuse",
    "inventory_hoarding",
    "compromised_merchant",
    "device_farm",
    "spending_break",
)
"""Every anomaly scenario the generator can inject, in label order."""


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Same config (seed included), same bytes.

    ``users`` counts genuine customers; fraud rings add their own fresh accounts on top.
    ``anomaly_rate`` is the share of all sessions that are anomalous, split evenly over
    ``scenarios``. ``subtle_share`` of the incidents are quieter variants; ``lookalike_share``
    of the genuine customers follow a persona that resembles a scenario but is labelled normal.

    >>> GeneratorConfig(users=300, days=7).start_weekday  # 2026-09-01 is a Tuesday
    1
    """

    users: int = 5000
    days: int = 30
    seed: int = 7
    anomaly_rate: float = 0.02
    start: str = "2026-09-01"
    items: int = 20_000
    scenarios: tuple[str, ...] = SCENARIOS
    subtle_share: float = 0.3
    lookalike_share: float = 0.08
    duplicate_rate: float = 0.002
    missing_rate: float = 0.01
    out_of_order_rate: float = 0.01
    activity: float = 1.0

    def __post_init__(self) -> None:
        _check_int("users", self.users, 10, 50_000_000, "--users 10 or more")
        _check_int("days", self.days, 1, 3660, "--days between 1 and 3660")
        _check_int("seed", self.seed, 0, 2**63 - 1, "a non-negative --seed")
        _check_int("items", self.items, 100, 10_000_000, "items between 100 and 10,000,000")
        _check_rate("anomaly_rate", self.anomaly_rate, 0.5, "--anomaly-rate between 0 and 0.5")
        _check_rate("subtle_share", self.subtle_share, 1.0, "a share between 0 and 1")
        _check_rate("lookalike_share", self.lookalike_share, 0.5, "a share between 0 and 0.5")
        for name in ("duplicate_rate", "missing_rate", "out_of_order_rate"):
            _check_rate(name, getattr(self, name), 0.2, "a rate between 0 and 0.2")
        if not (isinstance(self.activity, int | float) and 0.05 <= self.activity <= 20):
            raise ConfigError(
                f"activity must be between 0.05 and 20, got {self.activity!r}. "
                "Pass 1.0 for the usual number of sessions per user."
            )
        try:
            np.datetime64(self.start, "D")
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"start must be a date like '2026-09-01', got {self.start!r}. Pass an ISO date."
            ) from exc
        if not isinstance(self.scenarios, tuple):
            object.__setattr__(self, "scenarios", tuple(self.scenarios))
        unknown = [s for s in self.scenarios if s not in SCENARIOS]
        if unknown or len(set(self.scenarios)) != len(self.scenarios):
            raise ConfigError(
                f"scenarios must be distinct names from {', '.join(SCENARIOS)}, "
                f"got {', '.join(map(str, self.scenarios)) or 'nothing'}. "
                "Pass names from that list."
            )

    @property
    def start_us(self) -> int:
        """Start of the window, microseconds since the Unix epoch (UTC)."""
        return int(np.datetime64(self.start, "D").astype("datetime64[us]").astype(np.int64))

    @property
    def start_weekday(self) -> int:
        """Weekday of ``start``, 0 = Monday."""
        return int((np.datetime64(self.start, "D").astype(np.int64) + 3) % 7)

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_int(name: str, value: object, low: int, high: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r}. Pass {hint}.")
    if not low <= value <= high:
        rule = f">= {low}" if high >= 10**7 and value < low else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {rule}, got {value}. Pass {hint}.")


def _check_rate(name: str, value: object, high: float, hint: str) -> None:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= high:  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be between 0 and {high}, got {value!r}. Pass {hint}.")
