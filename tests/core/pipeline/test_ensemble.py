"""The ensemble: rank normalisation, weights, contributions, scoring through the store and CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.detectors.ensemble import (
    PROBS,
    EnsembleCombiner,
    agreement_weights,
    ap_weights,
    choose_weights,
    rank_normalise,
    reference_quantiles,
    sane_members,
    stacked_weights,
)
from core.errors import ConfigError, ModelError
from core.pipeline import evaluate_models, score_model, train_model
from core.pipeline.ensemble import (
    ensemble_contributions,
    score_ensemble,
    train_ensemble,
)
from core.store import Store

MEMBER_KINDS = {"zscore", "autoencoder", "sequence_autoencoder"}


# ------------------------------------------------------------------------------ arithmetic
def test_rank_normalise_is_the_reference_cdf_with_increasing_tails() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=5000)
    q = reference_quantiles(reference)
    probe = np.array([-1.0, 0.0, 1.0])
    expected = np.array([(reference <= x).mean() for x in probe])
    np.testing.assert_allclose(rank_normalise(q, probe), expected, atol=0.01)
    beyond = np.array([q[-1] + 0.01, q[-1] + 1.0, q[-1] + 10.0, q[-1] + 1e6])
    high = rank_normalise(q, beyond)
    assert np.all(np.diff(high) > 0) and np.all(high < 1.0) and high[0] > PROBS[-1]
    low = rank_normalise(q, np.array([q[0] - 1e6, q[0] - 1.0]))
    assert 0.0 < low[0] < low[1] < PROBS[0]


def test_rank_normalise_handles_ties_and_constant_references() -> None:
    tied = reference_quantiles(np.r_[np.zeros(900), np.arange(1, 101, dtype=float)])
    ranks = rank_normalise(tied, np.array([0.0, 50.0, 100.0, 200.0]))
    assert np.all(np.diff(ranks) > 0) and abs(ranks[0] - 0.45) < 0.01
    flat = reference_quantiles(np.full(50, 2.0))
    out = rank_normalise(flat, np.array([1.0, 2.0, 3.0]))
    assert out[0] < out[1] < out[2] < 1.0 and out[1] == pytest.approx(0.5)


def test_combiner_round_trip_and_tamper(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    combiner = EnsembleCombiner.fit(["a", "b", "c"], [rng.normal(size=300) for _ in range(3)],
                                    [2.0, 1.0, 1.0])
    assert combiner.weights.tolist() == [0.5, 0.25, 0.25]
    scores = rng.normal(size=(40, 3))
    combiner.save(tmp_path / "ens")
    loaded = EnsembleCombiner.load(tmp_path / "ens")
    np.testing.assert_array_equal(loaded.combine(scores)[0], combiner.combine(scores)[0])
    document = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    document["members"] = ["a", "c", "b"]
    (tmp_path / "ens" / "ensemble.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="fingerprint"):
        EnsembleCombiner.load(tmp_path / "ens")
    with pytest.raises(ModelError, match="ensemble.json"):
        EnsembleCombiner.load(tmp_path / "missing")
    with pytest.raises(ConfigError, match="at least 2"):
        EnsembleCombiner.fit(["a"], [rng.normal(size=10)], [1.0])


# ------------------------------------------------------------------------------ the store
@pytest.fixture(scope="module")
def scored(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the demo store with an ensemble of its three models, trained and scored."""
    db = tmp_path_factory.mktemp("ensemble") / "demo.duckdb"
    shutil.copy(demo_store, db)
    with Store.open(db) as store:
        result = train_model(store, "ensemble")
        scoring = score_model(store, result.model_id)
    return {"db": db, "train": result, "score": scoring}


