"""gbdt (LightGBM): it learns, weights the rare class, stops early, calibrates, saves as text,
and its TreeSHAP values are additive."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _labelled import make_labelled_features
from sklearn.metrics import roc_auc_score

from core.datasets import FeatureMatrix
from core.detectors import (
    GBDTConfig,
    GBDTDetector,
    available_detectors,
    build_detector,
    get_detector_class,
    load_detector,
)
from core.errors import ConfigError, ModelError

SMALL = {"n_estimators": 60, "min_child_samples": 5, "num_threads": 1}


def logistic_features(n: int, seed: int, shift: float = -3.0) -> tuple[FeatureMatrix, np.ndarray]:
    """Features whose labels follow P(y=1) = sigmoid(2 x0 + x1 + shift): overlapping classes,
    so calibration has something to get right (about 10% positive at the default shift)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    p = 1.0 / (1.0 + np.exp(-(2.0 * x[:, 0] + x[:, 1] + shift)))
    y = (rng.random(n) < p).astype(float)
    return FeatureMatrix(np.array([f"g{seed}-{i}" for i in range(n)], dtype=object),
                         x.astype(np.float32), tuple(f"feature_{j}" for j in range(5))), y


@pytest.fixture(scope="module")
def separable() -> tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray]:
    train, y = make_labelled_features(1500, seed=1)
    test, y_test = make_labelled_features(1500, seed=2)
    return train, y, test, y_test


@pytest.fixture(scope="module")
def fitted(separable: tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray],
           ) -> GBDTDetector:
    train, y, _, _ = separable
    return GBDTDetector(GBDTConfig(**SMALL)).fit(train, y)


def test_gbdt_is_a_registered_supervised_feature_detector() -> None:
    assert "gbdt" in available_detectors()
    cls = get_detector_class("gbdt")
    assert cls is GBDTDetector and cls.requires_labels and cls.input_kind == "features"
    assert isinstance(build_detector("gbdt", n_estimators=5), GBDTDetector)


def test_fits_and_scores_a_separable_set(
    fitted: GBDTDetector,
    separable: tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray],
) -> None:
    _, _, test, y_test = separable
    scores = fitted.score(test)
    assert scores.dtype == np.float64 and scores.shape == (len(test),)
    assert roc_auc_score(y_test, scores) > 0.95
    assert fitted.validation_ap_ is not None and fitted.validation_ap_ > 0.5


def test_class_weighting_changes_the_fit_on_imbalanced_data() -> None:
    train, y = make_labelled_features(2000, seed=3, rate=0.03)
    balanced = GBDTDetector(GBDTConfig(**SMALL, calibration="none")).fit(train, y)
    plain = GBDTDetector(GBDTConfig(**SMALL, calibration="none", pos_weight=1.0)).fit(train, y)
    n_pos = y[: int(len(y) * 0.8)].sum()
    assert balanced.pos_weight_ == pytest.approx((1600 - n_pos) / n_pos)
    assert plain.pos_weight_ == 1.0
    # Weighting the rare class by ~30 moves the margins up by about log(30) on average.
    gap = balanced.raw_margin(train).mean() - plain.raw_margin(train).mean()
    assert gap > 1.0
    assert balanced.score(train).mean() > 2 * plain.score(train).mean()


@pytest.mark.parametrize(("metric", "best_of"), [("logloss", np.argmin),
                                                  ("auc", np.argmax),
                                                  ("average_precision", np.argmax)])
