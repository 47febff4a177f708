"""Event sequences: truncation, padding, vocabulary, novelty channels, scaling and order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _feature_fixtures import at, events_con, session_rows

from core.datasets import EventSequences
from core.errors import ConfigError, ModelError
from core.features import (
    CHANNEL_NAMES,
    ChannelScaling,
    SequenceSpec,
    build_event_sequences,
    build_session_features,
    build_vocab,
)

GAP, AMOUNT, NEW_DEVICE, NEW_COUNTRY, NEW_PAYMENT, HAS_TEXT = range(len(CHANNEL_NAMES))
IDENTITY = ChannelScaling(CHANNEL_NAMES, (0.0,) * 6, (1.0,) * 6)


def _rows() -> list[dict]:
    long = session_rows("long", "u1", ["view"] * 8 + ["purchase", "logout"], start=at(0),
                        device_id="d1", country="DE")
    for i, r in enumerate(long):
        r["amount"] = float(i)
    later = session_rows("later", "u1", ["login", "view", "purchase"], start=at(days=1),
                         step_s=30, device_id="d1", country="DE")
    later[1].update(device_id="d9")  # a device u1 never used before
    later[2].update(country="FR", payment_id="p1", text="hi")
    other = session_rows("other", "u2", ["login", "review"], start=at(3600))
    return later + other + long  # stored out of time order on purpose


@pytest.fixture(scope="module")
def seqs():
    return build_event_sequences(events_con(_rows()), max_len=4, scaling=IDENTITY)


def test_order_matches_the_feature_matrix(seqs) -> None:
    feats = build_session_features(events_con(_rows()))
    assert list(seqs.sequences.session_ids) == list(feats.matrix.session_ids)
    assert list(seqs.sequences.session_ids) == ["long", "other", "later"]
    assert list(seqs.meta["n_events"]) == [10, 2, 3]


def test_truncation_keeps_the_last_events_in_time_order(seqs) -> None:
    s = seqs.sequences
    assert isinstance(s, EventSequences) and s.max_len == 4
    assert list(s.event_ids[0]) == ["long-006", "long-007", "long-008", "long-009"]
    vocab = s.vocab
    assert list(s.tokens[0]) == [vocab["view"], vocab["view"], vocab["purchase"], vocab["logout"]]
    np.testing.assert_allclose(s.numeric[0, :, AMOUNT], np.log1p([6, 7, 8, 9]), rtol=1e-6)
    assert s.mask[0].all()


def test_padding_follows_real_events(seqs) -> None:
    s = seqs.sequences
    assert list(s.mask[1]) == [True, True, False, False]
    assert list(s.tokens[1, 2:]) == [EventSequences.PAD] * 2
    assert list(s.event_ids[1]) == ["other-000", "other-001", "", ""]
    assert not s.numeric[1, 2:].any()


def test_gap_and_novelty_channels(seqs) -> None:
    s = seqs.sequences
    later = s.numeric[2]
    np.testing.assert_allclose(later[:3, GAP], [0, math.log1p(30), math.log1p(30)], rtol=1e-6)
    assert list(later[:3, NEW_DEVICE]) == [0, 1, 0]
    assert list(later[:3, NEW_COUNTRY]) == [0, 0, 1]
    assert list(later[:3, NEW_PAYMENT]) == [0, 0, 1]  # an established user's new card
    assert list(later[:3, HAS_TEXT]) == [0, 0, 1]
    assert not s.numeric[0, :, NEW_DEVICE].any()  # a user's first session is never "new"


def test_vocab_by_frequency_with_cap_and_unknown_at_scoring(seqs) -> None:
    con = events_con(_rows())
    vocab = build_vocab(con)
    assert vocab["view"] == 2 and min(vocab.values()) == 2
    capped = build_event_sequences(con, max_len=4, max_vocab=1, scaling=IDENTITY)
    assert capped.spec.vocab == {"view": 2}
    assert set(np.unique(capped.sequences.tokens)) <= {0, 1, 2}
    # scoring: a type the model never saw becomes UNKNOWN, known ones keep their tokens
    new = session_rows("x", "u3", ["view", "teleport"], start=at(days=5))
    scored = build_event_sequences(events_con(new), spec=seqs.spec)
    assert list(scored.sequences.tokens[0]) == [seqs.spec.vocab["view"], EventSequences.UNKNOWN,
                                                0, 0]
    assert scored.sequences.vocab == seqs.sequences.vocab


def test_scaling_is_learned_on_real_events_and_reused() -> None:
    con = events_con(_rows())
    learned = build_event_sequences(con, max_len=4)
    s = learned.sequences
    real = s.numeric[s.mask]
    np.testing.assert_allclose(real.mean(axis=0), 0, atol=1e-5)
    assert not s.numeric[~s.mask].any()
    again = build_event_sequences(con, spec=learned.spec)
    np.testing.assert_array_equal(again.sequences.numeric, s.numeric)
    restored = SequenceSpec.from_dict(learned.spec.to_dict())
    assert restored == learned.spec and restored.vocab_size == max(restored.vocab.values()) + 1


def test_subset_and_refusals(seqs) -> None:
    con = events_con(_rows())
    part = build_event_sequences(con, spec=seqs.spec, session_ids=["later"])
    np.testing.assert_array_equal(part.sequences.numeric[0], seqs.sequences.numeric[2])
    with pytest.raises(ConfigError, match="unknown"):
        build_event_sequences(con, session_ids=["nope"])
    with pytest.raises(ConfigError, match="max_len"):
        build_event_sequences(con, max_len=0)
    with pytest.raises(ConfigError, match="alone"):
        build_event_sequences(con, spec=seqs.spec, vocab={"view": 2})
    with pytest.raises(ConfigError, match=">= 2"):
        build_event_sequences(con, vocab={"view": 1})
    with pytest.raises(ModelError, match="version"):
        SequenceSpec.from_dict({**seqs.spec.to_dict(), "version": 99})


def test_only_required_columns() -> None:
    cols = ["user_id", "session_id", "ts", "event_type"]
    rows = [{k: r[k] for k in cols} for r in _rows()]
    out = build_event_sequences(events_con(rows, columns=cols), max_len=4, scaling=IDENTITY)
    s = out.sequences
    assert s.mask.sum() == 4 + 2 + 3
    assert not s.numeric[..., [AMOUNT, NEW_DEVICE, NEW_COUNTRY, NEW_PAYMENT, HAS_TEXT]].any()
    assert (s.event_ids[s.mask] == "").all()


def test_empty_table() -> None:
    out = build_event_sequences(events_con([]), max_len=3)
    assert out.sequences.tokens.shape == (0, 3) and out.spec.vocab == {}
