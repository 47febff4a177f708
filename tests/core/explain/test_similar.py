"""Similar past cases: the index, the decided sessions, retrieval and its refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.app import similar as app_similar
from core.errors import ConfigError
from core.similar.vectors import VectorIndex, fit_scaler, loo_distance_cut
from core.store import Store
from tests.core.explain._similar_store import build


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = build(tmp_path_factory.mktemp("similar") / "s.duckdb")
    with Store.open(path, read_only=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def index(store: Store) -> app_similar.SimilarityIndex:
    return app_similar.build_similarity_index(store)


def unit(rows: list[list[float]]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_nearest_finds_the_known_neighbour_and_leaves_the_query_out() -> None:
    index = VectorIndex(np.array(["a", "b", "c", "d"], dtype=object),
                        unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]]))
    rows, sims = index.nearest(unit([[1, 0.05, 0]])[0], 2)
    assert list(index.session_ids[rows]) == ["a", "b"] and sims[0] >= sims[1]
    rows, _ = index.nearest(index.vectors[0], 2, exclude="a")
    assert list(index.session_ids[rows]) == ["b", "c"]
    rows, _ = index.nearest(index.vectors[0], 10, exclude="a")  # k beyond the index
    assert "a" not in set(index.session_ids[rows]) and len(rows) == 3
    many_rows, many_sims = index.nearest_many(index.vectors, 2, exclude=list(index.session_ids))
    for i in range(4):
        one_rows, one_sims = index.nearest(index.vectors[i], 2, exclude=index.session_ids[i])
        assert list(many_rows[i]) == list(one_rows)
        np.testing.assert_allclose(many_sims[i], one_sims, rtol=1e-6)


def test_the_distance_cut_is_a_high_quantile_of_leave_one_out_distances() -> None:
    rng = np.random.default_rng(0)
    tight = unit((np.array([1.0, 0, 0]) + rng.normal(0, 0.01, (50, 3))).tolist())
    index = VectorIndex(np.array([f"s{i}" for i in range(50)], dtype=object), tight)
    cut = loo_distance_cut(index)
    assert 0 < cut < 0.01  # a tight cluster: its members are close to one another
    assert loo_distance_cut(VectorIndex(np.array(["x"], dtype=object), tight[:1])) == np.inf


def test_scaler_floors_constant_columns() -> None:
    centre, scale = fit_scaler(np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0], [7.0, 5.0]]))
    assert centre[0] == pytest.approx(4.0) and scale[1] == pytest.approx(0.1)
    assert (scale > 0).all()


def test_decided_sessions_carry_decision_scenario_and_case(store: Store) -> None:
    decided = store.similar.decided_sessions().set_index("session_id")
    assert set(decided.index) == {"ct-0", "ct-1", "n-0", "sc-0"}
    assert decided.loc["ct-0", "decision"] == "fraud_confirmed"
    assert decided.loc["ct-0", "scenario"] == "card_testing"
    assert decided.loc["ct-0", "case_id"] == decided.loc["ct-1", "case_id"]
    assert decided.loc["n-0", "decision"] == "false_positive"
    assert decided.loc["n-0", "scenario"] == "normal"
    assert decided.loc["sc-0", "decision"] == "inconclusive"  # no label, still a past case
    n_cases, _ = store.similar.decided_cases_version()
    assert n_cases == 3


def test_similar_cases_rank_the_same_behaviour_first(store: Store,
                                                     index: app_similar.SimilarityIndex) -> None:
    found = app_similar.similar_cases(store, "ct-5", k=3, index=index)
    assert list(found.columns) == app_similar.SIMILAR_COLUMNS
    assert set(found["session_id"].iloc[:2]) == {"ct-0", "ct-1"}
    assert (found["decision"].iloc[:2] == "fraud_confirmed").all()
    assert found["typology"].iloc[0] == "card testing" and found["case_id"].iloc[0]
    assert found["similarity"].is_monotonic_decreasing
    mine = app_similar.similar_cases(store, "ct-0", k=5, index=index)
    assert "ct-0" not in set(mine["session_id"]) and mine["session_id"].iloc[0] == "ct-1"
    assert len(mine) == 3  # four decided sessions, itself left out


def test_an_indexed_session_has_one_vector(index: app_similar.SimilarityIndex) -> None:
    decided = index.decided.vectors[index.decided.position("ct-0")]
    pooled = index.typology.index.vectors[index.typology.index.position("ct-0")]
    np.testing.assert_allclose(decided, pooled, atol=1e-6)
    assert np.linalg.norm(decided) == pytest.approx(1.0, abs=1e-5)


def test_the_key_moves_with_a_decision(tmp_path: Path) -> None:
    from core.cases.lifecycle import decide_case, open_case

    path = build(tmp_path / "k.duckdb", decide=False)
    with Store.open(path) as store:
        before = app_similar.similarity_key(store)
        with pytest.raises(ConfigError, match="decided sessions must exist"):
            app_similar.similar_cases(store, "ct-1", index=app_similar.build_similarity_index(
                store))
        case = open_case(store, analyst="ana", session_id="sc-2")
        decide_case(store, case.case_id, "inconclusive", analyst="ana")
        assert app_similar.similarity_key(store) != before
        assert app_similar.build_similarity_index(store).n_decided == 1


def test_user_errors_are_clear(store: Store, index: app_similar.SimilarityIndex) -> None:
    with pytest.raises(ConfigError, match="session must be a stored session id, got 'nope'"):
        app_similar.similar_cases(store, "nope", index=index)
    with pytest.raises(ConfigError, match="k must be a whole number from 1 to 50, got 0"):
        app_similar.similar_cases(store, "ct-1", k=0, index=index)


def test_breakdowns_of_decisions_and_the_queue(store: Store,
                                               index: app_similar.SimilarityIndex) -> None:
    decided = app_similar.decision_breakdown(store).set_index(["typology", "decision"])
    assert decided.loc[("card testing", "fraud_confirmed"), "sessions"] == 2
    assert decided.loc[("card testing", "fraud_confirmed"), "cases"] == 1
    assert decided.loc[("normal", "false_positive"), "cases"] == 1
    guesses = app_similar.queue_typology(store, ["ct-3", "sc-4", "n-5", "ct-4"], index=index,
                                         limit=3)
    assert list(guesses["session_id"]) == ["ct-3", "sc-4", "n-5"]  # bounded by limit
    counts = app_similar.typology_counts(guesses).set_index("typology")
    assert counts.loc["card testing", "sessions"] == 1
    assert counts["share"].sum() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("cache", ["on", "off"])
def test_a_scored_store_reads_every_row_from_the_full_matrix(
        demo_store: Path, monkeypatch: pytest.MonkeyPatch, cache: str) -> None:
    monkeypatch.setenv("ANOMALYST_FEATURE_CACHE", cache)  # off: built once, held in memory
    with Store.open(demo_store, read_only=True) as scored:
        index = app_similar.build_similarity_index(scored)
        rep = index.representation
        assert rep is not None and rep.full is not None and rep.spec.get("kind") == "features"
        assert len(index.typology) > 0 and index.n_decided == 0
        other = str(rep.full.session_ids[0])
        vector = index.vector(None, other)  # a row lookup: no store needed
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        assert app_similar.typology_of(scored, other, index=index).session_id == other
