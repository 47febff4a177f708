"""Sentence embeddings and their cache in the store."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from core.store import Store
from core.text import load_encoder, text_features_available
from core.text.cache import embed_texts, text_hashes

pytestmark = pytest.mark.skipif(not text_features_available(),
                                reason="the sentence model package is not installed")

TEXTS = [
    "Great product! Highly recommend!!!",
    "Great product! Highly recommend!!! A+++",
    "The desk lamp arrived damaged. Support never replied.",
    "cheap shoes",
    "Great product! Highly recommend!!!",
]


@pytest.fixture(scope="module")
def encoder():
    return load_encoder()  # the one the features share (CPU here, CUDA when present)


def test_embeddings_are_unit_length_and_order_independent(encoder) -> None:
    out = encoder.encode(TEXTS)
    assert out.shape == (len(TEXTS), encoder.dim) == (5, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[0], out[4], atol=1e-6)
    reversed_out = encoder.encode(TEXTS[::-1])[::-1]
    tolerance = 1e-5 if encoder.device.type == "cpu" else 2e-2  # bf16 autocast on CUDA
    np.testing.assert_allclose(reversed_out, out, atol=tolerance)
    sims = out @ out.T
    # A template with a tail stays close to the template; an unrelated text does not.
    assert sims[0, 1] > 0.7 and sims[0, 2] < 0.3
    assert encoder.encode([]).shape == (0, 384)


def test_hashes_match_duckdb_md5() -> None:
    text = "héllo wörld"
    assert text_hashes([text])[0] == duckdb.sql("SELECT md5(?)", params=[text]).fetchall()[0][0]


def test_second_call_embeds_nothing(encoder, tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    with Store.open(db) as store:
        before = encoder.n_encoded
        first, stats = embed_texts(store.con, TEXTS, encoder=encoder)
        assert (stats.n_distinct, stats.n_cached, stats.n_embedded) == (4, 0, 4)
        assert stats.is_stored and encoder.n_encoded == before + 4
        again, stats = embed_texts(store.con, TEXTS[::-1], encoder=encoder)
        assert (stats.n_cached, stats.n_embedded) == (4, 0) and encoder.n_encoded == before + 4
        np.testing.assert_allclose(again[::-1], first, atol=1e-6)
        assert store.text.cache_count(encoder.name) == 4
    # A read-only store (the dashboard) serves cached texts and embeds new ones without keeping
    # them; a bare connection without the cache table just embeds.
    with Store.open(db, read_only=True) as store:
        _, stats = embed_texts(store.con, [*TEXTS, "a brand new review text"], encoder=encoder)
        assert (stats.n_cached, stats.n_embedded, stats.is_stored) == (4, 1, False)
    with Store.open(db) as store:
        assert store.text.cache_count(encoder.name) == 4
    _, stats = embed_texts(duckdb.connect(), TEXTS[:2], encoder=encoder)
    assert (stats.n_embedded, stats.is_stored) == (2, False)
