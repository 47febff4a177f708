"""The BERT-style event encoder shared by ``transformer`` and ``transformer_mlm``, and the
sequence preparation shared by the sequence classifiers.

A session becomes ``[CLS] e_1 ... e_n``: each event's embedding is its event-type token
embedding plus a linear projection of its numeric channels; ``transformers``' BertModel (built
from a BertConfig, trained from scratch, never downloaded) adds positions and runs the layers.
Real events are moved to the front of each row first (padding may sit anywhere in the input),
so a batch can be cut to its longest session and positions count events, not columns.

Attention: BERT's default ``sdpa`` path is the fast one and returns no attention weights; the
``eager`` path does. ``attn_implementation`` is not saved with the weights, so the eager view
is made on demand from the scoring net (same weights, its own config object).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel

from core.datasets import EventSequences
from core.detectors._scaling import SCALINGS
from core.detectors.config import DetectorConfig, check_choice, check_float, check_int
from core.detectors.sequence_autoencoder import left_align
from core.errors import ConfigError, ModelError


@dataclasses.dataclass(frozen=True)
class EncoderConfig(DetectorConfig):
    """Encoder fields (mixed into the transformer configs).

    Attributes:
        hidden_size, n_layers, n_heads, intermediate_size: BERT dimensions (hidden_size must
            be a multiple of n_heads).
        dropout: hidden dropout while training. Attention dropout stays off: with it, sdpa
            leaves its fused kernel and an epoch takes markedly longer (docs/BENCHMARKS.md,
            'Measurements behind design choices').
        max_len: longest session (in events) the position table covers.
        scaling, clip: numeric channels are standardised over real events and clipped.
        score_batch_size: sessions per scoring batch (256 full-length sessions fit in the
            cache of 2 cores: 512 scored slower).
    """

    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 4
    intermediate_size: int = 128
    dropout: float = 0.1
    max_len: int = 128
    scaling: str = "robust"
    clip: float = 10.0
    score_batch_size: int = 256

    def __post_init__(self) -> None:
        super_post = getattr(super(), "__post_init__", None)
        if super_post is not None:
            super_post()
        check_int("hidden_size", self.hidden_size, 1)
        check_int("n_layers", self.n_layers, 1, 24)
        check_int("n_heads", self.n_heads, 1)
        if self.hidden_size % self.n_heads:
            raise ConfigError(
                f"hidden_size must be a multiple of n_heads ({self.n_heads}), got "
                f"{self.hidden_size}. Pick e.g. hidden_size={self.n_heads * 16}."
            )
        check_int("intermediate_size", self.intermediate_size, 1)
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_int("max_len", self.max_len, 1, 4096)
        check_choice("scaling", self.scaling, SCALINGS)
        check_float("clip", self.clip, 0.0, 1e6, low_open=True)
        check_int("score_batch_size", self.score_batch_size, 1)

    def architecture(self) -> tuple[int, int, int, int, int]:
        return (self.hidden_size, self.n_layers, self.n_heads, self.intermediate_size,
                self.max_len)


class EventEncoder(nn.Module):
    """Pure module: (tokens, numeric, mask) of left-aligned sessions -> hidden states of
    ``[CLS] + events``. Token ids ``n_tokens`` and ``n_tokens + 1`` are [CLS] and [MASK]."""

    def __init__(self, n_tokens: int, n_channels: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cls_id, self.mask_id = n_tokens, n_tokens + 1
        bert_config = BertConfig(
            vocab_size=n_tokens + 2, hidden_size=cfg.hidden_size,
            num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
            intermediate_size=cfg.intermediate_size, hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=0.0, max_position_embeddings=cfg.max_len + 1,
            type_vocab_size=1, pad_token_id=EventSequences.PAD,
            attn_implementation="sdpa")  # type: ignore[call-arg]  # a PretrainedConfig kwarg
        self.bert = BertModel(bert_config, add_pooling_layer=False)
        self.numeric = nn.Linear(n_channels, cfg.hidden_size) if n_channels else None

    def forward(self, tokens: torch.Tensor, numeric: torch.Tensor, mask: torch.Tensor,
                output_attentions: bool = False
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """tokens (B, W) int64, numeric (B, W, C), mask (B, W) bool ->
        hidden (B, 1 + W, H) and, with ``output_attentions`` (eager view only), one
        (B, heads, 1 + W, 1 + W) tensor per layer."""
        embeds = self._input_embeddings(tokens, numeric)
        attention: torch.Tensor | None = torch.cat(
            [torch.ones_like(mask[:, :1]), mask], dim=1).long()
        if bool(attention.all()):  # type: ignore[union-attr]
            attention = None  # no padding in this batch: the unmasked fast path
        out = self.bert(inputs_embeds=embeds, attention_mask=attention,
                        output_attentions=output_attentions)
        return out.last_hidden_state, tuple(out.attentions or ())

    def _input_embeddings(self, tokens: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """(B, 1 + W, H): [CLS] + event-type embeddings plus the projected numeric channels
        (BERT's embedding layer adds positions and the LayerNorm)."""
        cls = torch.full_like(tokens[:, :1], self.cls_id)
        embeds = self.bert.embeddings.word_embeddings(torch.cat([cls, tokens], dim=1))
        if self.numeric is not None:
            projected = self.numeric(numeric.to(embeds.dtype))  # (B, W, C) -> (B, W, H)
            embeds = embeds + torch.cat([torch.zeros_like(projected[:, :1]), projected], dim=1)
        return embeds

    def session_hidden(self, tokens: torch.Tensor, numeric: torch.Tensor, mask: torch.Tensor
                       ) -> torch.Tensor:
        """Hidden state (B, H) of [CLS] after the last layer: same numbers as ``forward(...)[0]
        [:, 0]``, cheaper. The last layer computes only the [CLS] query, its attention output
        and its feed-forward (one position instead of 1 + W), which is what session scoring
        needs; the other layers run on the BERT weights the same way ``sdpa`` does."""
        bert = self.bert
        hidden = bert.embeddings(inputs_embeds=self._input_embeddings(tokens, numeric))
        keep: torch.Tensor | None = None
        if not bool(mask.all()):
            keep = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)[:, None, None, :]
        layers = list(bert.encoder.layer)
        for i, layer in enumerate(layers):
            hidden = _bert_layer(layer, hidden, keep, cls_only=i == len(layers) - 1)
        return hidden[:, 0]

    def eager_view(self) -> EventEncoder:
        """A copy of this encoder whose BERT runs the eager attention (returns weights)."""
        view = copy.deepcopy(self)
        view.bert.set_attn_implementation("eager")
        return view.eval()


