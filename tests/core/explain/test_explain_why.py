"""The combined Why: model choice and weights, topic de-duplication and order, log-odds
attributions of probability outputs, and the ensemble's waterfall adding up to its score."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from core.datasets import EventSequences, FeatureMatrix
from core.explain import explain_why
from core.explain.explanation import FeatureAttribution, SessionExplanation
from core.explain.sequence import occlusion
from core.explain.shap_features import FeatureExplainer
from core.explain.units import log_odds
from core.explain.why import (
    ModelWeight,
    choose_weights,
    combine,
    combine_shares,
    readable_name,
)
from core.store import Store


@dataclass
class Rank:
    model_id: str
    detector: str
    percentile: float
    is_flagged: bool
    score: float = 1.0


def test_flagging_models_share_the_weight_and_an_ensemble_stands_for_its_members() -> None:
    ranks = [Rank("ens", "ensemble", 99.9, True), Rank("ae", "autoencoder", 99.0, True),
             Rank("seq", "sequence_autoencoder", 60.0, False)]
    members = {"ens": pd.DataFrame({"member_id": ["ae", "seq"], "detector": ["a", "s"],
                                    "contribution": [0.3, 0.1]})}
    weights = choose_weights(ranks, "ens", members, {"ens", "ae", "seq"},
                             {"ae": "autoencoder", "seq": "sequence_autoencoder"})
    got = {w.model_id: round(w.weight, 6) for w in weights}
    # the ensemble's half splits 3:1 between its members; the autoencoder also flags itself
    assert got == {"ae": round(0.5 * 0.75 + 0.5, 6), "seq": round(0.5 * 0.25, 6)}
    assert "ens" not in got
    assert sum(got.values()) == pytest.approx(1.0)


def test_without_a_flagging_model_the_policy_model_explains() -> None:
    ranks = [Rank("a", "autoencoder", 97.0, False), Rank("z", "zscore", 99.0, False)]
    weights = choose_weights(ranks, "a", {}, {"a", "z"}, {"a": "autoencoder", "z": "zscore"})
    assert [(w.model_id, w.weight) for w in weights] == [("a", 1.0)]
    assert "policy" in weights[0].why
    no_policy = choose_weights(ranks, None, {}, {"a", "z"}, {})
    assert [w.model_id for w in no_policy] == ["z"]  # the model ranking it highest


def test_weights_are_capped_to_the_heaviest_models() -> None:
    ranks = [Rank(f"m{i}", "zscore", 99.0, True) for i in range(6)]
    weights = choose_weights(ranks, None, {}, {f"m{i}" for i in range(6)}, {}, max_models=4)
    assert len(weights) == 4 and sum(w.weight for w in weights) == pytest.approx(1.0)


def test_shares_combine_by_weight_largest_first() -> None:
    got = combine_shares({"a": {"t": 0.9, "u": 0.1}, "b": {"t": 0.2, "v": 0.8}},
                         {"a": 0.5, "b": 0.5})
    assert got == [("t", 0.55), ("v", 0.4), ("u", 0.05)]


def _events(types: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(len(types))],
                         "position": np.arange(len(types)), "event_type": types,
                         "ts": pd.date_range("2026-01-01", periods=len(types), freq="min")})


def _explanation(model_id: str, detector: str, events: pd.DataFrame,
                 features: FeatureAttribution | None = None,
                 occluded: np.ndarray | None = None,
                 context: pd.DataFrame | None = None) -> SessionExplanation:
    return SessionExplanation(
        session_id="s1", user_id="u1", model_id=model_id, detector=detector,
        input_kind="features" if features is not None else "sequences", score=1.0,
        percentile=99.0, threshold=0.5, is_flagged=True, features=features, events=events,
        event_contributions={} if occluded is None else {"occlusion": occluded},
        attention=None, members=None,
        context=pd.DataFrame() if context is None else context, reasons=[],
        computed_at=dt.datetime(2026, 1, 1))


def test_one_reason_per_topic_ranked_by_share_and_small_ones_dropped() -> None:
    events = _events(["login", "payment_failed", "payment_failed", "payment_failed", "search"])
    names = ("count_log[payment_failed]", "share[payment_failed]", "n_payment_failed_log",
             "is_new_device", "gap_mean_log", "count_log[search]")
    shap = np.array([2.0, 1.0, 1.0, 3.0, 0.1, -1.0])
    features = FeatureAttribution("ae", names, np.array([1.4, 0.6, 1.4, 1.0, 2.0, 0.7]), shap,
                                  0.0, float(shap.sum()), 0.0, 10, 4)
    context = pd.DataFrame([{
        "feature": "count_log[payment_failed]", "meaning": "payment_failed events",
        "kind": "count", "session_value": 3.0, "user_value": 0.0, "user_total": 0.0,
        "user_sessions": 4, "population_value": 0.0, "shap": 2.0}])
    feature_model = _explanation("ae", "autoencoder", events, features=features, context=context)
    sequence_model = _explanation("seq", "sequence_autoencoder", events,
                                  occluded=np.array([0.0, 1.0, 0.5, 0.5, -0.2]))
    weights = [ModelWeight("ae", "autoencoder", 0.5, ""),
               ModelWeight("seq", "sequence_autoencoder", 0.5, "")]
    why = combine("s1", "u1", weights, {"ae": feature_model, "seq": sequence_model}, 180.0)
    topics = [r.topic for r in why.reasons]
    assert topics == ["type:payment_failed", "is_new_device"]  # gap_mean_log: 1.4% < 3%
    assert len(set(topics)) == len(topics)
    first = why.reasons[0]
    # ae: 4 of 7.1 positive SHAP; seq: all of its positive occlusion
    assert first.share == pytest.approx(0.5 * 4 / 7.1 + 0.5 * 1.0)
    assert first.detectors == ("sequence_autoencoder", "autoencoder")
    assert first.text.startswith("3 payment_failed events in 3 min")
    assert "typical session: 0" in first.text  # the feature model's numbers are preferred
    assert first.event_ids[0] == "e1"  # the most telling event first (largest occlusion)
    assert set(first.event_ids) == {"e1", "e2", "e3"}
    assert why.reasons[1].text.startswith("a device this user never used before")
    assert all("count_log[" not in line and "_log" not in line for line in why.lines())
    assert why.n_dropped == 1


def test_the_hour_reads_from_both_its_features_without_a_context_row() -> None:
    names = ("hour_sin", "hour_cos", "gap_min_log")
    angle = 2 * np.pi * 22.5 / 24  # 22:30
    shap = np.array([-0.2, 2.0, 0.5])  # only the cosine pushes the score up
    features = FeatureAttribution("ae", names, np.array([np.sin(angle), np.cos(angle), 1.0]),
                                  shap, 0.0, float(shap.sum()), 0.0, 10, 3)
    model = _explanation("ae", "autoencoder", _events(["login"]), features=features)
    why = combine("s1", "u1", [ModelWeight("ae", "autoencoder", 1.0, "")], {"ae": model}, 60.0)
    assert why.reasons[0].text == "start hour (UTC): 22:30 UTC"


def test_models_are_named_by_detector_or_by_id_when_two_share_one() -> None:
    weights = [ModelWeight("e-1", "ecdf_tails", 0.5, ""), ModelWeight("e-2", "ecdf_tails", 0.3, ""),
               ModelWeight("v-1", "vae", 0.2, "")]
    why = combine("s1", "u1", weights, {}, 60.0)
    assert why.models_text() == "e-1 (50%), e-2 (30%), vae (20%)"


def test_extra_columns_read_in_words() -> None:
    assert readable_name("extra_since_log[signup_time]") == "time from signup_time to the event"
    assert readable_name("extra_rarity[browser]") == (
        "share of training events with its rarest browser")
    assert readable_name("extra_unseen_log[browser]") == (
        "browser values never seen in training in the session")
    assert readable_name("extra_mean[age]") == "age"


def test_readable_names_have_no_code() -> None:
    assert readable_name("count_log[purchase]") == "purchase events in the session"
    assert readable_name("type:purchase") == "purchase events in the session"
    assert readable_name("n_payment_failed_log") == "failed payments in the session"
    assert readable_name("share[search]") == "share of events that are search"
    assert readable_name("is_new_device") == "a device this user never used before"


class ProbabilitySequences:
    """p = sigmoid(sum of per-token weights): additive in log-odds."""

    kind = "transformer"
    outputs_probability = True
    weights = {2: 6.0, 3: 2.0, 4: 1.0, 5: 0.5}

    def score(self, data: EventSequences) -> np.ndarray:
        w = np.vectorize(lambda t: self.weights.get(int(t), 0.0))(data.tokens)
        return 1.0 / (1.0 + np.exp(-np.where(data.mask, w, 0.0).sum(axis=1)))


def test_occlusion_of_a_probability_is_measured_in_log_odds() -> None:
    tokens = np.array([[2, 3, 4, 5, 2]])
    mask = np.ones_like(tokens, dtype=bool)
    data = EventSequences(np.array(["s"], dtype=object), tokens,
                          np.zeros((1, 5, 1), np.float32), mask,
                          np.array([[f"e{i}" for i in range(5)]], dtype=object),
                          {"a": 2, "b": 3, "c": 4, "d": 5}, ("x",))
    drop = occlusion(ProbabilitySequences(), data, 0)
    # p = sigmoid(15.5) = 0.9999998: in probability every drop would be under 1e-5
    np.testing.assert_allclose(drop, [6.0, 2.0, 1.0, 0.5, 6.0], rtol=1e-6)


class ProbabilityFeatures:
    kind = "mlp"
    input_kind = "features"
    outputs_probability = True
    w = np.array([3.0, -1.0, 0.5])

    def score(self, data: FeatureMatrix) -> np.ndarray:
        z = np.asarray(data.values, np.float64) @ self.w + 4.0
        return 1.0 / (1.0 + np.exp(-z))


def test_shap_of_a_probability_is_in_log_odds_and_adds_up() -> None:
    names = ("a", "b", "c")
    rng = np.random.default_rng(0)
    background = FeatureMatrix(np.array([""] * 20, dtype=object),
                               rng.normal(size=(20, 3)).astype(np.float32), names)
    x = FeatureMatrix(np.array(["s"], dtype=object), np.array([[3.0, 0.0, 1.0]], np.float32),
                      names)
    got = FeatureExplainer("m", ProbabilityFeatures(), background).explain(x, 0)  # type: ignore[arg-type]
    assert got.units == "log-odds"
    expected = ProbabilityFeatures.w * (x.values[0] - background.values.mean(axis=0))
    np.testing.assert_allclose(got.shap, expected, rtol=1e-4, atol=1e-4)
    assert got.score == pytest.approx(float(log_odds(ProbabilityFeatures().score(x))[0]),
                                      rel=1e-6)
    assert got.base_value + got.shap.sum() == pytest.approx(got.score, abs=1e-6)


def test_the_ensemble_waterfall_adds_up_to_its_own_score() -> None:
    members = pd.DataFrame({"member_id": ["a", "b", "c"],
                            "detector": ["autoencoder", "mlp", "zscore"],
                            "contribution": [0.41, 0.52, 0.0477]})
    member_shap = FeatureAttribution("b", ("x",), np.array([1.0]), np.array([0.9]), 0.0998,
                                     0.9998, 0.0, 10, 4)
    ensemble = SessionExplanation(
        session_id="s", user_id="u", model_id="ens", detector="ensemble",
        input_kind="features", score=0.9777, percentile=99.9, threshold=0.5, is_flagged=True,
        features=member_shap, events=_events(["a"]), event_contributions={}, attention=None,
        members=members, context=pd.DataFrame(), reasons=[], computed_at=dt.datetime(2026, 1, 1))
    chart = ensemble.waterfall()
    assert chart is not None
    assert chart.names == ("autoencoder", "mlp", "zscore")
    assert chart.base + chart.values.sum() == pytest.approx(ensemble.score)
    assert chart.total == pytest.approx(0.9777)  # not the mlp member's 0.9998


def test_the_why_of_a_flagged_demo_session(store: Store,
                                           flagged_of: dict[str, list[str]]) -> None:
    session = flagged_of["autoencoder"][0]
    found = explain_why(store, session, save=False)
    why = found.why
    assert why.reasons, why
    shares = [r.share for r in why.reasons]
    assert shares == sorted(shares, reverse=True)
    assert all(s >= 0.03 for s in shares) and sum(shares) <= 1.0 + 1e-9
    assert len({r.topic for r in why.reasons}) == len(why.reasons)
    assert sum(m.weight for m in why.models) == pytest.approx(1.0)
    assert set(found.explanations) == {m.model_id for m in why.models}
    assert all("count_log[" not in line for line in why.lines())


def test_a_spent_time_budget_walks_one_pair_and_still_adds_up() -> None:
    from core.explain.shap_features import permutation_shap_within

    calls = []
    weights = np.array([1.0, -2.0, 0.5, 3.0])

    def fn(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        return np.tanh(rows @ weights)

    rng = np.random.default_rng(1)
    x, background = rng.normal(size=4), rng.normal(size=(10, 4))
    base, phi, score, pairs = permutation_shap_within(fn, x, background, n_permutations=4,
                                                      time_budget_s=0.0)
    assert pairs == 1 and len(calls) == 2  # one antithetic pair: two walks
    assert base + phi.sum() == pytest.approx(score, abs=1e-12)
    _, _, _, all_pairs = permutation_shap_within(fn, x, background, n_permutations=4)
    assert all_pairs == 4
