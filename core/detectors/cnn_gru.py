"""CNN + bidirectional GRU classifier over a session's events, trained on labels.

Each event is embedded (event-type token + projected numeric channels); 1-D convolutions pick
up local patterns (a burst of failed payments, add/remove loops), a bidirectional GRU reads the
convolved sequence both ways, and a fully connected head maps its two final states to the
probability that the session is anomalous (calibrated on the latest sessions).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from core.datasets import EventSequences
from core.detectors._encoder import (
    EncoderStateMixin,
    Prepared,
    batches_by_length,
    prepare,
    prepare_arrays,
)
from core.detectors._refusals import refuse_one_event_sessions
from core.detectors._scaling import SCALINGS, fit_scaler
from core.detectors._supervised import (
    SupervisedConfig,
    SupervisedMixin,
    binary_loss,
    check_labels,
    resolve_pos_weight,
)
from core.detectors._training import autocast
from core.detectors.base import SequenceDetector, map_tokens
from core.detectors.config import check_choice, check_float, check_int
from core.detectors.registry import register
from core.detectors.torch_detector import TorchDetector


@dataclasses.dataclass(frozen=True)
class CnnGruConfig(SupervisedConfig):
    """CNN + GRU settings (plus the supervised and torch training fields).

    Attributes:
        embed_dim: width of the event embedding.
        conv_channels, kernel_size, n_conv_layers: the convolution stack (odd kernel sizes
            keep each output aligned with its event).
        hidden_dim: GRU state width per direction.
        head_dim: width of the fully connected layer before the output.
        dropout: before the head while training.
        scaling, clip: numeric channels are standardised over real events and clipped.
        score_batch_size: sessions per scoring batch.
    """

    embed_dim: int = 16
    conv_channels: int = 32
    kernel_size: int = 3
    n_conv_layers: int = 2
    hidden_dim: int = 32
    head_dim: int = 32
    dropout: float = 0.1
    scaling: str = "robust"
    clip: float = 10.0
    score_batch_size: int = 1024
    epochs: int = 10
    # On the sample data batches of 256 left too few steps per epoch to learn the rare class;
    # 64 did better. At ~20k sessions early stopping ends the 2,000-step budget near 1,800
    # steps; a smaller budget was faster but lost much of the AP (benchmarks/supervised_fit.py;
    # figures in docs/BENCHMARKS.md, 'Measurements behind design choices').
    batch_size: int = 64
    learning_rate: float = 3e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("embed_dim", "conv_channels", "hidden_dim", "head_dim"):
            check_int(name, getattr(self, name), 1)
        check_int("kernel_size", self.kernel_size, 1, 31)
        if self.kernel_size % 2 == 0:
            check_choice("kernel_size", self.kernel_size, ("an odd number",))
        check_int("n_conv_layers", self.n_conv_layers, 1, 8)
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_choice("scaling", self.scaling, SCALINGS)
        check_float("clip", self.clip, 0.0, 1e6, low_open=True)
        check_int("score_batch_size", self.score_batch_size, 1)


class CnnGruNet(nn.Module):
    """(tokens, numeric, lengths) of left-aligned sessions -> (B,) logits."""

    def __init__(self, n_tokens: int, n_channels: int, cfg: CnnGruConfig) -> None:
        super().__init__()
        self.token_embed = nn.Embedding(n_tokens, cfg.embed_dim, padding_idx=0)
        self.numeric_embed = nn.Linear(n_channels, cfg.embed_dim) if n_channels else None
        convs: list[nn.Module] = []
        width = cfg.embed_dim
        for _ in range(cfg.n_conv_layers):
            convs.append(nn.Conv1d(width, cfg.conv_channels, cfg.kernel_size,
                                   padding=cfg.kernel_size // 2))
            width = cfg.conv_channels
        self.convs = nn.ModuleList(convs)
        self.gru = nn.GRU(width, cfg.hidden_dim, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(2 * cfg.hidden_dim,
                                                                     cfg.head_dim),
                                  nn.ReLU(inplace=True), nn.Linear(cfg.head_dim, 1))

    def forward(self, tokens: torch.Tensor, numeric: torch.Tensor, lengths: torch.Tensor
                ) -> torch.Tensor:
        real = (torch.arange(tokens.shape[1], device=tokens.device)[None, :]
                < lengths[:, None])[:, None, :]  # (B, 1, W)
        x = self.token_embed(tokens)  # (B, W, E)
        if self.numeric_embed is not None:
            x = x + self.numeric_embed(numeric.to(x.dtype))
        x = x.transpose(1, 2)  # (B, E, W): channels first for Conv1d
        for conv in self.convs:
            x = torch.relu(conv(x)) * real  # padding stays 0, so it never leaks back in
        packed = pack_padded_sequence(x.transpose(1, 2), lengths.clamp(min=1).cpu(),
                                      batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed)  # (2, B, H): final forward and backward states
        return self.head(torch.cat([last[0], last[1]], dim=1)).squeeze(-1)  # (B, 2H) -> (B,)


@register("cnn_gru")
class CnnGruDetector(  # type: ignore[misc]  # its fit takes labels, not validation=
        SupervisedMixin, EncoderStateMixin, TorchDetector[CnnGruConfig],
        SequenceDetector[CnnGruConfig]):
    """Supervised session probability from a CNN + bidirectional GRU over event sequences
    (``event_labels`` in fit are ignored: this detector scores sessions only).

    Learned: ``vocab_``, ``n_tokens_``, ``channel_names_``, ``centre_``/``scale_``, ``net_``,
    ``history_``, ``pos_weight_``, ``calibration_`` and ``validation_ap_``.
    """

    config_class = CnnGruConfig
    description = "cnn+gru"
    tiny_config: ClassVar[dict[str, Any]] = {
        "embed_dim": 8, "conv_channels": 8, "hidden_dim": 8, "head_dim": 8, "epochs": 2,
        "batch_size": 64, "quiet": True, "device": "cpu"}
    net_: CnnGruNet

    # -- TorchDetector hooks (split and calibration: SupervisedMixin) -----------------------
    def _fit_inputs(self, data: EventSequences, y: np.ndarray | None) -> list[np.ndarray]:
        self._check_input(data)
        labels = check_labels(y, len(data), self.kind)
        refuse_one_event_sessions(data, self.kind)
        self.vocab_, self.n_tokens_ = self._learn_vocab(data)
        self.channel_names_ = tuple(data.channel_names)
        return [map_tokens(data, self.vocab_, self.n_tokens_), np.asarray(data.numeric),
                np.asarray(data.mask, dtype=bool), labels]

    def _fit_scaler(self, train_raw: list[np.ndarray]) -> None:
        _, numeric, mask, labels = train_raw
        self.centre_, self.scale_ = fit_scaler(numeric[mask], self.config.scaling)
        self.pos_weight_ = resolve_pos_weight(labels, self.config.pos_weight)

    def _training_arrays(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        tokens, numeric, mask, labels = raw
        prepared = prepare_arrays(tokens, numeric, mask, self.centre_, self.scale_,
                                  self.config.clip)
        return [prepared.tokens, prepared.numeric, prepared.lengths, labels]

    def _bucket_lengths(self, train: list[np.ndarray]) -> np.ndarray | None:
        return train[2]

    def _build_net(self) -> nn.Module:
        return CnnGruNet(self.n_tokens_, len(self.channel_names_), self.config)

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        cfg = self.config
        tok, num, lengths, target = batch
        width = max(int(lengths.max()), 1)
        logits = net(tok[:, :width], num[:, :width], lengths)
        return binary_loss(logits, target, self.pos_weight_, cfg.loss, cfg.focal_gamma)

    def _calibrate_on(self, val: list[np.ndarray]) -> None:
        tokens, numeric, lengths, labels = val
        self._finish_supervised(self.config, self._logits(Prepared(tokens, numeric, lengths,
                                                                   None)),
                                labels, self.pos_weight_)

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {**self._encoder_state(), **self._supervised_state()}, {}

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._set_encoder_state(state)
        self._set_supervised_state(state)

    # -- scoring ----------------------------------------------------------------------------
    @torch.inference_mode()
    def _logits(self, prepared: Prepared) -> np.ndarray:
        device = self.device
        out = np.empty(len(prepared.lengths), dtype=np.float64)
        for rows, width in batches_by_length(prepared.lengths, self.config.score_batch_size):
            with autocast(device):
                logits = self.net_(
                    torch.from_numpy(prepared.tokens[rows, :width]).to(device),
                    torch.from_numpy(prepared.numeric[rows, :width]).to(device),
                    torch.from_numpy(prepared.lengths[rows]).to(device))
            out[rows] = logits.to("cpu", torch.float64).numpy()
        return out

    def score(self, data: EventSequences) -> np.ndarray:
        """float64 (n,) calibrated probability that each session is anomalous."""
        prepared = prepare(data, self._tokens_for_score(data), self.centre_, self.scale_,
                           self.config.clip)
        return self.calibration_.apply(self._logits(prepared))

    @property
    def score_events(self) -> Any:
        """Not available: this detector scores sessions only (``event_score_meaning`` is
        None, so scoring writes no event scores); an AttributeError if called."""
        raise AttributeError("cnn_gru scores whole sessions; it has no per-event scores")
