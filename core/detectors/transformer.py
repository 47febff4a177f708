"""Supervised BERT-style transformer over a session's events, with attention for explanation.

The event encoder (``core.detectors._encoder``: event-type tokens + projected numeric channels,
a [CLS] session token in front) feeds two heads: the session head reads [CLS] and gives the
probability that the session is anomalous; the event head gives a probability per event. The
event head learns from event labels where they are known (masked loss) and, everywhere, from
the session label through multiple-instance learning: the most suspicious event of a session
should be as suspicious as the session (``mil_weight``), so it also learns where sessions
carry no event labels. Both heads are calibrated on the validation part (the latest
sessions). ``init_from`` starts the encoder from a fitted ``transformer_mlm``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from core.datasets import EventSequences
from core.detectors._encoder import (
    EncoderConfig,
    EncoderStateMixin,
    EventEncoder,
    Prepared,
    batches_by_length,
    column_of,
    prepare,
    prepare_arrays,
    to_columns,
)
from core.detectors._refusals import refuse_one_event_sessions
from core.detectors._scaling import fit_scaler
from core.detectors._supervised import (
    Calibration,
    SupervisedConfig,
    SupervisedMixin,
    average_precision,
    binary_loss,
    check_event_labels,
    check_labels,
    fit_calibration,
    resolve_pos_weight,
)
from core.detectors._training import autocast
from core.detectors.base import SequenceDetector, load_detector, map_tokens
from core.detectors.config import check_float
from core.detectors.registry import register
from core.detectors.torch_detector import TorchDetector
from core.detectors.transformer_mlm import TransformerMLMDetector
from core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TransformerConfig(EncoderConfig, SupervisedConfig):
    """Transformer classifier settings (encoder, supervised and torch training fields).

    Attributes:
        event_weight: weight of the event-label loss next to the session loss.
        mil_weight: weight of the multiple-instance loss (max event logit vs. session label).
        init_from: folder of a saved ``transformer_mlm`` detector (a model folder's
            ``detector/``) to start the encoder from; None trains from scratch.
    """

    event_weight: float = 1.0
    mil_weight: float = 0.5
    init_from: str | None = None
    epochs: int = 10
    # On the sample data batches of 128 at lr 1e-3 gave too few steps per epoch; 64 at 2e-3
    # learnt far better. At ~20k sessions the budget is the 2,000-step max_steps (7.8 passes);
    # half the steps saved time but lost AP (benchmarks/supervised_fit.py; figures in
    # docs/BENCHMARKS.md, 'Measurements behind design choices').
    batch_size: int = 64
    learning_rate: float = 2e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("event_weight", self.event_weight, 0.0, 1e3)
        check_float("mil_weight", self.mil_weight, 0.0, 1e3)
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise ConfigError(
                f"init_from must be a folder path or None, got {self.init_from!r}. Pass the "
                "detector/ folder of a transformer_mlm model."
            )


class TransformerNet(nn.Module):
    """Encoder + session head (on [CLS]) + event head (on each event)."""

    def __init__(self, n_tokens: int, n_channels: int, cfg: EncoderConfig) -> None:
        super().__init__()
        width = cfg.hidden_size
        self.encoder = EventEncoder(n_tokens, n_channels, cfg)
        self.session_head = nn.Sequential(nn.Linear(width, width), nn.Tanh(),
                                          nn.Dropout(cfg.dropout), nn.Linear(width, 1))
        self.event_head = nn.Linear(width, 1)

    def forward(self, tokens: torch.Tensor, numeric: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> session logits (B,) and event logits (B, W)."""
        hidden, _ = self.encoder(tokens, numeric, mask)  # (B, 1 + W, H)
        session = self.session_head(hidden[:, 0]).squeeze(-1)  # (B, H) -> (B,)
        events = self.event_head(hidden[:, 1:]).squeeze(-1)  # (B, W, H) -> (B, W)
        return session, events

    def session_logits(self, tokens: torch.Tensor, numeric: torch.Tensor, mask: torch.Tensor
                       ) -> torch.Tensor:
        """Session logits (B,) alone: ``forward(...)[0]`` through the encoder's [CLS]-only
        last layer (about a quarter less work; what scoring needs)."""
        return self.session_head(self.encoder.session_hidden(tokens, numeric, mask)).squeeze(-1)


