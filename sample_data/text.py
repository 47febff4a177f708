"""Search queries, coupon codes and review texts composed from phrase fragments.

Texts are built column-wise with pyarrow string kernels, never one Python string at a time.
The text pool starts with every search query and coupon code (``base_texts``); reviews are
appended as they are generated.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sample_data.catalogue import CATEGORIES

N_NOUNS = 6
MODIFIERS = ("", "cheap ", "best ", "new ", "sale ", "black ", "gift ", "2026 ", "small ",
             "premium ")
SUFFIXES = ("", "", "", " for kids", " for men", " for women", " under 50", " reviews", " set",
            " pro", " sale", " near me")
COUPON_CODES = ("SAVE10", "WELCOME20", "FREESHIP", "AUTUMN15", "VIP25", "BUNDLE5", "WELCOME25",
                "WELCOME30", "NEW50", "FIRST40", "STAFF50", "TEST100")
WELCOME_CODE = 1
"""The new-customer code that coupon abusers farm (normal newcomers use it once too)."""
N_NORMAL_CODES = 6
"""Codes 0..5 are published; the rest are guesses that abusers try."""

OPENERS = {
    "pos": ("Really happy with this.", "Love it!", "Exceeded my expectations.",
            "Very pleased overall.", "Five stars from me.", "Great buy.", "So glad I ordered it.",
            "Works like a charm.", "Exactly as described.", "Second time buying this."),
    "mid": ("It's okay.", "Mixed feelings.", "Decent, not amazing.", "Does the job.",
            "Fine for the price.", "Not bad, not great.", "Average.", "Somewhat useful."),
    "neg": ("Disappointed.", "Would not buy again.", "Not as described.", "Waste of money.",
            "Really frustrating.", "Returned it.", "Poor quality.", "Broke within a week."),
}
BODIES = {  # (before the noun, after the noun)
    "pos": (("The ", " feels solid and well made."), ("This ", " is better than my old one."),
            ("Bought the ", " as a gift and they loved it."), ("My new ", " gets used every day."),
            ("The ", " looks even nicer in person."), ("Our ", " arrived quickly and works.")),
    "mid": (("The ", " works but feels a bit cheap."), ("This ", " is smaller than expected."),
            ("The ", " is fine once you get used to it."), ("My ", " had a slight scratch."),
            ("The colour of the ", " is a little off.")),
    "neg": (("The ", " stopped working after a few days."), ("This ", " is flimsy."),
            ("The ", " arrived damaged."), ("My ", " looks nothing like the photos."),
            ("The ", " smells strange and feels cheap.")),
}
DETAILS = {
    "pos": ("", "", "Shipping was fast.", "Packaging was neat.", "Good value for money.",
            "Customer service answered quickly.", "Sizing is true to fit.", "Battery lasts long."),
    "mid": ("", "", "Shipping took a while.", "Instructions were unclear.",
            "A bit overpriced.", "Packaging could be better."),
    "neg": ("", "Support never replied.", "Shipping took two weeks.", "Refund was a hassle.",
            "Box was open on arrival.", "Cheaper elsewhere."),
}
CLOSERS = {
    "pos": ("", "", "", "Recommended.", "Would buy again.", "Thanks!", "10/10.",
            "Will order more."),
    "mid": ("", "", "", "Maybe.", "Three stars.", "Hope the next batch is better."),
    "neg": ("", "", "Avoid.", "One star.", "Look elsewhere.", "Not worth it."),
}
FAKE_TEMPLATES = (
    "Great product! Highly recommend!!!",
    "Amazing quality, five stars. Will buy again!",
    "Best purchase ever. 5 stars!!!",
    "Excellent product, fast delivery, highly recommended.",
    "Perfect! Exactly what I needed. Great seller!",
    "Super good quality, very happy, recommend to everyone!",
)
FAKE_TAILS = ("", " A+++", " Love it.", " Thank you seller!", " Must buy.", " Very nice!!")


@cache
def _queries() -> tuple[str, ...]:
    return tuple(
        f"{mod}{noun}{suffix}"
        for c in CATEGORIES
        for noun in c[5]
        for mod in MODIFIERS
        for suffix in SUFFIXES
    )


@cache
def base_texts() -> pa.Array:
    """Every search query (category-major), then every coupon code."""
    return pa.array(_queries() + COUPON_CODES, type=pa.string())


def coupon_text(code: np.ndarray) -> np.ndarray:
    """Text-pool index of coupon code number ``code``."""
    return len(_queries()) + np.asarray(code, dtype=np.int64)


def search_text(rng: np.random.Generator, categories: np.ndarray) -> np.ndarray:
    """Text-pool index of one random query per category given."""
    n = len(categories)
    noun = rng.integers(0, N_NOUNS, n)
    mod = rng.integers(0, len(MODIFIERS), n)
    suffix = rng.integers(0, len(SUFFIXES), n)
    return ((categories.astype(np.int64) * N_NOUNS + noun) * len(MODIFIERS) + mod) * len(
        SUFFIXES
    ) + suffix


def review_ratings(rng: np.random.Generator, n: int) -> np.ndarray:
    """J-shaped star ratings, as real shops see them: many fives, some ones."""
    return rng.choice(np.arange(1, 6), size=n, p=[0.09, 0.06, 0.10, 0.25, 0.50]).astype(np.int32)


def review_texts(rng: np.random.Generator, categories: np.ndarray, ratings: np.ndarray) -> pa.Array:
    """A natural-sounding review per (category, rating): opener, body with the item noun,
    optional detail and closer, each picked at random from the rating's sentiment."""
    sentiment = np.where(ratings >= 4, 0, np.where(ratings == 3, 1, 2))
    parts: list[list[pa.Array]] = [[], [], [], [], []]
    order = np.empty(0, dtype=np.int64)
    for code, key in enumerate(("pos", "mid", "neg")):
        rows = np.flatnonzero(sentiment == code)
        order = np.concatenate([order, rows])
        k = len(rows)
        bodies = BODIES[key]
        body = rng.integers(0, len(bodies), k)
        nouns = categories[rows].astype(np.int64) * N_NOUNS + rng.integers(0, N_NOUNS, k)
        parts[0].append(_pick(rng, OPENERS[key], k))
        parts[1].append(pa.array([b[0] for b in bodies]).take(pa.array(body)))
        parts[2].append(_all_nouns().take(pa.array(nouns)))
        parts[3].append(pa.array([b[1] for b in bodies]).take(pa.array(body)))
        parts[4].append(
            pc.binary_join_element_wise(
                _pick(rng, DETAILS[key], k), _pick(rng, CLOSERS[key], k), " "
            )
        )
    cols = [pa.concat_arrays(p) for p in parts]
    body = pc.binary_join_element_wise(cols[1], cols[2], cols[3], "")
    text = pc.utf8_trim_whitespace(pc.binary_join_element_wise(cols[0], body, cols[4], " "))
    return text.take(pa.array(np.argsort(order, kind="stable")))


def fake_review_texts(
    rng: np.random.Generator, template: np.ndarray, subtle: np.ndarray
) -> pa.Array:
    """Templated five-star texts; subtle rings append a varied tail to hide the template."""
    base = pa.array(FAKE_TEMPLATES).take(pa.array(np.asarray(template, dtype=np.int64)))
    tail_idx = np.where(subtle, rng.integers(0, len(FAKE_TAILS), len(template)), 0)
    tails = pa.array(FAKE_TAILS).take(pa.array(tail_idx))
    return pc.binary_join_element_wise(base, tails, "")


@cache
def _all_nouns() -> pa.Array:
    return pa.array([noun for c in CATEGORIES for noun in c[5]])


def _pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> pa.Array:
    return pa.array(options).take(pa.array(rng.integers(0, len(options), n)))
