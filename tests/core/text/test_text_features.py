"""Text features in the session features: values, spec round-trip, mismatch and absence paths."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ModelError
from core.features import BASE_FEATURES, FeatureSpec, build_session_features
from core.features.spec import WHOLE_TABLE
from core.ingest import ingest_events
from core.store import Store
from core.text import embeddings, text_features_available
from core.text.spec import TextSpec

T0 = datetime(2026, 3, 2, 10, 0, 0)
TEMPLATE = "Amazing quality, five stars. Will buy again!"
needs_model = pytest.mark.skipif(not text_features_available(),
                                 reason="the sentence model package is not installed")


def _events() -> pd.DataFrame:
    """Sessions s<user> of one review (or search) each; ``pasted`` reviews are copies."""
    reviews = {
        "u1": TEMPLATE,                        # pasted by u2 as well
        "u2": TEMPLATE,
        "u3": f"{TEMPLATE} Thank you seller!",  # the template with a tail
        "u4": "The rain coat kept me dry on a long hike. Sizing is true to fit.",
        "u5": "My coffee grinder had a slight scratch but grinds evenly. Three stars.",
        "u6": "cheap shoes",                   # a short search: no similarity
    }
    rows = []
    for i, (user, text) in enumerate(reviews.items()):
        for j, kind in enumerate(("login", "review" if user != "u6" else "search", "logout")):
            rows.append({"user_id": user, "session_id": f"s{user}", "event_type": kind,
                         "ts": T0 + timedelta(hours=i, minutes=j),
                         "text": text if j == 1 else None})
    # u4 repeats its own review in a second session: a user's own copy does not count.
    rows.append({"user_id": "u4", "session_id": "su4b", "event_type": "review",
                 "ts": T0 + timedelta(days=1), "text": reviews["u4"]})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "store.duckdb"
    with Store.open(path) as store:
        ingest_events(store, _events())
    return path


@pytest.fixture(scope="module")
def feats(store_path: Path):
    if not text_features_available():
        # The README's set-up installs the text extra; a missing package is a broken install,
        # not a reason to pass (the absence path has its own test with the import blocked).
        pytest.fail("the sentence model package is missing: pip install -e '.[text]' "
                    "(scripts/test.sh does)")
    with Store.open(store_path) as store:
        return build_session_features(store.con)


def _column(out, name: str) -> dict[str, float]:
    j = out.matrix.names.index(name)
    return dict(zip(out.matrix.session_ids, out.matrix.values[:, j].tolist(), strict=True))


@needs_model
def test_text_columns_follow_the_base_features(feats) -> None:
    spec = feats.spec
    assert spec.text is not None and spec.text.encoder == embeddings.encoder_name()
    assert spec.text.is_fitted and spec.text.dim == 384
    names = feats.matrix.names
    assert names[: len(BASE_FEATURES)] == BASE_FEATURES
    assert names[-len(spec.text.names):] == spec.text.names
    assert np.isfinite(feats.matrix.values).all()
    n_texts = _column(feats, "text_n_texts_log")
    assert n_texts["su1"] == pytest.approx(np.log(2)) and n_texts["su4b"] == pytest.approx(
        np.log(2))


@needs_model
def test_copy_pasted_text_across_users_lights_up_similarity(feats) -> None:
    sim = _column(feats, "text_max_sim_other_users")
    # point in time: u1 wrote the template first (nobody to copy), u2 pasted it an hour later
    assert sim["su1"] == 0.0 and sim["su2"] == 1.0
    assert sim["su3"] > 0.85                 # the template dressed up with a tail
    distinct = max(sim["su4"], sim["su4b"], sim["su5"])
    assert distinct < 0.7 and sim["su4b"] < 1.0  # u4's own copy does not count
    assert sim["su6"] == 0.0                     # short texts are left out
    emb = np.array([_column(feats, f"text_emb_{i}")["su1"] for i in range(8)])
    same = np.array([_column(feats, f"text_emb_{i}")["su2"] for i in range(8)])
    np.testing.assert_allclose(emb, same, atol=1e-6)
    assert np.abs(emb).sum() > 0


@needs_model
def test_a_spec_from_before_point_in_time_compares_with_every_text(store_path: Path,
                                                                   feats) -> None:
    old = dataclasses.replace(feats.spec, sharing=WHOLE_TABLE)
    with Store.open(store_path) as store:
        for scope in (None, ["su1", "su2"]):
            sim = _column(build_session_features(store.con, spec=old, session_ids=scope),
                          "text_max_sim_other_users")
            assert sim["su1"] == sim["su2"] == 1.0  # the same text by another user, ever


@needs_model
def test_scoped_build_matches_the_full_build(store_path: Path, feats) -> None:
    with Store.open(store_path) as store:
        part = build_session_features(store.con, spec=feats.spec, session_ids=["su3", "su4b"])
    full = pd.DataFrame(feats.matrix.values, index=feats.matrix.session_ids)
    np.testing.assert_allclose(part.matrix.values, full.loc[list(part.matrix.session_ids)],
                               atol=1e-6)


def test_spec_round_trip_and_hash() -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(size=(50, 384)) * np.linspace(3, 0.1, 384)
    text = TextSpec("all-MiniLM-L6-v2@0.1.0").fit(means)
    spec = FeatureSpec(("login", "review"), text=text)
    plain = FeatureSpec(("login", "review"))
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.names == (*plain.names, *text.names)
    assert spec.hash != plain.hash
    refit = TextSpec(text.encoder).fit(means[:40])
    assert FeatureSpec(("login", "review"), text=refit).hash != spec.hash
    assert TextSpec(text.encoder).fit(means) == text  # the same data gives the same spec
    # A spec saved before text features existed (no "text" key) loads with the same hash.
    assert "text" not in plain.to_dict() and FeatureSpec.from_dict(plain.to_dict()) == plain
    with pytest.raises(ModelError, match="hash"):
        FeatureSpec.from_dict({**spec.to_dict(), "text": refit.to_dict()})
    with pytest.raises(ModelError, match="fitted"):
        TextSpec.from_dict(TextSpec(text.encoder).to_dict())
    coords = text.project(means)  # (50, 8): the top components, in order of variance
    assert coords.shape == (50, 8) and np.all(np.diff(coords.var(axis=0)) <= 1e-6)


@needs_model
def test_models_keep_their_choice_and_refuse_another_encoder(store_path: Path, feats) -> None:
    with Store.open(store_path) as store:
        without = build_session_features(store.con, text=False)
        assert without.spec.text is None and without.matrix.names[-1] == "share[<other>]"
        rescored = build_session_features(store.con, spec=without.spec)
        assert rescored.matrix.names == without.matrix.names  # trained without, scored without
        other = FeatureSpec(feats.spec.event_types, text=TextSpec(
            "another-model@9").fit(np.eye(10, 384)))
        with pytest.raises(ModelError, match="another-model@9.*Retrain"):
            build_session_features(store.con, spec=other)


@pytest.fixture()
def model_missing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The model package cannot be imported (as if the text extra were not installed)."""
    monkeypatch.setitem(sys.modules, embeddings.MODEL_PACKAGE, None)  # import -> ImportError
    embeddings._model_package.cache_clear()
    yield
    embeddings._model_package.cache_clear()