def test_early_stopping_stops_before_n_estimators_when_validation_stops_improving(
        metric: str, best_of: Any) -> None:
    train, y = logistic_features(1500, seed=4, shift=-1.0)  # noisy labels: overfits quickly
    config = GBDTConfig(n_estimators=400, learning_rate=0.3, num_leaves=31,
                        min_child_samples=2, early_stopping_rounds=10,
                        early_stopping_metric=metric, num_threads=1)
    detector = GBDTDetector(config).fit(train, y)
    history = detector.history_
    assert history.metric == metric and history.stopped_early
    assert history.best_iteration < history.n_steps < 400
    assert history.n_steps == history.best_iteration + 10
    assert len(history.val_metric) == history.n_steps
    # refitted on every session for the best rounds, scaled by the sessions added
    assert history.refit_rounds == round(history.best_iteration / 0.8)
    assert detector.booster_.num_trees() == history.refit_rounds
    kept = GBDTDetector(dataclasses.replace(config, refit=False)).fit(train, y)
    assert kept.booster_.num_trees() == kept.history_.best_iteration
    assert kept.history_.refit_rounds == 0
    assert int(best_of(history.val_metric)) + 1 == history.best_iteration
    if metric == "logloss":  # of the prior-corrected probability, on the validation window
        window = train.take(np.arange(1200, 1500))
        z = kept.raw_margin(window) - np.log(kept.pos_weight_)  # the held-out model
        loss = np.mean(np.logaddexp(0.0, z) - y[1200:] * z)
        assert history.val_metric[history.best_iteration - 1] == pytest.approx(loss, rel=1e-6)
    # Without a validation window every round runs.
    full = GBDTDetector(GBDTConfig(n_estimators=30, validation_fraction=0.0, num_threads=1)
                        ).fit(train, y)
    assert full.history_.n_steps == full.history_.best_iteration == 30
    assert not full.history_.stopped_early and full.validation_ap_ is None


def test_calibrated_probabilities_are_reliable_on_held_out_data() -> None:
    train, y = logistic_features(5000, seed=5)
    test, y_test = logistic_features(20000, seed=6)
    config = GBDTConfig(n_estimators=300, learning_rate=0.05, num_leaves=7,
                        min_child_samples=20, num_threads=1)
    detector = GBDTDetector(config).fit(train, y)
    assert detector.calibration_.method == "platt"
    assert detector.history_.calibration_note is None
    p = detector.score(test)
    assert ((p >= 0) & (p <= 1)).all()
    assert abs(p.mean() - y_test.mean()) < 0.02
    # Reliability: predicted vs observed rates in ten equal-count bins.
    order = np.argsort(p)
    gaps = [abs(p[b].mean() - y_test[b].mean()) for b in np.array_split(order, 10)]
    assert max(gaps) < 0.07, gaps
    weights = [len(b) for b in np.array_split(order, 10)]
    assert np.average(gaps, weights=weights) < 0.03
    # The weighted model's raw sigmoid over-predicts the rare class badly.
    raw = GBDTDetector(GBDTConfig(**{**config.to_dict(), "calibration": "none"})).fit(train, y)
    assert raw.score(test).mean() > 2 * y_test.mean()


def test_too_few_validation_positives_fall_back_and_say_so() -> None:
    train, y = make_labelled_features(600, seed=7, rate=0.05)
    y[480:] = 0.0
    y[-3:] = 1.0  # three anomalous sessions in the validation window
    detector = GBDTDetector(GBDTConfig(**SMALL)).fit(train, y)
    assert detector.calibration_.method == "prior_shift"
    note = detector.history_.calibration_note
    assert note is not None and "3 anomalous" in note and "min_calibration_positives" in note
    assert detector.calibration_.intercept == pytest.approx(-np.log(detector.pos_weight_))
    p = detector.score(train)
    assert ((p >= 0) & (p <= 1)).all()
    assert detector.history_.to_dict()["calibration_note"] == note  # lands in the metrics


