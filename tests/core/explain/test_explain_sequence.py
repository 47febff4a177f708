"""Per-event contributions: attention, rollout, occlusion, on fakes with known answers and on
the demo store's sequence autoencoder."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets import EventSequences
from core.detectors._aggregate import aggregate_events
from core.errors import ModelError
from core.explain import explain_session
from core.explain.sequence import (
    attention_rollout,
    cls_attention,
    drop_events,
    event_contributions,
    occlusion,
    session_attention,
)
from core.pipeline.registry import load_model
from core.store import Store


def sequences(rows: list[list[int]], width: int = 6) -> EventSequences:
    n = len(rows)
    tokens = np.zeros((n, width), dtype=np.int64)
    mask = np.zeros((n, width), dtype=bool)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
        mask[i, : len(row)] = True
    numeric = np.where(mask[:, :, None], tokens[:, :, None] / 10.0, 0.0).astype(np.float32)
    ids = np.where(mask, np.array([[f"e{i}-{j}" for j in range(width)] for i in range(n)]), "")
    return EventSequences(np.array([f"s{i}" for i in range(n)], dtype=object), tokens, numeric,
                          mask, ids.astype(object), {"a": 2, "b": 3, "c": 4, "d": 5}, ("x",))


class FakeTransformer:
    """Score = sum of per-token weights; attention: every layer and head looks from the session
    token at the event with the highest weight, and events look at themselves."""

    kind = "transformer"
    event_score_meaning = "event_head"
    has_attention = True
    weights = {2: 0.1, 3: 1.0, 4: 0.3, 5: 2.0}
    n_layers, n_heads = 2, 3

    def score_events(self, data: EventSequences) -> np.ndarray:
        out = np.vectorize(lambda t: self.weights.get(int(t), 0.0))(data.tokens).astype(float)
        return np.where(data.mask, out, np.nan)

    def score(self, data: EventSequences) -> np.ndarray:
        return np.nansum(self.score_events(data), axis=1)

    def attentions(self, data: EventSequences, batch_size: int = 256) -> np.ndarray:
        n, width = data.tokens.shape
        out = np.zeros((n, self.n_layers, self.n_heads, width + 1, width + 1), np.float32)
        for i in range(n):
            k = int(data.mask[i].sum())
            best = int(np.argmax(self.score_events(data)[i, :k]))
            out[i, :, :, 0, 1 + best] = 1.0
            for j in range(k):
                out[i, :, :, 1 + j, 1 + j] = 1.0
        return out


def test_rollout_with_uniform_attention_spreads_evenly() -> None:
    uniform = np.full((3, 2, 5, 5), 0.2)
    np.testing.assert_allclose(attention_rollout(uniform), np.full(4, 0.25))


def test_rollout_follows_a_chain_through_the_layers() -> None:
    """Layer 1: event 1 attends only to event 2; layer 2: the session token attends only to
    event 1. Plain products (no residual) route everything to event 2; with the residual,
    hand-computed shares hold."""
    first = np.eye(3)
    first[1] = [0.0, 0.0, 1.0]
    second = np.eye(3)
    second[0] = [0.0, 1.0, 0.0]
    weights = np.stack([first[None], second[None]])  # (2 layers, 1 head, 3, 3)
    np.testing.assert_allclose(attention_rollout(weights, residual=0.0), [0.0, 1.0])
    # residual 0.5: layer maps become 0.5 A + 0.5 I. Row 0 of layer 2: [0.5, 0.5, 0];
    # layer 1 rows: 0 -> [1, 0, 0], 1 -> [0, 0.5, 0.5]. Product row 0: [0.5, 0.25, 0.25].
    np.testing.assert_allclose(attention_rollout(weights), [0.5, 0.5])
    only_first = np.stack([second[None]])
    np.testing.assert_allclose(attention_rollout(only_first), [1.0, 0.0])


def test_cls_attention_averages_heads_of_the_last_layer() -> None:
    weights = np.zeros((2, 2, 4, 4))
    weights[0, :, 0, 1] = 1.0  # first layer: ignored
    weights[1, 0, 0, 1:] = [0.5, 0.5, 0.0]
    weights[1, 1, 0, 1:] = [0.0, 0.5, 0.5]
    np.testing.assert_allclose(cls_attention(weights), [0.25, 0.5, 0.25])
    assert session_attention(np.zeros((2, 2, 9, 9)), 3).shape == (2, 2, 4, 4)
    with pytest.raises(ModelError, match="attention maps must have shape"):
        session_attention(np.zeros((2, 9, 9)), 3)


def test_drop_events_shifts_left_and_keeps_shape() -> None:
    data = sequences([[2, 3, 4, 5], [3]])
    out = drop_events(data, 0, [np.array([1]), np.array([0, 3])])
    assert out.tokens.shape == data.tokens.shape
    np.testing.assert_array_equal(out.tokens[:, :4], [[2, 4, 5, 0], [3, 4, 0, 0]])
    np.testing.assert_array_equal(out.mask.sum(axis=1), [3, 2])
    assert list(out.event_ids[0, :3]) == ["e0-0", "e0-2", "e0-3"]
    np.testing.assert_allclose(out.numeric[1, :2, 0], [0.3, 0.4], rtol=1e-6)


def test_fake_transformer_gets_every_method_with_known_answers() -> None:
    data = sequences([[2, 3, 5, 4], [4]])
    model = FakeTransformer()
    out, maps = event_contributions(model, data, 0)
    assert set(out) == {"occlusion", "event_head", "attention", "rollout"}
    np.testing.assert_allclose(out["occlusion"], [0.1, 1.0, 2.0, 0.3])  # additive model
    np.testing.assert_allclose(out["event_head"], [0.1, 1.0, 2.0, 0.3])
    np.testing.assert_allclose(out["attention"], [0, 0, 1, 0])
    assert int(np.argmax(out["rollout"])) == 2
    assert maps.shape == (2, 3, 5, 5)
    single, _ = event_contributions(model, data, 1)
    np.testing.assert_allclose(single["occlusion"], [0.3])  # the only event: the whole score


def test_occlusion_on_the_sequence_autoencoder(store: Store, model_of: dict[str, str],
                                               flagged_of: dict[str, list[str]]) -> None:
    from core.pipeline.inputs import build_input
    from core.pipeline.registry import load_model

    model = load_model(store, model_of["sequence_autoencoder"])
    session = flagged_of["sequence_autoencoder"][0]
    data = build_input(store, "sequences", model.spec, session_ids=[session]).data
    k = int(data.mask[0].sum())
    drops = occlusion(model.detector, data, 0)
    assert drops.shape == (k,) and np.isfinite(drops).all()
    full = model.detector.score(data)[0]
    without_last = model.detector.score(drop_events(data, 0, [np.array([k - 1])]))[0]
    # occlusion scores its variants in one batch, this test one by one: float32 sums in
    # another order differ by ~1e-6 of the score, so compare at that scale
    assert drops[-1] == pytest.approx(full - without_last, abs=1e-5 * max(1.0, abs(full)))


def test_explain_session_under_the_sequence_autoencoder(
        store: Store, model_of: dict[str, str], flagged_of: dict[str, list[str]]) -> None:
    session = flagged_of["sequence_autoencoder"][0]
    why = explain_session(store, session, model_id=model_of["sequence_autoencoder"],
                          use_cache=False)
    assert why.features is None and why.input_kind == "sequences"
    assert set(why.event_contributions) == {"occlusion", "reconstruction_error"}
    k = len(why.events)
    assert all(len(v) == k for v in why.event_contributions.values())
    assert list(why.events["position"]) == list(range(k))
    assert why.events["event_type"].notna().all()
    errors = np.asarray(why.event_contributions["reconstruction_error"], np.float64)
    config = load_model(store, model_of["sequence_autoencoder"]).detector.config
    session_score = aggregate_events(errors[None, :], config.aggregation, config.top_k)[0]
    assert session_score == pytest.approx(why.score, rel=1e-4)  # the session score
    assert why.reasons and any(ch.isdigit() for ch in why.reasons[0])
    top = why.top_events("occlusion", 3)
    assert len(top) == min(3, k) and top["contribution"].is_monotonic_decreasing


def test_a_tiny_real_transformer_gets_attention_rollout_and_event_head(store: Store) -> None:
    from core.detectors import build_detector
    from core.pipeline.inputs import build_input

    built = build_input(store, "sequences", max_len=16)
    labels = store.labels.session_labels(["ground_truth"])
    anomalous = set(labels.loc[labels["is_anomaly"].astype(bool), "session_id"])
    y = built.meta["session_id"].isin(anomalous).to_numpy(float)
    keep = np.r_[np.flatnonzero(y == 1), np.flatnonzero(y == 0)[:150]]  # small and quick
    data = built.data.take(np.sort(keep))
    model = build_detector("transformer", hidden_size=16, n_layers=2, n_heads=2,
                           intermediate_size=32, epochs=1, batch_size=128, quiet=True,
                           device="cpu").fit(data, y[np.sort(keep)])
    row = int(np.argmax(data.mask.sum(axis=1) >= 5))  # a session with 5+ events
    out, maps = event_contributions(model, data, row)
    k = int(data.mask[row].sum())
    assert set(out) == {"occlusion", "event_head", "attention", "rollout"}
    assert maps.shape == (2, 2, k + 1, k + 1)
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-4)  # rows are distributions
    for method in ("attention", "rollout"):
        assert out[method].shape == (k,) and out[method].sum() == pytest.approx(1.0)
        assert (out[method] >= 0).all()
    assert ((out["event_head"] >= 0) & (out["event_head"] <= 1)).all()
    assert np.isfinite(out["occlusion"]).all()
