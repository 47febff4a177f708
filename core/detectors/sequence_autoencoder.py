"""Recurrent sequence-to-sequence autoencoder over a session's events.

The encoder (GRU or LSTM) reads the event embeddings (event-type token + numeric channels) and
squeezes its last state into a small latent vector; the decoder starts from that latent and,
given the previous event (teacher forcing), reconstructs each event: its type (cross-entropy)
and its numeric channels (squared error). An event's score is its reconstruction loss, so an
unusual event type, an unusual transition or an unusual amount stands out where it happens; a
session's score reduces its events' scores by ``aggregation`` (``core.detectors._aggregate``).
An event type never seen in training (UNKNOWN) scores at least twice the worst event of the
training sessions (``unknown_floor_``), so it can never look predictable: its embedding was
never trained, and its reconstruction error alone would be arbitrary.

Padding may sit anywhere: sequences are compacted to their real events (in order) before the
net sees them and per-event scores are put back where the events were (NaN on padding).
Event types unseen at fit time, and token ids outside the fitted vocabulary, become UNKNOWN.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.datasets import EventSequences
from core.detectors._aggregate import (
    FLOOR_SAMPLE,
    aggregate_events,
    apply_unknown_floor,
    check_aggregation,
    trained_vocab,
    unknown_floor,
)
from core.detectors._refusals import refuse_one_event_sessions
from core.detectors._scaling import SCALINGS, fit_scaler, scaler_from_state, scaler_to_state
from core.detectors._training import TorchTrainingConfig
from core.detectors.base import SequenceDetector, map_tokens
from core.detectors.config import check_choice, check_float, check_int
from core.detectors.registry import register
from core.detectors.torch_detector import TorchDetector
from core.errors import ConfigError, ModelError


@dataclasses.dataclass(frozen=True)
class SequenceAutoencoderConfig(TorchTrainingConfig):
    """Sequence autoencoder settings (plus the shared training fields).

    Attributes:
        cell: recurrent cell, "gru" (faster on CPU) or "lstm".
        embed_dim: width of the event embedding (token + projected numeric channels).
        hidden_dim: recurrent state width of encoder and decoder.
        latent_dim: bottleneck between encoder and decoder.
        n_layers: stacked recurrent layers.
        dropout: between stacked layers (needs n_layers > 1).
        numeric_weight: weight of the numeric squared error next to the token cross-entropy.
        aggregation: how event scores become the session score: "mean", "max", "topk"
            (mean of the ``top_k`` worst), "mean+max" or "mean+topk" (halfway between).
        top_k: events averaged by the top-k aggregations.
        scaling: how numeric channels are standardised ("robust", "standard", "mad").
        clip: standardised numeric values are clipped to [-clip, clip].
        score_batch_size: sessions per scoring batch.
        max_train_sessions: at most this many training sessions (a seeded random sample,
            kept in time order) are used, so training time stays bounded on big stores;
            the recurrent net is small and learns the event grammar from far fewer.
    """

    cell: str = "gru"
    embed_dim: int = 16
    hidden_dim: int = 32
    latent_dim: int = 16
    n_layers: int = 1
    dropout: float = 0.0
    numeric_weight: float = 1.0
    aggregation: str = "mean+topk"
    top_k: int = 3
    scaling: str = "robust"
    clip: float = 10.0
    score_batch_size: int = 1024
    max_train_sessions: int = 40_000
    # A step budget, not 5 epochs: 5 passes over ~1,000 sessions were 32 steps under the
    # step-budget loop, too few to learn tests/core/pipeline/test_generic_data.py's chain;
    # early stopping ended that run after 184 steps, near a perfect ROC-AUC
    # (docs/BENCHMARKS.md, 'Measurements behind design choices').
    max_steps: int = 1500
    epochs: int | None = None
    batch_size: int = 256
    learning_rate: float = 1e-2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("cell", self.cell, ("gru", "lstm"))
        check_int("embed_dim", self.embed_dim, 1)
        check_int("hidden_dim", self.hidden_dim, 1)
        check_int("latent_dim", self.latent_dim, 1)
        check_int("n_layers", self.n_layers, 1, 8)
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_float("numeric_weight", self.numeric_weight, 0.0, 1e6)
        check_aggregation(self.aggregation, self.top_k)
        check_choice("scaling", self.scaling, SCALINGS)
        check_float("clip", self.clip, 0.0, 1e6, low_open=True)
        check_int("score_batch_size", self.score_batch_size, 1)
        check_int("max_train_sessions", self.max_train_sessions, 1)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """As the base, reading a config saved before ``aggregation`` existed: its
        ``max_weight`` blend of mean and max becomes the nearest aggregation."""
        values = dict(values)
        if "max_weight" in values:
            weight = float(values.pop("max_weight"))
            nearest = "mean" if weight < 0.25 else "max" if weight > 0.75 else "mean+max"
            values.setdefault("aggregation", nearest)
        return super().from_dict(values)


class SequenceAutoencoderNet(nn.Module):
    """Pure module: (tokens, numeric, lengths) -> per-event (token logits, numeric guesses)."""

    def __init__(self, n_tokens: int, n_channels: int, embed_dim: int, hidden_dim: int,
                 latent_dim: int, n_layers: int, cell: str, dropout: float) -> None:
        super().__init__()
        self.n_layers, self.hidden_dim, self.cell = n_layers, hidden_dim, cell
        self.token_embed = nn.Embedding(n_tokens, embed_dim, padding_idx=0)
        self.numeric_embed = nn.Linear(n_channels, embed_dim) if n_channels else None
        self.start = nn.Parameter(torch.zeros(embed_dim))  # the decoder's "previous event" at t=0
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        inner_dropout = dropout if n_layers > 1 else 0.0
        # Sequence-first layout (L, B, ·): measurably faster than batch_first on CPU.
        self.encoder = rnn(embed_dim, hidden_dim, n_layers, dropout=inner_dropout)
        self.to_latent = nn.Linear(hidden_dim, latent_dim)
        self.from_latent = nn.Linear(latent_dim, n_layers * hidden_dim)
        self.decoder = rnn(embed_dim, hidden_dim, n_layers, dropout=inner_dropout)
        self.token_head = nn.Linear(hidden_dim, n_tokens)
        self.numeric_head = nn.Linear(hidden_dim, n_channels) if n_channels else None

    def embed(self, tokens: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """(L, B) tokens, (L, B, C) numeric -> (L, B, E)."""
        x = self.token_embed(tokens)
        if self.numeric_embed is not None:
            x = x + self.numeric_embed(numeric)
        return x

    def forward(self, tokens: torch.Tensor, numeric: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """tokens (L, B) int64 left-aligned, numeric (L, B, C), lengths (B,) >= 1.

        Returns token logits (L, B, V) and numeric reconstruction (L, B, C) or None.
        """
        x = self.embed(tokens, numeric)  # (L, B, E)
        states, _ = self.encoder(x)  # (L, B, H)
        last = states.gather(0, (lengths - 1).view(1, -1, 1).expand(1, -1, states.shape[2]))
        latent = self.to_latent(last[0])  # (B, H) -> (B, Z)
        h0 = torch.tanh(self.from_latent(latent))  # (B, n_layers * H)
        h0 = h0.view(-1, self.n_layers, self.hidden_dim).transpose(0, 1).contiguous()
        init: Any = h0 if self.cell == "gru" else (h0, torch.zeros_like(h0))
        start = self.start.view(1, 1, -1).expand(1, x.shape[1], -1)  # (1, B, E)
        previous = torch.cat([start, x[:-1]], dim=0)  # (L, B, E): event t-1 at step t
        decoded, _ = self.decoder(previous, init)  # (L, B, H)
        numeric_out = self.numeric_head(decoded) if self.numeric_head is not None else None
        return self.token_head(decoded), numeric_out


def event_losses(net: SequenceAutoencoderNet, tokens: torch.Tensor, numeric: torch.Tensor,
                 lengths: torch.Tensor, numeric_weight: float) -> torch.Tensor:
    """(B, L') float32 reconstruction loss per event of left-aligned sessions, where L' is the
    longest session in the batch (positions past a session's length are meaningless)."""
    width = int(lengths.max())
    tokens_t = tokens[:, :width].T  # (L', B)
    numeric_t = numeric[:, :width].transpose(0, 1)  # (L', B, C)
    logits, numeric_out = net(tokens_t, numeric_t, lengths.clamp(min=1))
    loss = F.cross_entropy(logits.float().flatten(0, 1), tokens_t.flatten(),
                           reduction="none").view(tokens_t.shape)  # (L', B)
    if numeric_out is not None and numeric_weight > 0:
        loss = loss + numeric_weight * (numeric_out.float() - numeric_t).square().mean(dim=2)
    return loss.T  # (B, L')


def left_align(tokens: np.ndarray, numeric: np.ndarray, mask: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Move each row's real events to the front (keeping their order).

    Returns tokens, numeric, lengths and the permutation used (None when already aligned).
    """
    lengths = mask.sum(axis=1).astype(np.int64)
    if np.array_equal(mask, np.arange(mask.shape[1])[None, :] < lengths[:, None]):
        return tokens, numeric, lengths, None
    order = np.argsort(~mask, axis=1, kind="stable")
    tokens = np.take_along_axis(tokens, order, axis=1)
    numeric = np.take_along_axis(numeric, order[:, :, None], axis=1)
    return tokens, numeric, lengths, order


def sample_rows(arrays: list[np.ndarray], limit: int, seed: int) -> list[np.ndarray]:
    """At most ``limit`` rows of ``arrays``: a seeded random sample kept in order."""
    if len(arrays[0]) <= limit:
        return arrays
    rows = np.sort(np.random.default_rng(seed).choice(len(arrays[0]), limit, replace=False))
    return [a[rows] for a in arrays]


class EventVocabStateMixin:
    """Save/restore and unknown-type calibration shared by the recurrent sequence models
    (sequence_autoencoder, sequence_vae): vocabulary, channel scaler, unknown floor."""

    vocab_: dict[str, int]
    n_tokens_: int
    channel_names_: tuple[str, ...]
    centre_: np.ndarray
    scale_: np.ndarray
    unknown_floor_: float | None
    score_events: Any  # the detector's own (n, L) per-event scores

    def _validation_inputs(self, validation: EventSequences) -> list[np.ndarray]:
        if tuple(validation.channel_names) != self.channel_names_:
            raise ConfigError(
                "validation channels must match the training channels, got "
                f"{list(validation.channel_names)}. Build both with the same feature version."
            )
        return [map_tokens(validation, self.vocab_, self.n_tokens_),
                np.asarray(validation.numeric, dtype=np.float32),
                np.asarray(validation.mask, dtype=bool)]

    def _calibrate(self, data: EventSequences) -> None:
        mask = np.asarray(data.mask, dtype=bool)
        if not (mask & (np.asarray(data.tokens) == EventSequences.UNKNOWN)).any():
            latest = data.take(np.arange(max(len(data) - FLOOR_SAMPLE, 0), len(data)))
            self.unknown_floor_ = unknown_floor(self.score_events(latest))

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"vocab": self.vocab_, "n_tokens": self.n_tokens_,
                "channel_names": list(self.channel_names_),
                "scaler": scaler_to_state(self.centre_, self.scale_),
                "unknown_floor": self.unknown_floor_}, {}

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        vocab = {str(k): int(v) for k, v in state["vocab"].items()}
        n_tokens = int(state["n_tokens"])
        if n_tokens < 2 or any(not 0 <= v < n_tokens for v in vocab.values()):
            raise ModelError(
                f"vocabulary in config.json must map to tokens below n_tokens={n_tokens}, got "
                "values outside. Save the model again or retrain it."
            )
        channels = tuple(str(c) for c in state["channel_names"])
        self.centre_, self.scale_ = scaler_from_state(state["scaler"], len(channels))
        floor = state.get("unknown_floor")
        self.unknown_floor_ = None if floor is None else float(floor)
        self.n_tokens_, self.channel_names_, self.vocab_ = n_tokens, channels, vocab


@register("sequence_autoencoder")
class SequenceAutoencoderDetector(EventVocabStateMixin,
                                  TorchDetector[SequenceAutoencoderConfig],
                                  SequenceDetector[SequenceAutoencoderConfig]):
    """Per-event reconstruction error of a recurrent autoencoder over event sequences.

    Learned: ``vocab_``, ``n_tokens_``, ``channel_names_``, ``centre_``/``scale_`` (numeric
    standardisation over the real events of all of ``data``), ``net_``, ``history_`` and
    ``unknown_floor_`` (the least score of an event type never seen in training; None when
    training held UNKNOWN).
    """

    config_class = SequenceAutoencoderConfig
    description = "sequence autoencoder"
    event_score_meaning = "reconstruction_error"
    tiny_config: ClassVar[dict[str, Any]] = {
        "embed_dim": 8, "hidden_dim": 16, "latent_dim": 8, "epochs": 2, "batch_size": 64,
        "quiet": True, "device": "cpu"}
    centre_: np.ndarray
    scale_: np.ndarray
    net_: SequenceAutoencoderNet
    unknown_floor_: float | None

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_") and hasattr(self, "vocab_")

    def _prepare(self, tokens: np.ndarray, numeric: np.ndarray, mask: np.ndarray) -> tuple[
            np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Standardise, clip and left-align: (tokens, numeric, lengths, order)."""
        numeric = np.asarray(numeric, dtype=np.float32)
        z = (numeric - self.centre_.astype(np.float32)) / self.scale_.astype(np.float32)
        z = np.clip(z, -self.config.clip, self.config.clip, out=z)
        z[~mask] = 0.0
        if not np.isfinite(z).all():
            raise ModelError(
                "numeric channels must be finite on real events, got NaN. Impute missing "
                "amounts when building the sequences."
            )
        tokens = np.where(mask, tokens, EventSequences.PAD)
        return left_align(tokens, z, mask)

    # -- TorchDetector hooks ----------------------------------------------------------------
    def _fit_inputs(self, data: EventSequences, y: np.ndarray | None) -> list[np.ndarray]:
        self._check_input(data)
        vocab, self.n_tokens_ = self._learn_vocab(data)
        mask = np.asarray(data.mask, dtype=bool)
        if not mask.any():
            raise ModelError(
                "training sequences must contain at least one real event, got only padding. "
                "Check the sessions selected for training."
            )
        # the scaler sees every real event of ``data``, validation part included
        self.centre_, self.scale_ = fit_scaler(np.asarray(data.numeric)[mask],
                                               self.config.scaling)
        refuse_one_event_sessions(data, self.kind)
        tokens = np.asarray(data.tokens, dtype=np.int64)
        if tokens.min() < 0:
            raise ModelError(f"tokens must be >= 0, got {tokens.min()}. Rebuild the sequences.")
        self.vocab_ = trained_vocab(vocab, tokens, mask)
        self.channel_names_ = tuple(data.channel_names)
        self.unknown_floor_ = None
        return [tokens, np.asarray(data.numeric), mask]

    def _training_arrays(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        tok, num, lengths, _ = self._prepare(*raw)
        keep = lengths > 0  # sessions without events teach nothing
        return [tok[keep], num[keep], lengths[keep]]

    def _select_rows(self, train: list[np.ndarray], val: list[np.ndarray] | None
                     ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        train = sample_rows(train, self.config.max_train_sessions, self.config.seed)
        if val is not None:  # sorted by length: validation batches carry little padding
            by_length = np.argsort(val[2], kind="stable")
            val = [a[by_length] for a in val]
        return train, val

    def _bucket_lengths(self, train: list[np.ndarray]) -> np.ndarray | None:
        return train[2]

    def _build_net(self) -> nn.Module:
        cfg = self.config
        return SequenceAutoencoderNet(self.n_tokens_, len(self.channel_names_), cfg.embed_dim,
                                      cfg.hidden_dim, cfg.latent_dim, cfg.n_layers, cfg.cell,
                                      cfg.dropout)

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        tokens, numeric, lengths = batch
        losses = event_losses(net, tokens, numeric, lengths,  # type: ignore[arg-type]
                              self.config.numeric_weight)
        real = torch.arange(losses.shape[1], device=losses.device)[None, :] < lengths[:, None]
        return losses[real].mean()

    # -- scoring ----------------------------------------------------------------------------
    @torch.inference_mode()
    def score_events(self, data: EventSequences) -> np.ndarray:
        """float64 (n, L) reconstruction loss per event (at least ``unknown_floor_`` for an
        event type never seen in training), NaN where padded."""
        tokens = self._tokens_for_score(data)
        mask = np.asarray(data.mask, dtype=bool)
        unknown = (tokens == EventSequences.UNKNOWN) & mask
        tok, num, lengths, order = self._prepare(tokens, np.asarray(data.numeric), mask)
        n, width = tok.shape
        aligned = np.full((n, width), np.nan)
        device = self.device
        # Sort by length so each batch is cut to its own longest session.
        by_length = np.argsort(lengths, kind="stable")
        by_length = by_length[lengths[by_length] > 0]
        step = self.config.score_batch_size
        for start in range(0, len(by_length), step):
            rows = by_length[start:start + step]
            top = int(lengths[rows[-1]])
            b_len = torch.from_numpy(lengths[rows]).to(device)
            losses = event_losses(
                self.net_, torch.from_numpy(tok[rows, :top]).to(device),
                torch.from_numpy(num[rows, :top]).to(device), b_len, self.config.numeric_weight)
            block = losses.to("cpu", torch.float64).numpy()  # (b, top)
            block[np.arange(top)[None, :] >= lengths[rows][:, None]] = np.nan
            aligned[rows, :top] = block
        if order is not None:
            out = np.full((n, width), np.nan)
            np.put_along_axis(out, order, aligned, axis=1)
            aligned = out
        return apply_unknown_floor(aligned, unknown, getattr(self, "unknown_floor_", None))

    def score(self, data: EventSequences) -> np.ndarray:
        """float64 (n,) session score: the event losses reduced by ``aggregation``; 0 for a
        session without events."""
        return self.reduce_events(self.score_events(data))

    def reduce_events(self, events: np.ndarray) -> np.ndarray:
        """Session scores from the (n, L) output of ``score_events``."""
        return aggregate_events(events, self.config.aggregation, self.config.top_k)
