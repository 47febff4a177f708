"""Per-event contributions for sequence detectors: attention, rollout, occlusion, event scores.

Occlusion works for any sequence detector: each event in turn is *dropped* and the remaining
events shift left (padding grows at the end), then all k variants are scored in one batch; an
event's contribution is ``score(session) - score(session without it)``. Dropping, rather than
replacing the event by the UNKNOWN token, asks "would the session look normal without this
event?"; an UNKNOWN token is itself unusual to every model trained on a known vocabulary and
would raise the score it is meant to lower. The other events keep their channels (the gap to
the previous event is not recomputed): the variant is the same session with one row missing.

Attention maps follow the transformer contract: ``attentions(data)`` returns float32
(n, n_layers, n_heads, L + 1, L + 1), index 0 the session ([CLS]) token, index i + 1 event
column i, padded rows/columns 0.

    >>> import numpy as np
    >>> uniform = np.full((1, 1, 3, 3), 1 / 3)            # 1 layer, 1 head, CLS + 2 events
    >>> attention_rollout(uniform).round(3).tolist()      # equal attention, equal shares
    [0.5, 0.5]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.datasets import EventSequences
from core.errors import ModelError
from core.explain.units import in_units, units_of

RESIDUAL_WEIGHT = 0.5
"""Rollout mixes each layer's attention with the identity (the residual connection) half and
half, as in Abnar & Zuidema (2020)."""


def event_score_method(detector: Any) -> str:
    """What the detector's ``score_events`` means (``Detector.event_score_meaning``)."""
    return detector.event_score_meaning or "event_score"


def n_real_events(data: EventSequences, row: int = 0) -> int:
    return int(np.asarray(data.mask[row], dtype=bool).sum())


def _check_left_aligned(data: EventSequences, row: int) -> np.ndarray:
    mask = np.asarray(data.mask[row], dtype=bool)
    k = int(mask.sum())
    if not mask[:k].all():
        raise ModelError(
            "event sequences must hold their events first and padding after, got padding "
            "between events. Build the sequences with core.features.build_event_sequences."
        )
    return mask


def session_attention(weights: np.ndarray, k: int) -> np.ndarray:
    """(n_layers, n_heads, k + 1, k + 1): one session's maps cut to [CLS] + its k events."""
    weights = np.asarray(weights)
    if weights.ndim != 4 or weights.shape[2] != weights.shape[3] or weights.shape[2] < k + 1:
        raise ModelError(
            f"attention maps must have shape (n_layers, n_heads, L + 1, L + 1) with L >= {k}, "
            f"got {weights.shape}. Check the detector's attentions() output."
        )
    return weights[:, :, : k + 1, : k + 1].astype(np.float32)


def _normalise(values: np.ndarray) -> np.ndarray:
    total = float(values.sum())
    return values / total if total > 0 else np.full_like(values, 1.0 / max(len(values), 1))


def cls_attention(weights: np.ndarray, layer: int = -1) -> np.ndarray:
    """(k,) head-averaged attention from the session token to each event in ``layer``
    (default the last), renormalised over the events so it sums to 1.

    ``weights``: (n_layers, n_heads, k + 1, k + 1), index 0 the session token.
    """
    averaged = np.asarray(weights, dtype=np.float64)[layer].mean(axis=0)  # (k + 1, k + 1)
    return _normalise(averaged[0, 1:])


def attention_rollout(weights: np.ndarray, residual: float = RESIDUAL_WEIGHT) -> np.ndarray:
    """(k,) attention rollout (Abnar & Zuidema, 2020) from the session token to each event.

    Each layer's head-averaged map is mixed with the identity (the residual stream),
    rows renormalised, and the layers multiplied from the first to the last; the session
    token's row, without its own column, is renormalised to sum to 1.
    """
    weights = np.asarray(weights, dtype=np.float64)
    size = weights.shape[-1]
    rollout = np.eye(size)
    for layer in weights:  # first to last
        mixed = (1 - residual) * layer.mean(axis=0) + residual * np.eye(size)
        mixed = mixed / np.maximum(mixed.sum(axis=1, keepdims=True), 1e-12)
        rollout = mixed @ rollout
    return _normalise(rollout[0, 1:])


