"""CNN + GRU classifier: it learns an injected burst, has no per-event scores, ignores where
the padding sits."""

from __future__ import annotations

import numpy as np
import pytest
from _labelled import make_labelled_sequences
from sklearn.metrics import average_precision_score

from core.datasets import EventSequences
from core.detectors import CnnGruConfig, CnnGruDetector
from core.pipeline.scoring import _event_scores

TINY = CnnGruConfig(embed_dim=8, conv_channels=8, hidden_dim=8, head_dim=8, epochs=3,
                    batch_size=32, quiet=True, device="cpu")


@pytest.fixture(scope="module")
def detector() -> CnnGruDetector:
    train, y, _ = make_labelled_sequences(800, seed=1, max_len=12)
    return CnnGruDetector(TINY).fit(train, y)


def test_learns_the_injected_burst(detector: CnnGruDetector) -> None:
    test, y, _ = make_labelled_sequences(400, seed=2, max_len=12)
    p = detector.score(test)
    assert ((p >= 0) & (p <= 1)).all()
    assert average_precision_score(y, p) > max(0.5, 4 * y.mean())


def test_scores_sessions_only(detector: CnnGruDetector, sequences: EventSequences) -> None:
    assert not hasattr(detector, "score_events")
    assert _event_scores(detector, sequences) is None  # scoring writes no event rows


def test_padding_on_the_left_gives_the_same_scores(detector: CnnGruDetector) -> None:
    data, _, _ = make_labelled_sequences(60, seed=3, max_len=12)
    lengths = data.mask.sum(axis=1)
    shifted = (np.arange(12)[None, :] - (12 - lengths)[:, None]) % 12  # events to the end
    left = EventSequences(
        data.session_ids, np.take_along_axis(data.tokens, shifted, axis=1),
        np.take_along_axis(data.numeric, shifted[:, :, None], axis=1),
        np.take_along_axis(data.mask, shifted, axis=1),
        np.take_along_axis(data.event_ids, shifted, axis=1), data.vocab, data.channel_names)
    np.testing.assert_allclose(detector.score(left), detector.score(data), rtol=1e-5)