def test_without_the_model_text_features_are_absent(
    model_missing: None, store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="core.text.embeddings"):
        assert not text_features_available()
        assert not text_features_available()
    notices = [r for r in caplog.records if "text features are off" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0].getMessage()
    assert embeddings.text_features_notice() is not None
    with Store.open(store_path) as store:
        out = build_session_features(store.con)
        assert out.spec.text is None and not any(n.startswith("text_emb")
                                                 for n in out.matrix.names)
        trained_with = FeatureSpec(out.spec.event_types, text=TextSpec(
            "all-MiniLM-L6-v2@0.1.0").fit(np.eye(10, 384)))
        with pytest.raises(ModelError, match="no sentence model installed.*retrain"):
            build_session_features(store.con, spec=trained_with)


@pytest.mark.parametrize("block_rows", [7, 10_000])
def test_point_in_time_similarity_equals_a_brute_force_search(
        block_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.text.features as text_features
    from core.text.features import _max_sim_point_in_time

    monkeypatch.setattr(text_features, "_BLOCK_CELLS", 4 * 20 * block_rows)  # 20 references

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ref_text = np.arange(20)
    user1 = rng.integers(0, 6, 20)
    t1 = rng.integers(0, 100, 20)
    second = rng.random(20) < 0.5
    t2 = np.where(second, t1 + rng.integers(0, 50, 20), np.iinfo(np.int64).max)
    n = 200
    row_text, row_user = rng.integers(0, 30, n), rng.integers(0, 6, n)
    row_end, row_long = rng.integers(0, 160, n), rng.random(n) < 0.9
    got = _max_sim_point_in_time(vectors, ref_text, user1, t1, t2, row_text, row_user,
                                 row_end, row_long)
    for i in range(n):
        if not row_long[i]:
            assert np.isnan(got[i])
            continue
        other = np.where(user1 == row_user[i], t2, t1)  # earliest writer who is not the row's
        known = other <= row_end[i]
        sims = np.where(known, vectors[ref_text] @ vectors[row_text[i]], -np.inf)
        sims[known & (ref_text == row_text[i])] = 1.0
        assert got[i] == pytest.approx(sims.max(), abs=1e-6)
