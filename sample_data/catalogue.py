"""The shop's catalogue: categories, items with log-normal prices, popularity-skewed sampling."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# name, median price, log-price sigma, share of items, share of shoppers' attention, nouns
CATEGORIES: tuple[tuple[str, float, float, float, float, tuple[str, ...]], ...] = (
    ("electronics", 90.0, 1.0, 0.08, 0.10,
     ("wireless headphones", "bluetooth speaker", "smart watch", "usb c charger", "4k tv",
      "action camera")),
    ("computers", 250.0, 1.0, 0.05, 0.05,
     ("gaming laptop", "mechanical keyboard", "27 inch monitor", "wireless mouse", "ssd 2tb",
      "webcam")),
    ("phones", 300.0, 0.9, 0.03, 0.05,
     ("smartphone", "phone case", "screen protector", "fast charger", "unlocked phone",
      "phone stand")),
    ("fashion", 35.0, 0.7, 0.16, 0.15,
     ("winter jacket", "linen shirt", "jeans", "summer dress", "wool sweater", "rain coat")),
    ("shoes", 60.0, 0.6, 0.06, 0.06,
     ("running shoes", "leather boots", "sneakers", "sandals", "hiking boots", "slippers")),
    ("home", 40.0, 0.9, 0.10, 0.09,
     ("bed sheets", "desk lamp", "storage boxes", "throw pillow", "curtains", "wall clock")),
    ("kitchen", 30.0, 0.9, 0.08, 0.07,
     ("coffee grinder", "chef knife", "air fryer", "cast iron pan", "water bottle",
      "espresso machine")),
    ("beauty", 18.0, 0.7, 0.08, 0.08,
     ("face serum", "sunscreen", "shampoo", "lipstick", "hair dryer", "moisturizer")),
    ("books", 14.0, 0.5, 0.12, 0.08,
     ("crime novel", "cookbook", "children's book", "fantasy series", "biography",
      "travel guide")),
    ("toys", 25.0, 0.8, 0.06, 0.06,
     ("building blocks", "board game", "puzzle 1000 pieces", "plush toy", "rc car",
      "science kit")),
    ("sports", 45.0, 0.9, 0.05, 0.06,
     ("yoga mat", "dumbbells", "bike helmet", "tennis racket", "running belt", "camping tent")),
    ("grocery", 8.0, 0.6, 0.04, 0.05,
     ("coffee beans", "green tea", "olive oil", "protein bars", "dark chocolate", "spices")),
    ("pet", 20.0, 0.8, 0.03, 0.04,
     ("dog food", "cat litter", "dog leash", "cat tree", "fish food", "pet bed")),
    ("garden", 35.0, 0.9, 0.03, 0.03,
     ("garden hose", "plant pots", "pruning shears", "lawn seed", "solar lights", "bird feeder")),
    ("jewelry", 120.0, 1.1, 0.02, 0.02,
     ("silver necklace", "gold ring", "watch", "earrings", "bracelet", "cufflinks")),
    ("gift_cards", 50.0, 0.0, 0.01, 0.01,
     ("gift card", "e-gift card", "birthday gift card", "holiday gift card", "store credit",
      "digital voucher")),
)
CATEGORY_NAMES = np.array([c[0] for c in CATEGORIES], dtype=object)
N_CATEGORIES = len(CATEGORIES)
ATTENTION = np.array([c[4] for c in CATEGORIES]) / sum(c[4] for c in CATEGORIES)
GIFT_CARDS = N_CATEGORIES - 1
# Where stolen accounts and cards are cashed out: easy to resell.
HIGH_VALUE_CATEGORIES = np.array([0, 1, 2, 14, 15])
GIFT_CARD_VALUES = np.array([10.0, 25.0, 50.0, 100.0, 200.0])
POPULARITY_SKEW = 2.5
"""Items within a category are picked at rank ``n * u**2.5``: the first tenth of a category
draws about 40% of the views, like a shop's long tail."""