def test_save_load_round_trip_gives_identical_scores(
    fitted: GBDTDetector, tmp_path: Path,
    separable: tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray],
) -> None:
    folder = fitted.save(tmp_path / "gbdt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    from safetensors.numpy import load_file

    text = load_file(str(folder / "model.safetensors"))["booster"].tobytes().decode()
    assert text.startswith("tree\n")  # LightGBM's text model, not a pickle
    loaded = load_detector(folder)
    assert isinstance(loaded, GBDTDetector)
    _, _, test, _ = separable
    np.testing.assert_array_equal(loaded.score(test), fitted.score(test))
    assert loaded.calibration_ == fitted.calibration_
    assert loaded.history_ == fitted.history_
    assert loaded.validation_ap_ == fitted.validation_ap_
    state = json.loads((folder / "config.json").read_text())["state"]
    assert state["history"]["calibration"] == "platt"


def test_a_damaged_booster_text_raises_model_error(fitted: GBDTDetector, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from core.detectors.base import _sha256

    folder = fitted.save(tmp_path / "gbdt")
    weights = folder / "model.safetensors"
    save_file({"booster": np.frombuffer(b"not a model", dtype=np.uint8)}, str(weights))
    document = json.loads((folder / "config.json").read_text())
    document["weights_sha256"] = _sha256(weights)
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="LightGBM model"):
        load_detector(folder)


def test_tree_shap_is_additive_to_the_raw_margin(
    fitted: GBDTDetector,
    separable: tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray],
) -> None:
    _, _, test, _ = separable
    rows = test.take(np.arange(50))
    explained = fitted.tree_shap(rows)
    assert explained.values.shape == (50, len(test.names))
    np.testing.assert_allclose(explained.values.sum(axis=1) + explained.expected_value,
                               fitted.raw_margin(rows), rtol=0, atol=1e-6)
    # The injected pattern lives on features 0 and 1: they carry the attribution.
    top = np.abs(explained.values).mean(axis=0).argsort()[::-1][:2]
    assert set(top.tolist()) == {0, 1}
    # Against a background (interventional): still exact, base = mean background margin.
    background = test.take(np.arange(100, 200))
    against = fitted.tree_shap(rows, background)
    assert against.expected_value == pytest.approx(fitted.raw_margin(background).mean(),
                                                   abs=1e-6)
    np.testing.assert_allclose(against.values.sum(axis=1) + against.expected_value,
                               fitted.raw_margin(rows), rtol=0, atol=1e-6)


def test_explanations_use_exact_tree_shap_in_log_odds(
    fitted: GBDTDetector,
    separable: tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray],
) -> None:
    from core.explain import FeatureExplainer
    from core.explain.units import log_odds

    _, _, test, y_test = separable
    background = test.take(np.arange(100))
    explainer = FeatureExplainer("gbdt-test", fitted, background)
    row = int(np.flatnonzero(y_test)[0])
    attribution = explainer.explain(test, row)
    assert attribution.n_permutations == 0  # exact, not sampled
    assert attribution.units == "log-odds"  # a probability output: not squashed near 1
    p = float(fitted.score(test.take(np.array([row])))[0])
    assert attribution.score == pytest.approx(float(log_odds(np.array([p]))[0]), abs=1e-6)
    assert attribution.additivity_error < 1e-6
    assert attribution.base_value + attribution.shap.sum() == pytest.approx(attribution.score,
                                                                           abs=1e-6)
    # Platt's map is affine on the margin: the log-odds SHAP is TreeSHAP times the slope.
    raw = fitted.tree_shap(test.take(np.array([row])), background).values[0]
    np.testing.assert_allclose(attribution.shap, fitted.calibration_.slope * raw, rtol=1e-9)
    assert attribution.top(2)["feature"].tolist() == [test.names[i] for i in
                                                      np.argsort(-np.abs(raw))[:2]]
    # In probability units the same split still adds up to the score.
    base, rows, scores = fitted.score_shap(test.take(np.array([row])), background)
    assert base + rows[0].sum() == pytest.approx(float(scores[0]), abs=1e-9)
    assert (np.sign(rows[0]) == np.sign(raw)).all()


def test_same_seed_same_scores_and_threads_do_not_matter(
    separable: tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray],
) -> None:
    train, y, test, _ = separable
    one = GBDTDetector(GBDTConfig(**SMALL)).fit(train, y).score(test)
    two = GBDTDetector(GBDTConfig(**{**SMALL, "num_threads": 2})).fit(train, y).score(test)
    np.testing.assert_allclose(one, two, rtol=1e-12)