def _bert_layer(layer: nn.Module, hidden: torch.Tensor, keep: torch.Tensor | None,
                cls_only: bool) -> torch.Tensor:
    """One post-norm BertLayer (eval mode) on ``hidden`` (B, T, H) with key mask ``keep``
    (B, 1, 1, T), True = attend; ``cls_only`` returns only position 0, (B, 1, H)."""
    attn = layer.attention.self
    batch, width, size = hidden.shape
    heads, head_size = attn.num_attention_heads, attn.attention_head_size
    query_in = hidden[:, :1] if cls_only else hidden

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, heads, T, head_size)
        return x.view(batch, -1, heads, head_size).transpose(1, 2)

    context = F.scaled_dot_product_attention(
        split(attn.query(query_in)), split(attn.key(hidden)), split(attn.value(hidden)),
        attn_mask=keep)
    context = context.transpose(1, 2).reshape(batch, -1, size)
    out = layer.attention.output
    hidden = out.LayerNorm(out.dense(context) + query_in)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(hidden))
    return layer.output.LayerNorm(layer.output.dense(inner) + hidden)


class Prepared(NamedTuple):
    """Left-aligned sessions: tokens (n, W) int64, numeric (n, W, C) float32 standardised,
    lengths (n,) int64, and the column permutation used (None when already aligned)."""

    tokens: np.ndarray
    numeric: np.ndarray
    lengths: np.ndarray
    order: np.ndarray | None


def take(prepared: Prepared, rows: np.ndarray) -> Prepared:
    """The sessions at ``rows``."""
    order = None if prepared.order is None else prepared.order[rows]
    return Prepared(prepared.tokens[rows], prepared.numeric[rows], prepared.lengths[rows], order)


