"""text_max_sim_other_users' kernel against a brute-force loop, on both of its paths."""

from __future__ import annotations

import numpy as np
import pytest

from core.text import features as F


def _brute(vectors, ref_text, ref_user, ref_multi, row_text, row_user, row_long):
    out = np.full(len(row_text), np.nan)
    for i in np.flatnonzero(row_long):
        if ref_multi[ref_text == row_text[i]].any():
            out[i] = 1.0
            continue
        others = [r for r, u, m in zip(ref_text, ref_user, ref_multi, strict=True)
                  if m or u != row_user[i]]
        out[i] = max((float(vectors[row_text[i]] @ vectors[r]) for r in others),
                     default=-np.inf)
    return out


def _world(seed: int):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((120, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ref_text = rng.permutation(120)[:90]  # 30 texts are short: never references
    ref_user = rng.integers(0, 12, 90)  # a few writers with many texts each
    ref_multi = rng.random(90) < 0.1
    return rng, vectors, ref_text, ref_user, ref_multi


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_that_are_the_references_take_the_symmetric_path(monkeypatch, seed) -> None:
    monkeypatch.setattr(F, "_BLOCK_CELLS", 100)  # 10 x 10 blocks: runs cross block edges
    rng, vectors, ref_text, ref_user, ref_multi = _world(seed)
    row_text = np.repeat(ref_text, 2)
    row_user = np.where(np.repeat(ref_multi, 2), rng.integers(0, 12, 180),
                        np.repeat(ref_user, 2))
    row_long = rng.random(180) < 0.9
    called = []
    real = F._ref_max_sims
    monkeypatch.setattr(F, "_ref_max_sims", lambda *a: called.append(1) or real(*a))
    got = F._max_sim_other_users(vectors, ref_text, ref_user, ref_multi, row_text, row_user,
                                 row_long)
    assert called
    want = _brute(vectors, ref_text, ref_user, ref_multi, row_text, row_user, row_long)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_other_rows_take_the_rectangular_path(monkeypatch) -> None:
    monkeypatch.setattr(F, "_BLOCK_CELLS", 100)
    rng, vectors, ref_text, ref_user, ref_multi = _world(3)
    row_text = rng.integers(0, 120, 40)  # some texts are no reference
    row_user = rng.integers(0, 12, 40)
    row_long = np.ones(40, dtype=bool)
    monkeypatch.setattr(F, "_ref_max_sims", lambda *a: pytest.fail("wrong path"))
    got = F._max_sim_other_users(vectors, ref_text, ref_user, ref_multi, row_text, row_user,
                                 row_long)
    want = _brute(vectors, ref_text, ref_user, ref_multi, row_text, row_user, row_long)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_a_lone_writer_has_no_other_users_text() -> None:
    vectors = np.eye(3, dtype=np.float32)
    got = F._max_sim_other_users(vectors, np.arange(3), np.zeros(3, dtype=np.int64),
                                 np.zeros(3, dtype=bool), np.arange(3),
                                 np.zeros(3, dtype=np.int64), np.ones(3, dtype=bool))
    assert np.isneginf(got).all()