@dataclass(frozen=True)
class Catalogue:
    """Items grouped by category: item ``i`` belongs to ``category[i]``.

    Attributes:
        category: (n,) int8 category code per item.
        price: (n,) float64 unit price.
        starts: (N_CATEGORIES + 1,) first item of each category (items are grouped).
    """

    category: np.ndarray
    price: np.ndarray
    starts: np.ndarray
    merchant: np.ndarray | None = None
    """(n,) int32 merchant (shop, seller or terminal) of each item; see ``assign_merchants``."""
    by_merchant: np.ndarray | None = None
    """Items sorted by merchant (stable); merchant ``m`` sells
    ``by_merchant[merchant_starts[m]:merchant_starts[m + 1]]``."""
    merchant_starts: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.category)

    @property
    def n_merchants(self) -> int:
        return 0 if self.merchant is None else int(self.merchant.max()) + 1

    def merchant_items(self) -> tuple[np.ndarray, np.ndarray]:
        """(items sorted by merchant, start of each merchant's run in it): merchant ``m``
        sells ``order[starts[m]:starts[m + 1]]``."""
        assert self.by_merchant is not None and self.merchant_starts is not None
        return self.by_merchant, self.merchant_starts

    def sample_of_merchant(self, rng: np.random.Generator, merchants: np.ndarray) -> np.ndarray:
        """One item sold by each given merchant (uniform over its items; each must sell one)."""
        order, starts = self.merchant_items()
        lo = starts[merchants]
        size = starts[np.asarray(merchants) + 1] - lo
        return order[lo + np.floor(rng.random(len(lo)) * size).astype(np.int64)]

    def sample(self, rng: np.random.Generator, categories: np.ndarray) -> np.ndarray:
        """One popularity-weighted item of each given category."""
        lo = self.starts[categories]
        size = self.starts[categories + 1] - lo
        rank = np.floor(size * rng.random(len(categories)) ** POPULARITY_SKEW).astype(np.int64)
        return lo + rank

    def sample_pricey(
        self, rng: np.random.Generator, categories: np.ndarray, draws: int = 4
    ) -> np.ndarray:
        """The most expensive of ``draws`` popularity-weighted items per category."""
        candidates = np.stack([self.sample(rng, categories) for _ in range(draws)], axis=1)
        best = np.argmax(self.price[candidates], axis=1)
        return candidates[np.arange(len(categories)), best]

    def sample_cheap(self, rng: np.random.Generator, categories: np.ndarray) -> np.ndarray:
        """The cheapest of four items per category (brushing and card-testing targets)."""
        candidates = np.stack([self.sample(rng, categories) for _ in range(4)], axis=1)
        best = np.argmin(self.price[candidates], axis=1)
        return candidates[np.arange(len(categories)), best]


def build_catalogue(rng: np.random.Generator, n_items: int) -> Catalogue:
    """``n_items`` items split over the categories, prices log-normal around each median."""
    shares = np.array([c[3] for c in CATEGORIES])
    counts = np.maximum(np.floor(shares / shares.sum() * n_items).astype(np.int64), 5)
    counts[3] += max(n_items - counts.sum(), 0)  # fashion takes the rounding slack
    category = np.repeat(np.arange(N_CATEGORIES, dtype=np.int8), counts)
    median = np.array([c[1] for c in CATEGORIES])[category]
    sigma = np.array([c[2] for c in CATEGORIES])[category]
    raw = median * np.exp(sigma * rng.standard_normal(len(category)))
    # Shop prices end in .99 above a euro and in .49/.99 below it.
    price = np.where(raw >= 1.5, np.round(raw) - 0.01, np.maximum(np.round(raw * 2) / 2, 1) - 0.01)
    cards = category == GIFT_CARDS
    price[cards] = rng.choice(GIFT_CARD_VALUES, size=int(cards.sum()))
    starts = np.concatenate([[0], np.cumsum(counts)])
    return Catalogue(category=category, price=np.round(price, 2), starts=starts)


ITEMS_PER_MERCHANT = 60
"""About one merchant per this many items: a few hundred for the default 20,000 items."""
MERCHANT_SKEW = 1.1
"""Merchant ``j`` (by size) gets a weight ``(j + 1) ** -1.1``: a few large shops, a long tail."""
SPECIALIST_SHARE = 0.85
"""Share of an item's merchants drawn from the shops whose home category is the item's."""


def assign_merchants(rng: np.random.Generator, catalogue: Catalogue) -> Catalogue:
    """Give every item a merchant: a few hundred shops with Zipf-like sizes, each with a home
    category that holds most of its items (a shoe shop sells shoes, and now and then a bag)."""
    n_items = catalogue.n_items
    n = int(np.clip(n_items // ITEMS_PER_MERCHANT, 20, 100_000))
    weight = (np.arange(n) + 1.0) ** -MERCHANT_SKEW
    shares = np.array([c[3] for c in CATEGORIES])
    home = rng.choice(N_CATEGORIES, size=n, p=shares / shares.sum())
    merchant = rng.choice(n, size=n_items, p=weight / weight.sum()).astype(np.int32)
    specialist = rng.random(n_items) < SPECIALIST_SHARE
    for c in range(N_CATEGORIES):  # 16 categories, not a loop over rows
        shops = np.flatnonzero(home == c)
        mine = np.flatnonzero(specialist & (catalogue.category == c))
        if len(shops) and len(mine):
            w = weight[shops] / weight[shops].sum()
            merchant[mine] = shops[rng.choice(len(shops), size=len(mine), p=w)]
    # Merchants are numbered by first appearance in the catalogue, so none is empty.
    _, first = np.unique(merchant, return_index=True)
    renumber = np.full(n, -1, np.int32)
    used = merchant[np.sort(first)]
    renumber[used] = np.arange(len(used), dtype=np.int32)
    merchant = renumber[merchant]
    order = np.argsort(merchant, kind="stable")
    starts = np.searchsorted(merchant[order], np.arange(len(used) + 1))
    return replace(catalogue, merchant=merchant, by_merchant=order, merchant_starts=starts)