def _frame(db: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with Store.open(db, read_only=True) as store:
        return store.con.execute(sql, params or []).df()


def _row(db: Path, model_id: str) -> dict:
    with Store.open(db, read_only=True) as store:
        return store.models.by_id(model_id)


def test_default_members_are_the_scored_models_and_weights_sum_to_one(scored: dict) -> None:
    row = _row(scored["db"], scored["train"].model_id)
    config, metrics = json.loads(row["config"]), json.loads(row["metrics"])
    assert row["detector"] == "ensemble" and set(config["detectors"]) == MEMBER_KINDS
    weights = np.array(list(config["weights"].values()))
    assert abs(weights.sum() - 1.0) < 1e-9 and np.all(weights >= 0)
    # The demo store has one or two labelled anomalies after training: too few to weigh by AP.
    assert metrics["weight_source"] == "agreement" and "note" in metrics
    assert set(metrics["reference_sizes"]) == set(config["members"])
    combiner = EnsembleCombiner.load(scored["train"].path)
    assert combiner.fingerprint == row["feature_hash"]


def test_every_session_is_scored_and_contributions_sum_to_the_score(scored: dict) -> None:
    db, model_id = scored["db"], scored["train"].model_id
    with Store.open(db, read_only=True) as store:
        n_sessions = store.summary.count_sessions()
    assert scored["score"].n_sessions == n_sessions and scored["score"].n_skipped == 0
    joined = _frame(db, """
        SELECT s.session_id, s.score, sum(c.contribution) AS total, count(*) AS n_members
        FROM scores s JOIN score_contributions c
          ON c.model_id = s.model_id AND c.session_id = s.session_id
        WHERE s.model_id = ? GROUP BY ALL""", [model_id])
    assert len(joined) == n_sessions and (joined["n_members"] == 3).all()
    np.testing.assert_allclose(joined["total"], joined["score"], rtol=1e-12)
    # label-free: the weighted mean of the members' tail surprise -log(1 - rank), >= 0
    assert EnsembleCombiner.load(scored["train"].path).combination == "tail"
    assert (joined["score"] >= 0).all() and np.isfinite(joined["score"]).all()
    top = joined.sort_values("score").iloc[-1]["session_id"]
    with Store.open(db, read_only=True) as store:
        parts = ensemble_contributions(store, model_id, top)
    assert set(parts["detector"]) == MEMBER_KINDS
    assert parts["contribution"].is_monotonic_decreasing


def test_rescoring_is_idempotent(scored: dict, tmp_path: Path) -> None:
    db = tmp_path / "again.duckdb"
    shutil.copy(scored["db"], db)
    model_id = scored["train"].model_id
    query = ("SELECT session_id, score FROM scores WHERE model_id = ? ORDER BY session_id")
    parts = ("SELECT session_id, member_id, contribution FROM score_contributions "
             "WHERE model_id = ? ORDER BY session_id, member_id")
    before, before_parts = _frame(db, query, [model_id]), _frame(db, parts, [model_id])
    with Store.open(db) as store:
        score_model(store, model_id)
        assert score_model(store, model_id, only_new=True).n_sessions == 0
    pd.testing.assert_frame_equal(_frame(db, query, [model_id]), before)
    pd.testing.assert_frame_equal(_frame(db, parts, [model_id]), before_parts)


def test_ensemble_is_no_worse_than_its_weakest_member(scored: dict) -> None:
    """On the window after the ensemble's train end (which its weights never saw)."""
    with Store.open(scored["db"], read_only=True) as store:
        results = evaluate_models(store, from_ts=scored["train"].train_end)
    ap = {r["detector"]: r["average_precision"] for r in results if "average_precision" in r}
    assert set(ap) == MEMBER_KINDS | {"ensemble"}, results
    assert ap["ensemble"] >= min(ap[k] for k in MEMBER_KINDS)


def test_with_labels_the_ensemble_is_the_best_candidate_out_of_sample(scored: dict) -> None:
    with Store.open(scored["db"]) as store:
        members = json.loads(_row_in(store, scored["train"].model_id)["config"])["members"]
        result = train_ensemble(store, members, min_validation_anomalies=1)
        metrics = json.loads(_row_in(store, result.model_id)["metrics"])
    combination = metrics["combination"]
    oob = combination["out_of_sample_ap"]
    assert metrics["weight_source"] == combination["method"] in oob
    assert oob[combination["method"]] == max(oob.values())
    assert set(combination["validation_ap"]) <= set(oob)  # the in-sample figures, reported
    assert result.train_end > min(pd.Timestamp(w) for w in metrics["validation_window"])
    assert metrics["operating_point"]["rule"] in ("best_f1_validation", "q995", "mad4",
                                                   "tukey", "q95")
    risk = metrics["risk_calibration"]  # core.risk: kept with the model for the risk score
    labelled_positives = risk["n_positive"]
    assert risk["kind"] == ("probability" if labelled_positives >= 20 else "percentile")
    assert len(risk["reference"]) == len(metrics["score_reference"]["train"])


def test_choose_weights_falls_back_to_the_best_member() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.1
    good = np.where(y, 0.8 + 0.2 * rng.random(400), 0.7 * rng.random(400))
    noise = rng.random((400, 2))
    ranks = np.column_stack([noise[:, 0], good, noise[:, 1]])
    name, weights, aps = choose_weights(ranks, y, {"equal": lambda r, _: np.full(3, 1 / 3)})
    assert name == "best_member" and weights.tolist() == [0.0, 1.0, 0.0]
    assert aps["out_of_sample"]["best_member"] > aps["out_of_sample"]["equal"]
    assert aps["in_sample"]["best_member"] > aps["in_sample"]["equal"]
    stacked = stacked_weights(ranks, y)
    assert stacked is not None and int(np.argmax(stacked)) == 1


def test_a_best_member_that_wins_by_noise_gives_way_to_the_average() -> None:
    """Ten members see one signal through shared noise and a little of their own: the average
    predicts better on fresh data every time, yet whichever member looks best on a small
    window often beats the average there by chance. Judged out of sample, the choice goes to
    the average clearly more often than an in-sample comparison lets it."""
    out_of_sample = in_sample = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        y = rng.random(400) < 0.06
        shared = y * 1.0 + rng.normal(0, 0.8, 400)
        ranks = np.column_stack([shared + rng.normal(0, 0.5, 400) for _ in range(10)])
        name, _, aps = choose_weights(ranks, y, {"validation_ap": ap_weights})
        out_of_sample += name == "validation_ap"
        fitted = aps["in_sample"]
        in_sample += fitted["validation_ap"] > fitted["best_member"]
    assert out_of_sample >= 6 and out_of_sample >= in_sample + 2


def test_agreement_weights_discount_a_dissenting_member() -> None:
    rng = np.random.default_rng(2)
    signal = rng.random(500)
    ranks = np.column_stack([signal + 0.1 * rng.random(500), signal + 0.1 * rng.random(500),
                             signal + 0.1 * rng.random(500), rng.random(500)])
    weights = agreement_weights(ranks, np.ones(4, bool))
    assert weights.sum() == pytest.approx(1.0) and weights[3] < 0.05 < weights[:3].min()
    two = agreement_weights(ranks[:, :2], np.ones(2, bool))
    assert two.tolist() == [0.5, 0.5]


def test_near_constant_members_are_left_out_without_labels() -> None:
    rng = np.random.default_rng(1)
    quantiles = np.stack([reference_quantiles(rng.normal(size=500)),
                          reference_quantiles(np.full(500, 0.5)),
                          reference_quantiles(rng.gamma(2.0, size=500))])
    assert sane_members(quantiles).tolist() == [True, False, True]


def _row_in(store: Store, model_id: str) -> dict:
    return store.models.by_id(model_id)


def test_no_labels_gives_equal_weights(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        store.con.execute("DELETE FROM labels")
        store.con.execute("DELETE FROM session_label_rollup")  # raw SQL bypasses the writers
        result = train_ensemble(store, min_validation_anomalies=1)
        metrics = json.loads(_row_in(store, result.model_id)["metrics"])
    assert metrics["weight_source"] == "agreement" and "equal weights" in metrics["note"]
    weights = np.array(list(metrics["weights"].values()))
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    assert metrics["operating_point"]["rule"] == "members_flag_rate"


def test_sessions_a_member_has_not_scored_are_skipped_and_counted(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        members = store.models.listing()["model_id"].tolist()
        result = train_ensemble(store, members)
        missing = store.con.execute(
            "SELECT session_id FROM scores WHERE model_id = ? ORDER BY session_id LIMIT 7",
            [members[0]]).df()["session_id"].tolist()
        store.con.execute("DELETE FROM scores WHERE model_id = ? AND list_contains(?, session_id)",
                          [members[0], missing])
        scoring = score_ensemble(store, result.model_id)
        n_sessions = store.summary.count_sessions()
        scored_ids = set(store.scores.of_model(result.model_id)["session_id"])
    assert scoring.n_skipped == 7 and scoring.n_sessions == n_sessions - 7
    assert not scored_ids & set(missing)


def test_bad_members_are_refused_clearly(scored: dict) -> None:
    with Store.open(scored["db"]) as store:
        members = store.models.listing().query("detector != 'ensemble'")["model_id"].tolist()
        with pytest.raises(ModelError, match="registered models.*'no-such-model'"):
            train_ensemble(store, [members[0], "no-such-model"])
        with pytest.raises(ModelError, match="must be detector models"):
            train_ensemble(store, [members[0], scored["train"].model_id])
        with pytest.raises(ConfigError, match="at least 2"):
            train_ensemble(store, [members[0]])


def test_cli_trains_and_scores_an_ensemble(demo_store_copy: Path) -> None:
    db = str(demo_store_copy)
    with Store.open(db, read_only=True) as store:
        models = store.models.listing()
    chosen = models.query("detector != 'sequence_autoencoder'")["model_id"].tolist()
    result = CliRunner().invoke(main, ["train", "--detector", "ensemble", "--members",
                                       ",".join(chosen), "--db", db, "--quiet"])
    assert result.exit_code == 0, result.output
    model_id = result.output.strip().splitlines()[-1]
    assert model_id.startswith("ensemble-")
    result = CliRunner().invoke(main, ["score", "--model", model_id, "--db", db])
    assert result.exit_code == 0 and "scored" in result.output, result.output
    with Store.open(db, read_only=True) as store:
        assert json.loads(_row_in(store, model_id)["config"])["members"] == chosen
        assert store.scores.count(model_id) > 0
    result = CliRunner().invoke(main, ["train", "--detector", "zscore", "--members", "x",
                                       "--db", db])
    assert result.exit_code != 0 and "--members" in result.output


def test_tail_combination_lets_one_sure_member_outweigh_lukewarm_agreement(tmp_path) -> None:
    rng = np.random.default_rng(0)
    references = [rng.normal(size=5000) for _ in range(3)]
    # a: extreme for one member only; b: in the top 10% of every member
    scores = np.array([[9.0, 0.0, 0.0], [1.4, 1.4, 1.4]])
    rank = EnsembleCombiner.fit(["m1", "m2", "m3"], references, np.ones(3))
    tail = EnsembleCombiner.fit(["m1", "m2", "m3"], references, np.ones(3), "tail")
    assert rank.combine(scores)[0][0] < rank.combine(scores)[0][1]
    assert tail.combine(scores)[0][0] > tail.combine(scores)[0][1]
    total, parts = tail.combine(scores)
    np.testing.assert_allclose(parts.sum(axis=1), total)
    tail.save(tmp_path / "tail")
    assert EnsembleCombiner.load(tmp_path / "tail").combination == "tail"
    # an ensemble saved before combinations existed loads as "rank", fingerprint unchanged
    rank.save(tmp_path / "rank")
    document = json.loads((tmp_path / "rank" / "ensemble.json").read_text())
    del document["combination"]
    (tmp_path / "rank" / "ensemble.json").write_text(json.dumps(document))
    loaded = EnsembleCombiner.load(tmp_path / "rank")
    assert loaded.combination == "rank" and loaded.fingerprint == rank.fingerprint
    assert tail.fingerprint != rank.fingerprint


def test_with_labels_tail_surprises_win_where_each_anomaly_is_seen_by_one_member() -> None:
    """Each anomaly is at the very top of one member and ordinary in the others: averaged
    ranks bury it, averaged surprises do not, and the choice out of sample says so."""
    from core.pipeline.ensemble import _combination

    rng = np.random.default_rng(4)
    n, m = 3000, 3
    ranks = rng.uniform(0.0, 0.99, size=(n, m))
    labels = np.zeros(n, bool)
    labels[rng.choice(n, 60, replace=False)] = True
    for i, row in enumerate(np.flatnonzero(labels)):
        ranks[row, i % m] = 0.9999
    quantiles = np.tile(np.linspace(0.0, 1.0, 1001), (m, 1))
    method, choice = _combination(ranks, labels, None, quantiles, ["a", "b", "c"], ranks)
    assert method.endswith("_tail") and choice["combination"] == "tail"
    oob = choice["out_of_sample_ap"]
    assert oob[method] == max(oob.values())
    assert oob[method] > max(v for k, v in oob.items() if not k.endswith("_tail")) + 0.2


def test_without_labels_a_specialist_gets_weight_zero_and_the_note_says_so() -> None:
    """A member whose detector is not ``weighed_without_labels`` (``ecdf_extremes``) counts
    nothing in an ensemble without labels; with labels it is weighed like the others."""
    from core.detectors.registry import weighed_without_labels
    from core.pipeline.ensemble import _combination

    assert not weighed_without_labels("ecdf_extremes") and weighed_without_labels("zscore")
    rng = np.random.default_rng(5)
    shared = rng.normal(size=2000)
    ranks = np.column_stack([shared + rng.normal(0, 0.3, 2000) for _ in range(3)])
    quantiles = np.tile(np.linspace(0.0, 1.0, 1001), (3, 1))
    no_labels = (np.empty((0, 3)), np.empty(0, bool), "equal weights: no labels")
    method, choice = _combination(*no_labels, quantiles, ["a", "b", "c"], ranks,
                                  [True, True, False])
    assert method == "agreement" and choice["weights"][2] == 0.0
    assert choice["weights"][:2].sum() == pytest.approx(1.0)
    assert "left out without labels" in choice["excluded"] and "c" in choice["excluded"]
    _, every = _combination(*no_labels, quantiles, ["a", "b", "c"], ranks)
    assert (every["weights"] > 0).all() and "excluded" not in every
    labels = shared > np.quantile(shared, 0.95)
    _, labelled = _combination(ranks, labels, None, quantiles, ["a", "b", "c"], ranks,
                               [True, True, False])
    assert "excluded" not in labelled
