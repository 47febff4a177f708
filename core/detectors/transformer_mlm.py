"""Masked-event pre-training of the event encoder; its surprise is an unsupervised score.

Training hides a random ``mask_rate`` of each session's events (token replaced by [MASK],
numeric channels zeroed, at least one event per session) and teaches the encoder to name the
hidden event type from the rest of the session. An event's score is its surprise,
-log p(true type | the session with that event hidden); a session's score reduces its events'
surprises by ``aggregation`` (``core.detectors._aggregate``). An event type never seen in
training (UNKNOWN) is maximally surprising: it scores at least twice the worst surprise on the
training sessions (``unknown_floor_``), whatever the head happens to give the never-trained
class. Scoring hides every event once, in ``score_passes`` passes that each hide
every ``score_passes``-th event, so neighbours are never hidden together and the scores are
deterministic. A fitted model can start the supervised ``transformer`` (``init_from``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

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
from core.detectors._encoder import (
    EncoderConfig,
    EncoderStateMixin,
    EventEncoder,
    batches_by_length,
    prepare,
    prepare_arrays,
    to_columns,
)
from core.detectors._refusals import refuse_one_event_sessions, refuse_one_event_type
from core.detectors._scaling import fit_scaler
from core.detectors._training import TorchTrainingConfig, autocast
from core.detectors.base import SequenceDetector, map_tokens
from core.detectors.config import check_float, check_int
from core.detectors.registry import register
from core.detectors.sequence_autoencoder import sample_rows
from core.detectors.torch_detector import TorchDetector
from core.errors import ModelError


@dataclasses.dataclass(frozen=True)
class TransformerMLMConfig(EncoderConfig, TorchTrainingConfig):
    """Masked-event encoder settings (encoder fields plus the torch training fields).

    Attributes:
        mask_rate: share of events hidden per training session.
        score_passes: scoring hides every ``score_passes``-th event per pass (so each event
            is hidden once; scoring costs that many forward passes).
        max_train_sessions: at most this many training sessions (a seeded sample in time
            order), so training time stays bounded on big stores.
        aggregation: how event surprises become the session score: "mean", "max", "topk"
            (mean of the ``top_k`` worst), "mean+max" or "mean+topk" (halfway between).
        top_k: events averaged by the top-k aggregations.
    """

    mask_rate: float = 0.2
    aggregation: str = "mean+topk"
    top_k: int = 3
    score_passes: int = 5
    max_train_sessions: int = 100_000
    max_steps: int = 1500  # a step budget (early stopping ends it sooner), not 5 epochs
    epochs: int | None = None
    batch_size: int = 128
    # 3e-3, as the other torch detectors: at 1e-3 the masked-event loss sat on its plateau
    # (the unigram entropy) for ~600 of the 1,500 steps on a 300-type chain, so one seed in
    # three stopped there and the others ended still falling (markov300 AP 0.406 +- 0.162;
    # 3e-3: 0.989 +- 0.013, converged by ~1,400 steps; docs/BENCHMARKS.md)
    learning_rate: float = 3e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("mask_rate", self.mask_rate, 0.0, 1.0, low_open=True)
        check_int("score_passes", self.score_passes, 1, 64)
        check_int("max_train_sessions", self.max_train_sessions, 1)
        check_aggregation(self.aggregation, self.top_k)


class MaskedEventNet(nn.Module):
    """Encoder + a head that names each position's event type."""

    def __init__(self, n_tokens: int, n_channels: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.encoder = EventEncoder(n_tokens, n_channels, cfg)
        self.token_head = nn.Linear(cfg.hidden_size, n_tokens)

    def forward(self, tokens: torch.Tensor, numeric: torch.Tensor, mask: torch.Tensor
                ) -> torch.Tensor:
        hidden, _ = self.encoder(tokens, numeric, mask)  # (B, 1 + W, H)
        return self.token_head(hidden[:, 1:])  # (B, W, V)


def _hide(net: MaskedEventNet, tokens: torch.Tensor, numeric: torch.Tensor,
          hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens and numeric channels with the ``hidden`` (B, W) positions masked."""
    masked_tokens = torch.where(hidden, net.encoder.mask_id, tokens)
    return masked_tokens, numeric.masked_fill(hidden[:, :, None], 0.0)


@register("transformer_mlm")
class TransformerMLMDetector(EncoderStateMixin, TorchDetector[TransformerMLMConfig],
                             SequenceDetector[TransformerMLMConfig]):
    """Unsupervised: masked-event surprise per session (higher = more anomalous).

    Learned: ``vocab_``, ``n_tokens_``, ``channel_names_``, ``centre_``/``scale_``, ``net_``,
    ``history_`` and ``unknown_floor_`` (the least surprise of an event type never seen in
    training; None when training held UNKNOWN).
    """

    config_class = TransformerMLMConfig
    description = "masked-event transformer"
    event_score_meaning = "surprise"
    tiny_config: ClassVar[dict[str, Any]] = {
        "hidden_size": 16, "n_layers": 1, "n_heads": 2, "intermediate_size": 32, "epochs": 2,
        "batch_size": 64, "quiet": True, "device": "cpu"}
    net_: MaskedEventNet
    unknown_floor_: float | None

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_") and hasattr(self, "vocab_")

    # -- TorchDetector hooks (labels are ignored: unsupervised) ------------------------------
    def _fit_inputs(self, data: EventSequences, y: np.ndarray | None) -> list[np.ndarray]:
        self._check_input(data)
        mask = np.asarray(data.mask, dtype=bool)
        if not mask.any():
            raise ModelError(
                "training sequences must contain at least one real event, got only padding. "
                "Check the sessions selected for training."
            )
        refuse_one_event_sessions(data, self.kind)
        vocab, self.n_tokens_ = self._learn_vocab(data)
        tokens = map_tokens(data, vocab, self.n_tokens_)
        refuse_one_event_type(tokens, mask, self.kind)
        self.vocab_ = trained_vocab(vocab, tokens, mask)  # types not in ``data`` -> UNKNOWN
        self.channel_names_ = tuple(data.channel_names)
        self.unknown_floor_ = None
        return [tokens, np.asarray(data.numeric), mask]

    def _fit_scaler(self, train_raw: list[np.ndarray]) -> None:
        numeric, mask = train_raw[1], train_raw[2]
        self.centre_, self.scale_ = fit_scaler(numeric[mask], self.config.scaling)

    def _training_arrays(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        cfg = self.config
        tokens, numeric, mask = raw
        prepared = prepare_arrays(tokens, numeric, mask, self.centre_, self.scale_, cfg.clip,
                                  cfg.max_len)
        keep = prepared.lengths > 0  # sessions without events teach nothing
        return [prepared.tokens[keep], prepared.numeric[keep], prepared.lengths[keep]]

    def _select_rows(self, train: list[np.ndarray], val: list[np.ndarray] | None
                     ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        return sample_rows(train, self.config.max_train_sessions, self.config.seed), val

    def _bucket_lengths(self, train: list[np.ndarray]) -> np.ndarray | None:
        return train[2]

    def _build_net(self) -> nn.Module:
        return MaskedEventNet(self.n_tokens_, len(self.channel_names_), self.config)

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        tok, num, lengths = batch
        width = int(lengths.max())
        tok, num = tok[:, :width], num[:, :width]
        real = torch.arange(width, device=tok.device)[None, :] < lengths[:, None]
        hidden = (torch.rand(real.shape, device=tok.device) < self.config.mask_rate) & real
        one = (torch.rand(len(lengths), device=tok.device) * lengths).long()
        hidden[torch.arange(len(lengths), device=tok.device), one] = True  # >= 1 per row
        masked_tok, masked_num = _hide(net, tok, num, hidden)  # type: ignore[arg-type]
        logits = net(masked_tok, masked_num, real)  # (B, W, V)
        return F.cross_entropy(logits[hidden].float(), tok[hidden])

    def _calibrate(self, data: EventSequences) -> None:
        tokens = map_tokens(data, self.vocab_, self.n_tokens_)
        if not (np.asarray(data.mask, dtype=bool) & (tokens == EventSequences.UNKNOWN)).any():
            latest = data.take(np.arange(max(len(data) - FLOOR_SAMPLE, 0), len(data)))
            self.unknown_floor_ = unknown_floor(self.score_events(latest))

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {**self._encoder_state(), "unknown_floor": self.unknown_floor_}, {}

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._set_encoder_state(state)
        floor = state.get("unknown_floor")
        self.unknown_floor_ = None if floor is None else float(floor)

    # -- scoring ----------------------------------------------------------------------------
    @torch.inference_mode()
    def score_events(self, data: EventSequences) -> np.ndarray:
        """float64 (n, L) surprise -log p(true event type) of each event when hidden (at
        least ``unknown_floor_`` for an event type never seen in training); NaN on padding."""
        tokens = self._tokens_for_score(data)
        prepared = prepare(data, tokens, self.centre_, self.scale_, self.config.clip,
                           self.config.max_len)
        unknown = (tokens == EventSequences.UNKNOWN) & np.asarray(data.mask, dtype=bool)
        device = self.device
        passes = self.config.score_passes
        aligned = np.full(prepared.tokens.shape, np.nan)
        for rows, width in batches_by_length(prepared.lengths, self.config.score_batch_size):
            tok = torch.from_numpy(prepared.tokens[rows, :width]).to(device)
            num = torch.from_numpy(prepared.numeric[rows, :width]).to(device)
            lengths = torch.from_numpy(prepared.lengths[rows]).to(device)
            positions = torch.arange(width, device=device)[None, :]
            real = positions < lengths[:, None]
            surprise = torch.zeros(real.shape, device=device)
            for step in range(min(passes, width)):
                hidden = real & (positions % passes == step)
                if not bool(hidden.any()):
                    continue
                with autocast(device):
                    logits = self.net_(*_hide(self.net_, tok, num, hidden), real)
                log_p = torch.log_softmax(logits.float(), dim=-1)
                true = -log_p.gather(2, tok[:, :, None]).squeeze(2)  # (B, W)
                surprise = torch.where(hidden, true, surprise)
            aligned[rows, :width] = surprise.to("cpu", torch.float64).numpy()
        return apply_unknown_floor(to_columns(prepared, aligned), unknown,
                                   getattr(self, "unknown_floor_", None))

    def score(self, data: EventSequences) -> np.ndarray:
        """float64 (n,) event surprises reduced by ``aggregation``; 0 for a session without
        events."""
        return aggregate_events(self.score_events(data), self.config.aggregation,
                                self.config.top_k)
