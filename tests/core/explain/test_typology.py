"""The typology guess: nearest labelled anomalies vote; far or split means no close match."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from core.app import similar as app_similar
from core.similar.typology import (
    NO_MATCH,
    TypologyGuess,
    TypologyModel,
    typology_name,
    typology_pool,
)
from core.store import Store
from tests.core.explain._similar_store import build


def cluster(centre: list[float], n: int, rng: np.random.Generator, spread: float = 0.02
            ) -> np.ndarray:
    x = np.asarray(centre, dtype=np.float32) + rng.normal(0, spread, (n, len(centre)))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> TypologyModel:
    rng = np.random.default_rng(1)
    vectors = np.vstack([cluster([1, 0, 0, 0], 30, rng), cluster([0, 1, 0, 0], 30, rng)])
    scenarios = ["card_testing"] * 30 + ["scraping_bot"] * 30
    return TypologyModel.fit([f"s{i}" for i in range(60)], vectors, scenarios, k=9)


def test_a_session_inside_a_cluster_gets_its_typology(model: TypologyModel) -> None:
    guess = model.guess("q", cluster([1, 0.01, 0, 0], 1, np.random.default_rng(5))[0])
    assert guess.scenario == "card_testing" and guess.name == "card testing"
    assert guess.confidence == pytest.approx(1.0)
    assert guess.text == "Looks like card testing (confidence 1.00)"
    assert guess.nearest_distance <= guess.cut


def test_far_from_every_labelled_anomaly_is_no_close_match(model: TypologyModel) -> None:
    guess = model.guess("q", np.array([0, 0, 1, 0], dtype=np.float32))
    assert guess.scenario is None and guess.why_none == "far" and guess.name == NO_MATCH
    assert guess.text.startswith("No close match: the nearest labelled anomaly is at distance")


def test_a_split_vote_is_no_close_match() -> None:
    rng = np.random.default_rng(2)
    mixed = cluster([1, 0, 0], 20, rng)  # one place, two scenarios in turn
    scenarios = ["card_testing", "account_takeover"] * 10
    model = TypologyModel.fit([f"s{i}" for i in range(20)], mixed, scenarios, k=10,
                              min_share=0.6)
    guess = model.guess("q", mixed[0])
    assert guess.scenario is None and guess.why_none == "split"
    assert 0.3 < guess.confidence < 0.6 and "disagree" in guess.text


def test_confidence_is_the_weighted_share_of_the_vote() -> None:
    vectors = np.array([[1, 0], [1, 0], [1, 0], [0.8, 0.6]], dtype=np.float32)
    model = TypologyModel.fit(["a", "b", "c", "d"], vectors, ["x", "x", "x", "y"], k=4,
                              quantile=1.0)
    guess = model.guess("q", np.array([1, 0], dtype=np.float32))
    assert guess.scenario == "x"
    assert guess.confidence == pytest.approx(3 / 3.8, abs=1e-4)  # weights 1, 1, 1, 0.8
    assert guess.votes == pytest.approx({"x": 3 / 3.8, "y": 0.8 / 3.8}, abs=1e-4)


def test_a_labelled_session_does_not_vote_for_itself(model: TypologyModel) -> None:
    guess = model.guess("s0", model.index.vectors[0])
    assert guess.nearest_distance > 0


def test_too_small_a_pool_gives_no_guess() -> None:
    model = TypologyModel.fit(["a"], np.array([[1.0, 0]], dtype=np.float32), ["x"])
    guess = model.guess("q", np.array([1.0, 0], dtype=np.float32))
    assert guess.scenario is None and guess.why_none == "empty"
    assert isinstance(guess, TypologyGuess) and "no labelled anomaly" in guess.text


def test_names_and_pool() -> None:
    assert typology_name("card_testing") == "card testing"
    assert typology_name("account-takeover ") == "account takeover"
    assert typology_name(None) == "unspecified"
    labels = pd.DataFrame({"session_id": ["a", "b", "c", "d"],
                           "is_anomaly": [True, True, False, True],
                           "scenario": ["card_testing", "unspecified", "normal", None]})
    pool = typology_pool(labels)
    assert list(pool["session_id"]) == ["a"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = build(tmp_path_factory.mktemp("typology") / "s.duckdb")
    with Store.open(path, read_only=True) as opened:
        yield opened


def test_sessions_of_the_store_get_their_behaviour(store: Store) -> None:
    index = app_similar.build_similarity_index(store)
    assert len(index.typology) == 24  # the normal sessions are not in the pool
    assert app_similar.typology_of(store, "ct-5", index=index).scenario == "card_testing"
    assert app_similar.typology_of(store, "sc-5", index=index).scenario == "scraping_bot"
    normal = app_similar.typology_of(store, "n-4", index=index)
    assert normal.scenario is None and normal.to_dict()["name"] == NO_MATCH


def test_a_store_without_labels_or_decisions(tmp_path) -> None:  # noqa: ANN001
    path = build(tmp_path / "bare.duckdb", decide=False, labelled=False)
    with Store.open(path, read_only=True) as bare:
        index = app_similar.build_similarity_index(bare)
        assert index.n_decided == 0 and len(index.typology) == 0
        guess = app_similar.typology_of(bare, "ct-1", index=index)
        assert guess.why_none == "empty" and guess.name == NO_MATCH
        assert app_similar.decision_breakdown(bare).empty
        guesses = app_similar.queue_typology(bare, ["ct-1", "n-1"], index=index)
        assert set(guesses["typology"]) == {NO_MATCH}
