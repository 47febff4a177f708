"""SHAP over session features: the estimator, additivity on real models, the global view."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from core.detectors import get_detector_class
from core.errors import ModelError
from core.explain import explain_session, global_shap, permutation_shap
from core.store import Store

FEATURE_DETECTORS = ("zscore", "autoencoder", "isolation_forest", "mlp")


def exact_shapley(fn, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Interventional Shapley values by enumerating every subset (small f only)."""
    f = len(x)

    def value(subset: tuple[int, ...]) -> float:
        rows = background.copy()
        rows[:, list(subset)] = x[list(subset)]
        return float(fn(rows).mean())

    out = np.zeros(f)
    for j in range(f):
        others = [i for i in range(f) if i != j]
        for size in range(f):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(f - size - 1) / math.factorial(f)
                out[j] += weight * (value((*subset, j)) - value(subset))
    return out


def test_linear_model_gets_exact_contributions() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=6)
    background = rng.normal(size=(30, 6))
    x = rng.normal(size=6)
    base, phi, score = permutation_shap(lambda v: v @ weights, x, background, n_permutations=1)
    np.testing.assert_allclose(phi, weights * (x - background.mean(axis=0)), atol=1e-12)
    assert base == pytest.approx(float((background @ weights).mean()))
    assert score == pytest.approx(float(x @ weights))


def test_nonlinear_model_is_additive_and_close_to_exact_shapley() -> None:
    rng = np.random.default_rng(1)
    background = rng.normal(size=(20, 4))
    x = np.array([2.0, -1.0, 0.5, 3.0])

    def fn(v: np.ndarray) -> np.ndarray:
        return np.abs(v[:, 0] * v[:, 1]) + np.maximum(v[:, 2], 0) * v[:, 3] ** 2

    exact = exact_shapley(fn, x, background)
    for seed in range(3):
        base, phi, score = permutation_shap(fn, x, background, n_permutations=2, seed=seed)
        assert abs(base + phi.sum() - score) < 1e-9
        assert score == pytest.approx(float(fn(x[None])[0]))
    _, many, _ = permutation_shap(fn, x, background, n_permutations=60, seed=0)
    np.testing.assert_allclose(many, exact, atol=0.05 * np.abs(exact).max())


def test_bad_background_is_refused() -> None:
    with pytest.raises(ModelError, match="background must be"):
        permutation_shap(lambda v: v.sum(axis=1), np.ones(3), np.ones((4, 2)))


def test_every_feature_detector_gets_additive_shap(store: Store, model_of: dict[str, str],
                                                    flagged_of: dict[str, list[str]]) -> None:
    present = [d for d in model_of if get_detector_class(d).input_kind == "features"
               and d in FEATURE_DETECTORS]
    assert {"zscore", "autoencoder"} <= set(present)
    for name in present:
        session = flagged_of[name][0]
        why = explain_session(store, session, model_id=model_of[name], use_cache=False)
        f = why.features
        assert f is not None and why.input_kind == "features"
        assert f.additivity_error <= 1e-9 * max(1.0, abs(f.score)), name
        assert f.base_value + f.shap.sum() == pytest.approx(f.score, rel=1e-9, abs=1e-9)
        assert why.score == pytest.approx(f.score, rel=1e-4), "stored and recomputed score"
        assert len(f.names) == len(f.shap) == len(f.values) and f.n_background > 10
        # A flagged session sits far above the background mean: features push it up.
        assert f.score > f.base_value and f.top(1)["shap"].iloc[0] > 0
        assert why.is_flagged and why.percentile > 95
        assert not why.context.empty and why.reasons


def test_global_view_ranks_features_over_flagged_sessions(
        store: Store, model_of: dict[str, str], flagged_of: dict[str, list[str]]) -> None:
    frame = global_shap(store, model_of["zscore"], max_sessions=3)
    assert frame.attrs["n_sessions"] == min(3, len(flagged_of["zscore"]))
    assert frame.attrs["max_additivity_error"] < 1e-9
    assert (frame["mean_abs_shap"].diff().dropna() <= 1e-12).all()  # sorted, largest first
    assert (frame["mean_abs_shap"] >= frame["mean_shap"].abs() - 1e-12).all()
    with pytest.raises(ModelError, match="feature model"):
        global_shap(store, model_of["sequence_autoencoder"])


@pytest.mark.slow
def test_agrees_with_shap_permutation_explainer(store: Store, model_of: dict[str, str],
                                                flagged_of: dict[str, list[str]]) -> None:
    """The reference library computes the same estimator (~20 s of numba compilation)."""
    import shap

    from core.explain.session import background_ids
    from core.explain.shap_features import score_function
    from core.pipeline.inputs import build_input
    from core.pipeline.registry import load_model

    model = load_model(store, model_of["autoencoder"])
    session = flagged_of["autoencoder"][0]
    bg = background_ids(store, model.train_end)
    built = build_input(store, "features", model.spec, session_ids=[session, *bg])
    index = {s: i for i, s in enumerate(built.meta["session_id"])}
    background = built.data.values[[index[s] for s in bg]].astype(np.float64)
    x = built.data.values[index[session]].astype(np.float64)
    fn = score_function(model.detector, built.data.names)
    base, ours, score = permutation_shap(fn, x, background, n_permutations=20)
    explainer = shap.Explainer(fn, shap.maskers.Independent(background, len(background)))
    theirs = explainer(x[None], max_evals=40 * (len(x) + 1), silent=True)
    assert float(theirs.base_values[0]) == pytest.approx(base, rel=1e-6)
    assert abs(float(theirs.base_values[0]) + theirs.values[0].sum() - score) < 1e-6
    top = np.argsort(-np.abs(ours))[:10]
    np.testing.assert_allclose(theirs.values[0][top], ours[top],
                               atol=0.1 * np.abs(ours).max())


@pytest.mark.slow
def test_isolation_forest_and_mlp_take_the_same_call(demo_store_copy) -> None:  # noqa: ANN001
    from core.pipeline import score_model, train_model

    configs = {"isolation_forest": {"n_estimators": 20},
               "mlp": {"hidden_dims": (16,), "epochs": 2, "batch_size": 64, "quiet": True,
                       "device": "cpu"}}
    with Store.open(demo_store_copy) as store:
        for name, config in configs.items():
            model_id = train_model(store, name, quiet=True, config=config).model_id
            score_model(store, model_id)
            scores = store.scores.of_model(model_id)
            session = str(scores.sort_values("score")["session_id"].iloc[-1])
            f = explain_session(store, session, model_id=model_id).features
            assert f is not None and f.model_id == model_id
            assert f.additivity_error <= 1e-6 * max(1.0, abs(f.score)), name
