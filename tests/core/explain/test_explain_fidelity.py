"""Fidelity helpers: top-k hits against labelled events, chance level, the deletion test."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import EventSequences
from core.explain.fidelity import chance_hit, deletion_test, top_k, top_k_hit, top_k_recall


class Additive:
    """Score = sum of the tokens' weights (token 5 is heavy)."""

    def score(self, data: EventSequences) -> np.ndarray:
        return np.where(data.mask, np.where(data.tokens == 5, 10.0, 1.0), 0.0).sum(axis=1)


def one_session(tokens: list[int], width: int = 12) -> EventSequences:
    t = np.zeros((1, width), dtype=np.int64)
    t[0, : len(tokens)] = tokens
    mask = t > 0
    return EventSequences(np.array(["s"], dtype=object), t, np.zeros((1, width, 1), np.float32),
                          mask, np.where(mask, "e", "").astype(object), {"a": 2, "x": 5}, ("c",))


def test_top_k_hit_and_recall() -> None:
    contributions = np.array([0.1, np.nan, 0.9, 0.5, 0.0])
    injected = np.array([False, True, False, True, False])
    assert top_k(contributions, 2).tolist() == [2, 3]
    assert top_k_hit(contributions, injected, k=2) and not top_k_hit(contributions, injected, 1)
    assert top_k_recall(contributions, injected, k=2) == 0.5
    assert np.isnan(top_k_recall(contributions, np.zeros(5, bool)))


def test_chance_level() -> None:
    assert chance_hit(10, 1, 3) == pytest.approx(0.3)
    assert chance_hit(4, 2, 3) == 1.0 and chance_hit(5, 0, 3) == 0.0
    assert chance_hit(2, 1, 3) == 1.0  # fewer events than k


def test_deletion_removes_more_with_the_right_ranking() -> None:
    data = one_session([2, 5, 2, 5, 2, 2, 5, 2])
    weights = np.where(data.tokens[0, :8] == 5, 10.0, 1.0)
    good = deletion_test(Additive(), data, 0, weights, k=3)
    bad = deletion_test(Additive(), data, 0, -weights, k=3)
    assert good.score == 35.0 and good.drop_top == 30.0 and bad.drop_top == 3.0
    assert bad.drop_top < good.drop_random < good.drop_top
    assert deletion_test(Additive(), one_session([2, 5, 2]), 0, np.ones(3), k=3) is None
