"""Rendering in parallel parts: ids handed out by the parts join up as one pass would."""

from __future__ import annotations

import numpy as np

from sample_data.catalogue import build_catalogue
from sample_data.normal import normal_plan
from sample_data.population import Pools, build_population
from sample_data.sessions import RENDER_PARTS, render_parts
from sample_data.world import ET


def _rendered(users: int) -> tuple[Pools, int, int, list]:
    rng = np.random.default_rng(3)
    pools = Pools()
    catalogue = build_catalogue(rng, 500)
    pop = build_population(rng, users, 10, 0.05, pools)
    plan = normal_plan(rng, pop, 10, 0, 1.0)
    payments_before, texts_before = pools.n_payments, pools.n_texts
    parts = render_parts(plan, rng, catalogue, pools)
    assert sum(len(p) for p, _ in parts) == len(plan)
    return pools, payments_before, texts_before, parts


def test_new_payment_ids_and_texts_follow_on_across_parts() -> None:
    pools, payments_before, texts_before, parts = _rendered(400)
    assert len(parts) == RENDER_PARTS
    new_cards = np.concatenate([
        b.payment[b.etype == ET["payment_method_add"]] for _, b in parts
    ])
    # One new instrument per payment_method_add, numbered on from the pool without gaps.
    assert len(new_cards) > 0
    assert np.array_equal(np.sort(new_cards),
                          np.arange(payments_before, payments_before + len(new_cards)))
    assert pools.n_payments == payments_before + len(new_cards)
    # Every text index points into the pool; reviews got texts of their own, in part order.
    texts = np.concatenate([b.text for _, b in parts])
    assert texts.max() < pools.n_texts == sum(len(t) for t in pools.texts)
    reviews = np.concatenate([b.text[b.etype == ET["review"]] for _, b in parts])
    assert np.array_equal(reviews, np.arange(texts_before, texts_before + len(reviews)))


def test_a_plan_smaller_than_the_parts_renders() -> None:
    pools, _, _, parts = _rendered(10)
    assert all(len(b) >= 0 for _, b in parts)
    assert pools.n_texts == sum(len(t) for t in pools.texts)
