"""Transformer classifier and masked-event pre-training: learning, event head, attentions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _labelled import make_labelled_sequences
from sklearn.metrics import average_precision_score

from core.datasets import EventSequences
from core.detectors import (
    TransformerConfig,
    TransformerDetector,
    TransformerMLMConfig,
    TransformerMLMDetector,
    load_detector,
)
from core.detectors._aggregate import aggregate_events
from core.errors import ConfigError

ENCODER = {"hidden_size": 16, "n_layers": 2, "n_heads": 2, "intermediate_size": 32}
TINY = TransformerConfig(**ENCODER, epochs=3, batch_size=32, quiet=True, device="cpu")
WIDTH = 12


def left_padded(data: EventSequences) -> EventSequences:
    """The same sessions with their events moved to the end of each row."""
    width = data.tokens.shape[1]
    lengths = data.mask.sum(axis=1)
    index = (np.arange(width)[None, :] - (width - lengths)[:, None]) % width

    def move(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, index if a.ndim == 2 else index[:, :, None], axis=1)

    return EventSequences(data.session_ids, move(data.tokens), move(data.numeric),
                          move(data.mask), move(data.event_ids), data.vocab, data.channel_names)


@pytest.fixture(scope="module")
def held_out() -> tuple[EventSequences, np.ndarray, np.ndarray]:
    return make_labelled_sequences(400, seed=2, max_len=WIDTH)


@pytest.fixture(scope="module")
def detector() -> TransformerDetector:
    train, y, events = make_labelled_sequences(800, seed=1, max_len=WIDTH)
    return TransformerDetector(TINY).fit(train, y, events)


def test_learns_the_injected_burst(detector: TransformerDetector, held_out: tuple) -> None:
    data, y, _ = held_out
    p = detector.score(data)
    assert p.dtype == np.float64 and ((p >= 0) & (p <= 1)).all()
    assert average_precision_score(y, p) > max(0.5, 4 * y.mean())
    assert detector.validation_ap_ is not None and detector.validation_ap_ > 0.5


def test_event_head_ranks_the_injected_events_first(detector: TransformerDetector,
                                                    held_out: tuple) -> None:
    data, y, events = held_out
    per_event = detector.score_events(data)
    assert per_event.shape == data.tokens.shape and per_event.dtype == np.float64
    assert np.isnan(per_event[~data.mask]).all()
    assert ((per_event[data.mask] >= 0) & (per_event[data.mask] <= 1)).all()
    hits = [np.isin(np.argsort(-np.nan_to_num(per_event[r], nan=-1.0))[:3],
                    np.flatnonzero(events[r] == 1)).any() for r in np.flatnonzero(y)]
    assert np.mean(hits) >= 0.9
    assert detector.event_validation_ap_ is not None and detector.event_validation_ap_ > 0.5


@pytest.mark.slow  # trains a second model
def test_event_head_learns_from_session_labels_alone(held_out: tuple) -> None:
    """Without event labels, the multiple-instance loss still points at the burst."""
    train, y, _ = make_labelled_sequences(800, seed=1, max_len=WIDTH)
    detector = TransformerDetector(TINY).fit(train, y)
    data, y_test, events = held_out
    per_event = detector.score_events(data)
    hits = [np.isin(np.argsort(-np.nan_to_num(per_event[r], nan=-1.0))[:3],
                    np.flatnonzero(events[r] == 1)).any() for r in np.flatnonzero(y_test)]
    assert np.mean(hits) >= 0.8


def test_attentions_shape_and_normalisation(detector: TransformerDetector,
                                            held_out: tuple) -> None:
    data = held_out[0].take(np.arange(20))
    att = detector.attentions(data, batch_size=8)
    n, width = len(data), data.tokens.shape[1]
    assert att.shape == (n, 2, 2, width + 1, width + 1) and att.dtype == np.float32
    real = np.c_[np.ones(n, dtype=bool), data.mask]  # index 0 is the session token
    for row in range(n):
        block = att[row]
        np.testing.assert_allclose(block[:, :, real[row]][:, :, :, real[row]].sum(axis=-1), 1.0,
                                   atol=1e-5)
        assert (block[:, :, ~real[row]] == 0).all() and (block[:, :, :, ~real[row]] == 0).all()


def test_attentions_follow_the_columns_of_left_padded_input(detector: TransformerDetector,
                                                            held_out: tuple) -> None:
    right = held_out[0].take(np.arange(10))
    left = left_padded(right)
    att_right, att_left = detector.attentions(right), detector.attentions(left)
    for row in range(10):
        cols_r = np.r_[0, 1 + np.flatnonzero(right.mask[row])]
        cols_l = np.r_[0, 1 + np.flatnonzero(left.mask[row])]
        np.testing.assert_allclose(att_left[row][:, :, cols_l][:, :, :, cols_l],
                                   att_right[row][:, :, cols_r][:, :, :, cols_r], atol=1e-5)
    np.testing.assert_allclose(detector.score(left), detector.score(right), rtol=1e-5)
    events_left, events_right = detector.score_events(left), detector.score_events(right)
    np.testing.assert_allclose(events_left[left.mask], events_right[right.mask], rtol=1e-5)


def test_fast_path_is_kept_and_eager_is_not_saved(detector: TransformerDetector,
                                                  held_out: tuple, tmp_path: Path) -> None:
    data = held_out[0].take(np.arange(30))
    before = detector.score(data)
    detector.attentions(data)
    np.testing.assert_array_equal(detector.score(data), before)
    assert detector.net_.encoder.bert.config._attn_implementation == "sdpa"
    folder = detector.save(tmp_path / "transformer")
    assert "eager" not in (folder / "config.json").read_text()
    loaded = load_detector(folder)
    assert isinstance(loaded, TransformerDetector)
    np.testing.assert_allclose(loaded.attentions(data), detector.attentions(data), atol=1e-6)
    state = json.loads((folder / "config.json").read_text())["state"]
    assert state["validation_ap"] == detector.validation_ap_


@pytest.mark.parametrize("padded", [False, True])
def test_session_only_path_matches_the_full_forward(detector: TransformerDetector,
                                                    held_out: tuple, padded: bool) -> None:
    """Scoring runs the [CLS]-only last layer; it must give the full forward's numbers."""
    import torch

    prepared = detector._prepared(held_out[0])
    lengths = torch.from_numpy(prepared.lengths)
    if not padded:  # every session cut to the shortest: no padding, the unmasked path
        lengths = torch.full_like(lengths, int(lengths.min()))
    width = int(lengths.max())
    assert padded == bool((lengths < width).any())
    real = torch.arange(width)[None, :] < lengths[:, None]
    tokens = torch.from_numpy(prepared.tokens[:, :width])
    numeric = torch.from_numpy(prepared.numeric[:, :width])
    net = detector.net_
    with torch.inference_mode():
        full, _ = net.encoder(tokens, numeric, real)
        fast = net.encoder.session_hidden(tokens, numeric, real)
        logits_full, _ = net(tokens, numeric, real)
        logits_fast = net.session_logits(tokens, numeric, real)
    torch.testing.assert_close(fast, full[:, 0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(logits_fast, logits_full, rtol=1e-6, atol=1e-6)
    # the logits spread far wider than the tolerance: not a comparison between constants
    assert float(logits_full.std()) > 1e-3


def test_score_is_the_calibrated_session_logit(detector: TransformerDetector,
                                               held_out: tuple) -> None:
    data = held_out[0]
    session, _ = detector._logits(detector._prepared(data))
    np.testing.assert_allclose(detector.score(data), detector.calibration_.apply(session),
                               atol=1e-5)


@pytest.fixture(scope="module")
def mlm(tmp_path_factory: pytest.TempPathFactory) -> tuple[TransformerMLMDetector, Path]:
    train, y, _ = make_labelled_sequences(600, seed=4, max_len=WIDTH)
    detector = TransformerMLMDetector(TransformerMLMConfig(
        **ENCODER, epochs=None, max_steps=200, learning_rate=1e-2, batch_size=32, quiet=True,
        device="cpu")).fit(train)  # 38 steps at 1e-3 (2 epochs) learnt no context
    return detector, detector.save(tmp_path_factory.mktemp("mlm") / "detector")


def test_mlm_surprise_is_per_event(mlm: tuple[TransformerMLMDetector, Path],
                                   held_out: tuple) -> None:
    detector, _ = mlm
    data = held_out[0]
    surprise = detector.score_events(data)
    assert np.isnan(surprise[~data.mask]).all() and (surprise[data.mask] >= 0).all()
    np.testing.assert_allclose(detector.score(data), aggregate_events(
        surprise, detector.config.aggregation, detector.config.top_k))
    left = left_padded(data)
    np.testing.assert_allclose(detector.score_events(left)[left.mask], surprise[data.mask],
                               rtol=1e-5)


def test_mlm_finds_events_that_break_the_grammar(mlm: tuple[TransformerMLMDetector, Path],
                                                 ) -> None:
    """Sessions that mostly repeat one event type: a lone other type is surprising."""
    detector, _ = mlm
    data, _, _ = make_labelled_sequences(200, seed=5, max_len=WIDTH, rate=0.0)
    tokens = data.tokens.copy()
    lengths = data.mask.sum(axis=1)
    tokens[data.mask] = 3  # every event "type_1" ...
    odd = np.arange(len(tokens)), lengths // 2
    tokens[odd] = 9  # ... but one "type_7" in the middle
    plain = EventSequences(data.session_ids, tokens, data.numeric, data.mask, data.event_ids,
                           data.vocab, data.channel_names)
    surprise = detector.score_events(plain)
    others = np.where(data.mask, surprise, np.nan)
    others[odd] = np.nan
    assert np.mean(surprise[odd] > np.nanmedian(others, axis=1)) > 0.8


def test_mlm_unknown_event_types_are_maximally_surprising(
        mlm: tuple[TransformerMLMDetector, Path], held_out: tuple) -> None:
    detector, folder = mlm
    data = held_out[0]
    known = detector.score_events(data)
    assert detector.unknown_floor_ is not None and detector.unknown_floor_ > 0
    tokens = data.tokens.copy()
    unseen = data.mask & (np.arange(tokens.shape[1])[None, :] == 1)
    tokens[unseen] = 999  # an event type never seen in training, second in each session
    novel = EventSequences(data.session_ids, tokens, data.numeric, data.mask, data.event_ids,
                           {**data.vocab, "new_type": 999}, data.channel_names)
    surprise = detector.score_events(novel)
    assert surprise[unseen].min() >= np.nanmax(known)
    assert surprise[unseen].min() >= np.nanmax(np.where(unseen, np.nan, surprise))
    assert load_detector(folder).unknown_floor_ == detector.unknown_floor_


def test_transformer_starts_from_the_mlm(mlm: tuple[TransformerMLMDetector, Path]) -> None:
    base, folder = mlm
    train, y, events = make_labelled_sequences(300, seed=6, max_len=WIDTH)
    tuned = TransformerDetector(TransformerConfig(
        **ENCODER, epochs=1, learning_rate=1e-9, quiet=True, device="cpu",
        init_from=str(folder))).fit(train, y, events)
    start = base.net_.encoder.state_dict()
    for name, tensor in tuned.net_.encoder.state_dict().items():
        np.testing.assert_allclose(tensor.numpy(), start[name].numpy(), atol=1e-5)
    assert tuned.vocab_ == base.vocab_ and tuned.n_tokens_ == base.n_tokens_


def test_init_from_must_match(mlm: tuple[TransformerMLMDetector, Path],
                              detector: TransformerDetector, tmp_path: Path) -> None:
    _, folder = mlm
    train, y, _ = make_labelled_sequences(100, seed=7, max_len=WIDTH)
    wider = TransformerConfig(hidden_size=32, n_layers=1, n_heads=2, intermediate_size=32,
                              epochs=1, quiet=True, device="cpu", init_from=str(folder))
    with pytest.raises(ConfigError, match="hidden_size, n_layers"):
        TransformerDetector(wider).fit(train, y)
    other = detector.save(tmp_path / "not-mlm")
    with pytest.raises(ConfigError, match="transformer_mlm"):
        TransformerDetector(TransformerConfig(**ENCODER, epochs=1, quiet=True, device="cpu",
                                              init_from=str(other))).fit(train, y)