@pytest.mark.parametrize("labels", ["none", "no_positive", "no_negative"])
def test_fit_without_both_classes_says_what_to_do(labels: str) -> None:
    data, _ = make_labelled_features(100, seed=8)
    y = {"none": None, "no_positive": np.zeros(100), "no_negative": np.ones(100)}[labels]
    with pytest.raises(ModelError, match="unsupervised detector|Widen"):
        GBDTDetector(GBDTConfig(**SMALL)).fit(data, y)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("n_estimators", 0, r"n_estimators must be an integer in \[1, 100000\], got 0"),
    ("learning_rate", 0.0, r"learning_rate must be a number in \(0.0, 1.0\], got 0.0"),
    ("num_leaves", 1, r"num_leaves must be an integer in \[2, 131072\], got 1"),
    ("max_depth", 0, r"max_depth \(-1 = no limit\) must be an integer in \[1, 64\], got 0"),
    ("min_child_samples", 0, r"min_child_samples must be an integer >= 1, got 0"),
    ("subsample", 1.5, r"subsample must be a number in \(0.0, 1.0\], got 1.5"),
    ("early_stopping_rounds", 0, r"early_stopping_rounds must be an integer >= 1, got 0"),
    ("early_stopping_metric", "f1",
     r"early_stopping_metric must be one of 'logloss', 'auc', 'average_precision'"),
    ("pos_weight", -1.0, r"pos_weight must be a number in \(0.0, 1000000.0\], got -1.0"),
    ("validation_fraction", 0.9, r"validation_fraction must be a number in \[0.0, 0.5\]"),
    ("calibration", "isotonic", r"calibration must be one of 'platt', 'none', got 'isotonic'"),
    ("num_threads", -1, r"num_threads \(0 = every core\) must be an integer in \[0, 1024\]"),
    ("seed", 1.5, r"seed must be an integer"),
])
def test_config_validation_errors_are_clear(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build_detector("gbdt", **{field: value})
    assert "Pass a value in that range" in str(caught.value) or "Pick one" in str(caught.value)


@pytest.mark.slow
def test_a_gbdt_model_is_explained_by_tree_shap_and_joins_the_ensemble(
        demo_store_copy: Path) -> None:
    from core.explain import explain_session
    from core.explain.units import log_odds
    from core.pipeline import score_model, train_model
    from core.pipeline.ensemble import default_members
    from core.store import Store

    with Store.open(demo_store_copy) as store:
        model_id = train_model(store, "gbdt", quiet=True,
                               config={"n_estimators": 50, "num_threads": 1}).model_id
        score_model(store, model_id)
        scores = store.scores.of_model(model_id)
        top = scores.sort_values("score").iloc[-1]
        explanation = explain_session(store, str(top["session_id"]), model_id=model_id)
        f = explanation.features
        assert f is not None and f.model_id == model_id and f.n_permutations == 0
        assert f.additivity_error < 1e-6
        # attributed in log-odds: the stored probability's log-odds
        assert f.units == "log-odds"
        assert f.score == pytest.approx(float(log_odds(np.array([top["score"]]))[0]), abs=1e-6)
        assert explanation.score == pytest.approx(float(top["score"]), abs=1e-9)
        assert not explanation.notes  # the stored score is today's score
        assert model_id in default_members(store)


def test_a_validation_window_without_anomalies_stops_on_the_log_loss() -> None:
    train, y = make_labelled_features(600, seed=9, rate=0.1)
    y[480:] = 0.0
    detector = GBDTDetector(GBDTConfig(**SMALL, early_stopping_metric="auc")).fit(train, y)
    assert detector.history_.metric == "logloss"
    assert detector.history_.n_validation_anomalous == 0
    assert detector.history_.val_metric and np.isfinite(detector.history_.val_metric).all()
    assert detector.calibration_.method == "prior_shift"
    assert detector.validation_ap_ is None
