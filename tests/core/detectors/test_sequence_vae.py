"""The sequence VAE: KL warm-up, per-event terms = the negative ELBO, unknown types,
padding, save/load and planted anomalies."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.datasets import EventSequences
from core.detectors import SequenceVAEConfig, SequenceVAEDetector, load_detector
from core.detectors.torch_detector import ComponentHistory

TINY = SequenceVAEConfig(**SequenceVAEDetector.tiny_config)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread: None) -> None:
    """Every test of this module on one torch thread (conftest's ``one_torch_thread``)."""


@pytest.fixture(scope="module")
def fitted(sequences: EventSequences) -> SequenceVAEDetector:
    return SequenceVAEDetector(TINY).fit(sequences)


def test_kl_weight_warms_up_linearly() -> None:
    detector = SequenceVAEDetector(SequenceVAEConfig(beta=0.5, kl_warmup=0.2))
    assert [detector.kl_weight(s, 20) for s in (0, 1, 3, 4, 10)] == pytest.approx(
        [0.125, 0.25, 0.5, 0.5, 0.5])


def test_event_terms_sum_to_the_sequence_negative_elbo(
    fitted: SequenceVAEDetector, sequences: EventSequences,
) -> None:
    terms, kl = fitted.event_terms(sequences)
    mask = np.asarray(sequences.mask, dtype=bool)
    assert np.isnan(terms[~mask]).all() and np.isfinite(terms[mask]).all()
    np.testing.assert_allclose(np.nansum(terms, axis=1), fitted.negative_elbo(sequences))
    # by hand for one session: -log softmax of each type + 0.5 * squared numeric error + KL
    row = int(np.argmax(mask.sum(axis=1)))
    n = int(mask[row].sum())
    z = (sequences.numeric[row, :n] - fitted.centre_) / fitted.scale_
    tokens = torch.from_numpy(np.asarray(sequences.tokens[row, :n], dtype=np.int64))[:, None]
    numeric = torch.from_numpy(z.astype(np.float32))[:, None, :]
    with torch.no_grad():
        logits, numeric_out, mu, logvar = fitted.net_(tokens, numeric, torch.tensor([n]), None)
    ce = -F.log_softmax(logits[:, 0].double(), dim=1)[torch.arange(n), tokens[:, 0]].numpy()
    sq = 0.5 * ((numeric_out[:, 0].double().numpy() - z) ** 2).sum(axis=1)
    mu_, lv = mu[0].double().numpy(), logvar[0].double().numpy()
    kl_hand = 0.5 * (mu_ ** 2 + np.exp(lv) - 1 - lv).sum()
    assert kl[row] == pytest.approx(kl_hand, rel=1e-5)
    np.testing.assert_allclose(terms[row, :n], ce + sq + TINY.beta * kl_hand / n, rtol=1e-5)
    assert fitted.negative_elbo(sequences)[row] == pytest.approx(ce.sum() + sq.sum() + kl_hand,
                                                                  rel=1e-5)


def test_sampled_terms_also_sum_to_the_negative_elbo(sequences: EventSequences) -> None:
    detector = SequenceVAEDetector(dataclasses.replace(TINY, score_samples=3)).fit(sequences)
    terms, _ = detector.event_terms(sequences)
    np.testing.assert_allclose(np.nansum(terms, axis=1), detector.negative_elbo(sequences))
    part = detector.event_terms(sequences.take(np.arange(4)))[0]
    np.testing.assert_allclose(part, terms[:4, :part.shape[1]], rtol=1e-5)


def test_history_records_recon_and_kl(fitted: SequenceVAEDetector) -> None:
    history = fitted.history_
    assert isinstance(history, ComponentHistory)
    assert set(history.components) == {"recon", "kl"}
    assert len(history.components["recon"]) == len(history.train_loss) > 0
    assert len(history.val_components["kl"]) == len(history.val_loss)


def test_save_load_round_trip_gives_identical_scores(
    fitted: SequenceVAEDetector, sequences: EventSequences, tmp_path: object,
) -> None:
    folder = tmp_path / "svae"  # type: ignore[operator]
    fitted.save(folder)
    loaded = load_detector(folder)
    assert isinstance(loaded, SequenceVAEDetector)
    np.testing.assert_array_equal(loaded.score(sequences), fitted.score(sequences))
    np.testing.assert_array_equal(loaded.score_events(sequences), fitted.score_events(sequences))
    assert loaded.unknown_floor_ == fitted.unknown_floor_
    assert loaded.history_ == fitted.history_


def test_unknown_event_type_is_maximally_surprising(
    fitted: SequenceVAEDetector, sequences: EventSequences,
) -> None:
    tokens = np.array(sequences.tokens, copy=True)
    row = int(np.argmax(sequences.mask.sum(axis=1)))
    tokens[row, 1] = max(sequences.vocab.values()) + 5  # an id the model never saw
    changed = EventSequences(sequences.session_ids, tokens, sequences.numeric, sequences.mask,
                             sequences.event_ids, sequences.vocab, sequences.channel_names)
    events = fitted.score_events(changed)
    assert fitted.unknown_floor_ is not None
    assert events[row, 1] >= fitted.unknown_floor_
    assert events[row, 1] > np.nanmax(fitted.score_events(sequences))


def test_padding_position_does_not_change_scores(
    fitted: SequenceVAEDetector, sequence_factory: Callable[..., EventSequences],
) -> None:
    right, left = sequence_factory(40, seed=7), sequence_factory(40, seed=7, left_padded=True)
    np.testing.assert_allclose(fitted.score(left), fitted.score(right), rtol=1e-5)


def test_planted_anomalies_score_higher(
    sequence_factory: Callable[..., EventSequences],
) -> None:
    train, test = sequence_factory(400, seed=1), sequence_factory(120, seed=2)
    rng = np.random.default_rng(3)
    tokens = np.array(test.tokens, copy=True)
    planted = np.arange(100, 120)
    mask = np.asarray(test.mask, dtype=bool)
    noise = rng.integers(2, 12, size=tokens.shape)  # random types: no sticky order
    tokens[planted] = np.where(mask[planted], noise[planted], 0)
    test = EventSequences(test.session_ids, tokens, test.numeric, test.mask, test.event_ids,
                          test.vocab, test.channel_names)
    config = dataclasses.replace(TINY, epochs=None, max_steps=60, eval_every=20)
    scores = SequenceVAEDetector(config).fit(train).score(test)
    assert np.isfinite(scores).all()
    lengths = mask.sum(axis=1)
    normal, odd = scores[:100][lengths[:100] >= 4], scores[planted][lengths[planted] >= 4]
    assert np.median(odd) > np.quantile(normal, 0.9)