def _aligned_event_labels(labels: np.ndarray, prepared: Prepared) -> np.ndarray:
    """(n, W) event labels moved like the events (left-aligned); -1 on padding."""
    if prepared.order is not None:
        labels = np.take_along_axis(labels, prepared.order, axis=1)
    width = labels.shape[1]
    return np.where(np.arange(width)[None, :] < prepared.lengths[:, None], labels, -1.0
                    ).astype(np.float32)


@register("transformer")
class TransformerDetector(  # type: ignore[misc]  # its fit takes labels, not validation=
        SupervisedMixin, EncoderStateMixin, TorchDetector[TransformerConfig],
        SequenceDetector[TransformerConfig]):
    """Supervised session and event probabilities from a small BERT over event sequences.

    Learned: ``vocab_``, ``n_tokens_``, ``channel_names_``, ``centre_``/``scale_``, ``net_``,
    ``history_``, ``pos_weight_``, ``calibration_``, ``validation_ap_`` and, for the event head,
    ``event_pos_weight_``, ``event_calibration_`` and ``event_validation_ap_``. With
    ``init_from``, vocabulary, scaler and initial encoder weights come from that model.
    """

    config_class = TransformerConfig
    description = "transformer"
    event_score_meaning = "event_head"
    has_attention = True
    explain_preference = 2
    tiny_config: ClassVar[dict[str, Any]] = {
        "hidden_size": 16, "n_layers": 1, "n_heads": 2, "intermediate_size": 32, "epochs": 2,
        "batch_size": 64, "quiet": True, "device": "cpu"}
    net_: TransformerNet
    event_pos_weight_: float
    event_calibration_: Calibration
    event_validation_ap_: float | None
    _init_encoder: dict[str, torch.Tensor] | None = None
    """While fitting with ``init_from``: the pre-trained encoder weights ``_build_net`` loads."""

    # -- TorchDetector hooks (split and calibration: SupervisedMixin) -----------------------
    def _fit_inputs(self, data: EventSequences, y: np.ndarray | None) -> list[np.ndarray]:
        self._check_input(data)
        labels = check_labels(y, len(data), self.kind)
        refuse_one_event_sessions(data, self.kind)
        events = check_event_labels(self._event_labels,
                                    tuple(data.tokens.shape))  # type: ignore[arg-type]
        base = self._base_model(data)
        if base is not None:
            self.vocab_, self.n_tokens_ = base.vocab_, base.n_tokens_
            self.centre_, self.scale_ = base.centre_, base.scale_
            self._init_encoder = base.net_.encoder.state_dict()
        else:
            self.vocab_, self.n_tokens_ = self._learn_vocab(data)
        self.channel_names_ = tuple(data.channel_names)
        return [map_tokens(data, self.vocab_, self.n_tokens_), np.asarray(data.numeric),
                np.asarray(data.mask, dtype=bool), events, labels]

    def _fit_scaler(self, train_raw: list[np.ndarray]) -> None:
        cfg = self.config
        _, numeric, mask, events, labels = train_raw
        if self._init_encoder is None:
            self.centre_, self.scale_ = fit_scaler(numeric[mask], cfg.scaling)
        self.pos_weight_ = resolve_pos_weight(labels, cfg.pos_weight)
        # the event labels of real events (padding's are never trained on)
        self.event_pos_weight_ = resolve_pos_weight(np.where(mask, events, -1.0),
                                                    cfg.pos_weight)

    def _training_arrays(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        cfg = self.config
        tokens, numeric, mask, events, labels = raw
        prepared = prepare_arrays(tokens, numeric, mask, self.centre_, self.scale_, cfg.clip,
                                  cfg.max_len)
        return [prepared.tokens, prepared.numeric, prepared.lengths, labels,
                _aligned_event_labels(events, prepared)]

    def _bucket_lengths(self, train: list[np.ndarray]) -> np.ndarray | None:
        return train[2]

    def _build_net(self) -> nn.Module:
        net = TransformerNet(self.n_tokens_, len(self.channel_names_), self.config)
        if self._init_encoder is not None:
            net.encoder.load_state_dict(self._init_encoder)
        return net

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        cfg = self.config
        tok, num, lengths, target, event_target = batch
        width = max(int(lengths.max()), 1)
        real = torch.arange(width, device=tok.device)[None, :] < lengths[:, None]
        session, per_event = net(tok[:, :width], num[:, :width], real)
        loss = binary_loss(session, target, self.pos_weight_, cfg.loss, cfg.focal_gamma)
        if cfg.event_weight > 0:
            loss = loss + cfg.event_weight * binary_loss(
                per_event, event_target[:, :width], self.event_pos_weight_, cfg.loss,
                cfg.focal_gamma)
        if cfg.mil_weight > 0:
            top = per_event.float().masked_fill(~real, -1e4).amax(dim=1)  # (B,)
            mil_target = torch.where(lengths > 0, target, -1.0)
            loss = loss + cfg.mil_weight * binary_loss(top, mil_target, self.pos_weight_,
                                                       cfg.loss, cfg.focal_gamma)
        return loss

    def _calibrate_on(self, val: list[np.ndarray]) -> None:
        cfg = self.config
        self._init_encoder = None
        self._eager: EventEncoder | None = None
        tokens, numeric, lengths, labels, events = val
        session_logits, event_logits = self._logits(Prepared(tokens, numeric, lengths, None))
        assert event_logits is not None  # events=True
        self._finish_supervised(cfg, session_logits, labels, self.pos_weight_)
        known = events >= 0
        self.event_calibration_ = fit_calibration(event_logits[known], events[known],
                                                  cfg.calibration, self.event_pos_weight_)
        self.event_validation_ap_ = average_precision(event_logits[known], events[known])

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {**self._encoder_state(), **self._supervised_state(),
                "event_pos_weight": self.event_pos_weight_,
                "event_calibration": self.event_calibration_.to_dict(),
                "event_validation_ap": self.event_validation_ap_}, {}

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._set_encoder_state(state)
        self._eager = None
        self._set_supervised_state(state)
        self.event_pos_weight_ = float(state.get("event_pos_weight", 1.0))
        self.event_calibration_ = Calibration.from_dict(state.get("event_calibration"))
        ap = state.get("event_validation_ap")
        self.event_validation_ap_ = None if ap is None else float(ap)

    def _base_model(self, data: EventSequences) -> TransformerMLMDetector | None:
        """The ``init_from`` transformer_mlm, checked against this config and ``data``."""
        cfg = self.config
        if cfg.init_from is None:
            return None
        folder = Path(cfg.init_from)
        base = load_detector(folder)
        if not isinstance(base, TransformerMLMDetector):
            raise ConfigError(
                f"init_from must be the detector/ folder of a transformer_mlm model, got a "
                f"{base.kind!r} model in {folder}. Train one with `--detector transformer_mlm`."
            )
        if base.config.architecture() != cfg.architecture():
            raise ConfigError(
                "init_from must have this transformer's hidden_size, n_layers, n_heads, "
                f"intermediate_size and max_len {cfg.architecture()}, got "
                f"{base.config.architecture()}. Use the same encoder settings for both."
            )
        if base.channel_names_ != tuple(data.channel_names):
            raise ConfigError(
                f"init_from must have been trained on the channels {list(data.channel_names)}, "
                f"got {list(base.channel_names_)}. Pre-train on sequences of this version."
            )
        return base

    def _prepared(self, data: EventSequences) -> Prepared:
        return prepare(data, self._tokens_for_score(data), self.centre_, self.scale_,
                       self.config.clip, self.config.max_len)

    @torch.inference_mode()
    def _logits(self, prepared: Prepared, *, events: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Session logits (n,) and, with ``events``, left-aligned event logits (n, W) (NaN on
        padding); without, the session head alone runs (``session_logits``: the scoring path)."""
        device = self.device
        n, width_all = prepared.tokens.shape
        session = np.empty(n, dtype=np.float64)
        per_event = np.full((n, max(width_all, 1)), np.nan) if events else None
        for rows, width in batches_by_length(prepared.lengths, self.config.score_batch_size):
            lengths = torch.from_numpy(prepared.lengths[rows]).to(device)
            real = torch.arange(width, device=device)[None, :] < lengths[:, None]
            tokens = torch.from_numpy(prepared.tokens[rows, :width]).to(device)
            numeric = torch.from_numpy(prepared.numeric[rows, :width]).to(device)
            with autocast(device):
                if per_event is None:
                    s, e = self.net_.session_logits(tokens, numeric, real), None
                else:
                    s, e = self.net_(tokens, numeric, real)
            session[rows] = s.to("cpu", torch.float64).numpy()
            if per_event is not None and e is not None:
                per_event[rows, :width] = e.masked_fill(~real, float("nan")).to(
                    "cpu", torch.float64).numpy()
        return session, None if per_event is None else per_event[:, :width_all]

    def score(self, data: EventSequences) -> np.ndarray:
        """float64 (n,) calibrated probability that each session is anomalous."""
        logits, _ = self._logits(self._prepared(data), events=False)  # checks fitted first
        return self.calibration_.apply(logits)

    def score_events(self, data: EventSequences) -> np.ndarray:
        """float64 (n, L) calibrated event-head probability per event, NaN on padding."""
        prepared = self._prepared(data)
        _, events = self._logits(prepared)
        assert events is not None  # events=True
        return to_columns(prepared, self.event_calibration_.apply(events))

    @torch.inference_mode()
    def attentions(self, data: EventSequences, batch_size: int = 256) -> np.ndarray:
        """float32 (n, n_layers, n_heads, L + 1, L + 1) attention weights (eager path).

        Index 0 is the session ([CLS]) token and index i + 1 is column i of ``data.tokens``;
        each real query's row sums to 1 over the real keys; rows and columns of padded
        positions are 0.
        """
        prepared = self._prepared(data)
        if getattr(self, "_eager", None) is None:
            self._eager = self.net_.encoder.eager_view()
        encoder = self._eager
        device = self.device
        cfg = self.config
        n, width_all = prepared.tokens.shape
        out = np.zeros((n, cfg.n_layers, cfg.n_heads, width_all + 1, width_all + 1),
                       dtype=np.float32)
        for rows, width in batches_by_length(prepared.lengths, batch_size):
            lengths = torch.from_numpy(prepared.lengths[rows]).to(device)
            real = torch.arange(width, device=device)[None, :] < lengths[:, None]
            _, layers = encoder(  # type: ignore[misc]
                torch.from_numpy(prepared.tokens[rows, :width]).to(device),
                torch.from_numpy(prepared.numeric[rows, :width]).to(device), real,
                output_attentions=True)
            block = torch.stack(layers, dim=1).to("cpu", torch.float32).numpy()  # (b, l, h, ., .)
            for i, row in enumerate(rows):
                length = int(prepared.lengths[row])
                cols = np.r_[0, 1 + column_of(prepared, int(row), length)]
                out[row][:, :, cols[:, None], cols[None, :]] = \
                    block[i, :, :, :length + 1, :length + 1]
        return out