def prepare(data: EventSequences, tokens: np.ndarray, centre: np.ndarray, scale: np.ndarray,
            clip: float, max_len: int | None = None) -> Prepared:
    """``prepare_arrays`` of ``data``'s numeric channels and mask."""
    return prepare_arrays(tokens, data.numeric, data.mask, centre, scale, clip, max_len)


def prepare_arrays(tokens: np.ndarray, numeric: np.ndarray, mask: np.ndarray,
                   centre: np.ndarray, scale: np.ndarray, clip: float,
                   max_len: int | None = None) -> Prepared:
    """Standardise the numeric channels of real events, zero padding, move events to the
    front. ModelError when a session is longer than ``max_len``."""
    mask = np.asarray(mask, dtype=bool)
    numeric = np.asarray(numeric, dtype=np.float32)
    z = (numeric - centre.astype(np.float32)) / scale.astype(np.float32)
    z = np.clip(z, -clip, clip, out=z)
    z[~mask] = 0.0
    if not np.isfinite(z).all():
        raise ModelError(
            "numeric channels must be finite on real events, got NaN. Impute missing "
            "amounts when building the sequences."
        )
    tokens = np.where(mask, tokens, EventSequences.PAD)
    prepared = Prepared(*left_align(tokens, z, mask))
    longest = int(prepared.lengths.max()) if len(prepared.lengths) else 0
    if max_len is not None and longest > max_len:
        raise ModelError(
            f"sessions must have at most max_len={max_len} events, got {longest}. Build the "
            "sequences with a smaller length, or train with a larger max_len."
        )
    return prepared


def batches_by_length(lengths: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """(rows, width) per batch: rows sorted by length, so each batch is cut to its longest
    session (width >= 1)."""
    by_length = np.argsort(lengths, kind="stable")
    for start in range(0, len(by_length), batch_size):
        rows = by_length[start:start + batch_size]
        yield rows, max(int(lengths[rows[-1]]), 1)


def to_columns(prepared: Prepared, aligned: np.ndarray) -> np.ndarray:
    """Per-event values (n, W) of left-aligned sessions back in their original columns (NaN on
    padding)."""
    width = aligned.shape[1]
    aligned = np.where(np.arange(width)[None, :] < prepared.lengths[:, None], aligned, np.nan)
    if prepared.order is None:
        return aligned
    out = np.full_like(aligned, np.nan)
    np.put_along_axis(out, prepared.order, aligned, axis=1)
    return out


def column_of(prepared: Prepared, row: int, length: int) -> np.ndarray:
    """Original column of each of the first ``length`` aligned events of ``row``."""
    if prepared.order is None:
        return np.arange(length)
    return prepared.order[row, :length]


class EncoderStateMixin:
    """Learned by the transformer detectors and cnn_gru: ``vocab_``, ``n_tokens_``,
    ``channel_names_`` and ``centre_``/``scale_`` (numeric channels over real training
    events), saved as config.json's "vocab", "n_tokens", "channel_names" and "scaler"."""

    vocab_: dict[str, int]
    n_tokens_: int
    channel_names_: tuple[str, ...]
    centre_: np.ndarray
    scale_: np.ndarray

    def _encoder_state(self) -> dict[str, Any]:
        from core.detectors._scaling import scaler_to_state

        return {"vocab": self.vocab_, "n_tokens": self.n_tokens_,
                "channel_names": list(self.channel_names_),
                "scaler": scaler_to_state(self.centre_, self.scale_)}

    def _set_encoder_state(self, state: dict[str, Any]) -> None:
        from core.detectors._scaling import scaler_from_state

        vocab = {str(k): int(v) for k, v in state["vocab"].items()}
        n_tokens = int(state["n_tokens"])
        channels = tuple(str(c) for c in state["channel_names"])
        if n_tokens < 2 or any(not 0 <= v < n_tokens for v in vocab.values()):
            raise ModelError(
                f"vocabulary in config.json must map to tokens below n_tokens={n_tokens}, got "
                "values outside. Save the model again or retrain it."
            )
        self.centre_, self.scale_ = scaler_from_state(state["scaler"], len(channels))
        self.vocab_, self.n_tokens_, self.channel_names_ = vocab, n_tokens, channels