def drop_events(data: EventSequences, row: int, drop: list[np.ndarray] | np.ndarray
                ) -> EventSequences:
    """One variant of session ``row`` per entry of ``drop`` (positions to remove), events
    shifted left and padded at the end; same length L, vocabulary and channels."""
    _check_left_aligned(data, row)
    sets = [np.atleast_1d(np.asarray(d, dtype=np.int64)) for d in drop]
    k = n_real_events(data, row)
    width = data.max_len
    n = len(sets)
    tokens = np.zeros((n, width), dtype=np.asarray(data.tokens).dtype)
    numeric = np.zeros((n, width, data.numeric.shape[2]), dtype=np.asarray(data.numeric).dtype)
    mask = np.zeros((n, width), dtype=bool)
    event_ids = np.full((n, width), "", dtype=object)
    for i, positions in enumerate(sets):
        keep = np.setdiff1d(np.arange(k), positions)
        m = len(keep)
        tokens[i, :m] = data.tokens[row, keep]
        numeric[i, :m] = data.numeric[row, keep]
        mask[i, :m] = True
        event_ids[i, :m] = data.event_ids[row, keep]
    ids = np.array([data.session_ids[row]] * n, dtype=object)
    return EventSequences(ids, tokens, numeric, mask, event_ids, data.vocab, data.channel_names)


def occlusion(detector: Any, data: EventSequences, row: int = 0) -> np.ndarray:
    """(k,) ``score(session) - score(session without event i)`` for each real event i, in
    log-odds when the score is a probability (``core.explain.units``).

    A one-event session's only event gets the whole score (there is nothing left to score).
    """
    k = n_real_events(data, row)
    if k == 0:
        return np.zeros(0)
    units = units_of(detector)
    full = float(in_units(detector.score(data.take(np.array([row]))), units)[0])
    if k == 1:
        return np.array([full])
    variants = drop_events(data, row, [np.array([i]) for i in range(k)])
    return full - in_units(detector.score(variants), units)


def event_scores(detector: Any, data: EventSequences, row: int = 0) -> np.ndarray | None:
    """(k,) the detector's own per-event score of the session's events; None if it has none."""
    if detector.event_score_meaning is None:
        return None
    k = n_real_events(data, row)
    values = np.asarray(detector.score_events(data.take(np.array([row]))), dtype=np.float64)
    return values[0, :k]


def attention_maps(detector: Any, data: EventSequences, row: int = 0) -> np.ndarray | None:
    """(n_layers, n_heads, k + 1, k + 1) for the session, or None if the detector has none."""
    if not detector.has_attention:
        return None
    k = n_real_events(data, row)
    weights = np.asarray(detector.attentions(data.take(np.array([row]))))
    if weights.ndim != 5 or weights.shape[0] != 1:
        raise ModelError(
            "attentions() must return (n, n_layers, n_heads, L + 1, L + 1), got shape "
            f"{weights.shape}. Check the detector."
        )
    return session_attention(weights[0], k)


def event_contributions(detector: Any, data: EventSequences, row: int = 0
                        ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Every per-event method the detector supports, and its attention maps (or None)."""
    _check_left_aligned(data, row)
    out: dict[str, np.ndarray] = {"occlusion": occlusion(detector, data, row)}
    own = event_scores(detector, data, row)
    if own is not None:
        out[event_score_method(detector)] = own
    maps = attention_maps(detector, data, row)
    if maps is not None and maps.shape[-1] > 1:
        out["attention"] = cls_attention(maps)
        out["rollout"] = attention_rollout(maps)
    return out, maps
