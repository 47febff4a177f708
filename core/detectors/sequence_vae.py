"""Variational autoencoder over a session's events (``sequence_vae``).

A GRU encoder reads the event embeddings (event-type token + numeric channels) and maps its
last state to a latent Gaussian q(z|x) = N(mu, diag exp(logvar)); an autoregressive GRU
decoder starts from z and, given the previous event (teacher forcing), predicts each event's
type (softmax) and numeric channels (unit-variance Gaussian on the standardised values).

Each event's term is its share of the negative ELBO:

    -log p(type_t | z, events < t) + numeric_weight * 0.5 * sum_c (x_tc - mean_tc)^2
        + beta * KL(q(z|x) || N(0, I)) / length

so the terms of a session sum to its negative ELBO (up to the constant of the numeric
density; ``numeric_weight`` tempers that likelihood). ``score_events`` returns these terms;
an event type never seen in training (UNKNOWN) scores at least twice the worst event of the
training sessions (``unknown_floor_``, as the sequence autoencoder), so it is maximally
surprising rather than whatever its untrained embedding gives. The session score reduces the
event scores by ``aggregation`` (``core.detectors._aggregate``; default "mean+topk", as the
sequence autoencoder). Scoring decodes the posterior mean (``score_samples`` = 0) or averages
the reconstruction terms over that many z draws (the same seeded draws for every session).

Training minimises the summed terms over a batch divided by its number of events, with the
KL weight rising linearly from 0 to ``beta`` over the first ``kl_warmup`` of the step budget;
the history holds the per-session reconstruction and KL per check
(``history_.to_dict()["components"]``).
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
    aggregate_events,
    apply_unknown_floor,
    check_aggregation,
    trained_vocab,
)
from core.detectors._refusals import refuse_one_event_sessions
from core.detectors._scaling import SCALINGS, fit_scaler
from core.detectors._training import TorchTrainingConfig
from core.detectors.base import SequenceDetector
from core.detectors.config import check_choice, check_float, check_int
from core.detectors.registry import register
from core.detectors.sequence_autoencoder import EventVocabStateMixin, left_align
from core.detectors.torch_detector import LossOutput, TorchDetector, linear_warmup
from core.detectors.vae import ENCODER_LOGVAR_BOUND, kl_to_standard_normal
from core.errors import ModelError


@dataclasses.dataclass(frozen=True)
class SequenceVAEConfig(TorchTrainingConfig):
    """Sequence VAE settings (plus the shared training fields).

    Attributes:
        embed_dim: width of the event embedding (token + projected numeric channels).
        hidden_dim: GRU state width of encoder and decoder.
        latent_dim: width of z.
        beta: weight of the KL term; 1 is the ELBO.
        kl_warmup: share of the step budget over which the KL weight rises from 0 to beta.
        numeric_weight: weight of the numeric channels' squared error.
        score_samples: z draws averaged when scoring (0: decode the posterior mean).
        aggregation, top_k: how event scores become the session score (as the sequence
            autoencoder).
        scaling, clip: standardisation of the numeric channels over real events.
        score_batch_size: sessions per scoring batch.
    """

    embed_dim: int = 16
    hidden_dim: int = 32
    latent_dim: int = 16
    beta: float = 1.0
    kl_warmup: float = 0.25
    numeric_weight: float = 1.0
    score_samples: int = 0
    aggregation: str = "mean+topk"
    top_k: int = 3
    scaling: str = "robust"
    clip: float = 10.0
    score_batch_size: int = 1024
    max_steps: int = 1500
    epochs: int | None = None
    # checks every 25 steps (not once a pass of a few steps), so the sampled, noisy
    # validation loss cannot end training before the KL warm-up is over
    eval_every: int = 25
    patience: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("embed_dim", self.embed_dim, 1)
        check_int("hidden_dim", self.hidden_dim, 1)
        check_int("latent_dim", self.latent_dim, 1)
        check_float("beta", self.beta, 0.0, 1e6)
        check_float("kl_warmup", self.kl_warmup, 0.0, 1.0)
        check_float("numeric_weight", self.numeric_weight, 0.0, 1e6)
        check_int("score_samples", self.score_samples, 0, 4096)
        check_aggregation(self.aggregation, self.top_k)
        check_choice("scaling", self.scaling, SCALINGS)
        check_float("clip", self.clip, 0.0, 1e6, low_open=True)
        check_int("score_batch_size", self.score_batch_size, 1)


class SequenceVAENet(nn.Module):
    """(tokens, numeric, lengths, eps) -> per-event logits, numeric means and q(z|x)."""

    def __init__(self, n_tokens: int, n_channels: int, embed_dim: int, hidden_dim: int,
                 latent_dim: int) -> None:
        super().__init__()
        self.token_embed = nn.Embedding(n_tokens, embed_dim, padding_idx=0)
        self.numeric_embed = nn.Linear(n_channels, embed_dim) if n_channels else None
        self.start = nn.Parameter(torch.zeros(embed_dim))
        self.encoder = nn.GRU(embed_dim, hidden_dim)  # sequence-first (L, B, ·)
        self.mu = nn.Linear(hidden_dim, latent_dim)
        self.logvar = nn.Linear(hidden_dim, latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden_dim)
        self.decoder = nn.GRU(embed_dim, hidden_dim)
        self.token_head = nn.Linear(hidden_dim, n_tokens)
        self.numeric_head = nn.Linear(hidden_dim, n_channels) if n_channels else None

    def forward(self, tokens: torch.Tensor, numeric: torch.Tensor, lengths: torch.Tensor,
                eps: torch.Tensor | None) -> tuple[
                    torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """tokens (L, B) left-aligned, numeric (L, B, C), lengths (B,) >= 1, eps (B, d) or
        None (z = mu). Returns logits (L, B, V), numeric means (L, B, C) or None, mu, logvar."""
        x = self.token_embed(tokens)
        if self.numeric_embed is not None:
            x = x + self.numeric_embed(numeric)  # (L, B, E)
        states, _ = self.encoder(x)  # (L, B, H)
        last = states.gather(0, (lengths - 1).view(1, -1, 1).expand(1, -1, states.shape[2]))[0]
        mu = self.mu(last)
        logvar = ENCODER_LOGVAR_BOUND * torch.tanh(self.logvar(last) / ENCODER_LOGVAR_BOUND)
        z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps  # (B, d)
        h0 = torch.tanh(self.from_latent(z))[None]  # (1, B, H)
        start = self.start.view(1, 1, -1).expand(1, x.shape[1], -1)
        decoded, _ = self.decoder(torch.cat([start, x[:-1]], dim=0), h0)  # (L, B, H)
        numeric_out = self.numeric_head(decoded) if self.numeric_head is not None else None
        return self.token_head(decoded), numeric_out, mu, logvar


def event_terms(net: SequenceVAENet, tokens: torch.Tensor, numeric: torch.Tensor,
                lengths: torch.Tensor, numeric_weight: float, beta: float,
                eps: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L') per-event reconstruction terms (0 past a session's length; L' the longest
    session) and (B,) KL, for left-aligned sessions with lengths >= 1. The terms include
    each event's share ``beta * KL / length``; eps (B, d) or None as ``forward``."""
    width = int(lengths.max())
    tokens_t = tokens[:, :width].T  # (L', B)
    numeric_t = numeric[:, :width].transpose(0, 1)  # (L', B, C)
    logits, numeric_out, mu, logvar = net(tokens_t, numeric_t, lengths, eps)
    terms = F.cross_entropy(logits.float().flatten(0, 1), tokens_t.flatten(),
                            reduction="none").view(tokens_t.shape)  # (L', B)
    if numeric_out is not None and numeric_weight > 0:
        terms = terms + numeric_weight * 0.5 * (numeric_out.float() - numeric_t).square().sum(2)
    kl = kl_to_standard_normal(mu.float(), logvar.float())  # (B,)
    real = torch.arange(width, device=terms.device)[:, None] < lengths[None, :]  # (L', B)
    terms = torch.where(real, terms + (beta * kl / lengths)[None, :], 0.0)
    return terms.T, kl


@register("sequence_vae")
class SequenceVAEDetector(EventVocabStateMixin, TorchDetector[SequenceVAEConfig],
                          SequenceDetector[SequenceVAEConfig]):
    """Per-event shares of the negative ELBO of a recurrent VAE over event sequences.

    Learned: ``vocab_``, ``n_tokens_``, ``channel_names_``, ``centre_``/``scale_``, ``net_``,
    ``history_`` (recon and KL per check) and ``unknown_floor_``.
    """

    config_class = SequenceVAEConfig
    description = "sequence vae"
    requires_labels: ClassVar[bool] = False
    outputs_probability: ClassVar[bool] = False
    event_score_meaning: ClassVar[str | None] = "reconstruction_error"
    has_attention: ClassVar[bool] = False
    combines_members: ClassVar[bool] = False
    explain_preference: ClassVar[int] = 0
    tiny_config: ClassVar[dict[str, Any]] = {
        "embed_dim": 8, "hidden_dim": 16, "latent_dim": 4, "epochs": 2, "batch_size": 64,
        "quiet": True, "device": "cpu"}
    centre_: np.ndarray
    scale_: np.ndarray
    net_: SequenceVAENet
    unknown_floor_: float | None

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_") and hasattr(self, "vocab_")

    # -- TorchDetector hooks ----------------------------------------------------------------
    def _fit_inputs(self, data: EventSequences, y: np.ndarray | None) -> list[np.ndarray]:
        self._check_input(data)
        vocab, n_tokens = self._learn_vocab(data)
        mask = np.asarray(data.mask, dtype=bool)
        if not mask.any():
            raise ModelError(
                "training sequences must contain at least one real event, got only padding. "
                "Check the sessions selected for training."
            )
        refuse_one_event_sessions(data, self.kind)
        tokens = np.asarray(data.tokens, dtype=np.int64)
        if tokens.min() < 0:
            raise ModelError(f"tokens must be >= 0, got {tokens.min()}. Rebuild the sequences.")
        self.vocab_ = trained_vocab(vocab, tokens, mask)
        self.n_tokens_ = n_tokens
        self.channel_names_ = tuple(data.channel_names)
        self.unknown_floor_ = None
        return [tokens, np.asarray(data.numeric, dtype=np.float32), mask]

    def _fit_scaler(self, train_raw: list[np.ndarray]) -> None:
        numeric, mask = train_raw[1], train_raw[2]
        self.centre_, self.scale_ = fit_scaler(numeric[mask], self.config.scaling)

    def _prepare(self, tokens: np.ndarray, numeric: np.ndarray, mask: np.ndarray) -> tuple[
            np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Standardise, clip and left-align; (tokens, numeric, lengths, order)."""
        z = (numeric - self.centre_.astype(np.float32)) / self.scale_.astype(np.float32)
        z = np.clip(z, -self.config.clip, self.config.clip)
        z[~mask] = 0.0
        if not np.isfinite(z).all():
            raise ModelError(
                "numeric channels must be finite on real events, got NaN. Impute missing "
                "amounts when building the sequences."
            )
        return left_align(np.where(mask, tokens, EventSequences.PAD), z.astype(np.float32),
                          mask)

    def _training_arrays(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        tok, num, lengths, _ = self._prepare(*raw)
        keep = lengths > 0  # sessions without events teach nothing
        return [tok[keep], num[keep], lengths[keep]]

    def _bucket_lengths(self, train: list[np.ndarray]) -> np.ndarray | None:
        return train[2]

    def _build_net(self) -> nn.Module:
        cfg = self.config
        return SequenceVAENet(self.n_tokens_, len(self.channel_names_), cfg.embed_dim,
                              cfg.hidden_dim, cfg.latent_dim)

    def kl_weight(self, step: int, budget: int) -> float:
        """The KL weight at optimiser step ``step`` of ``budget`` (linear warm-up to beta)."""
        return self.config.beta * linear_warmup(step, budget, self.config.kl_warmup)

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> LossOutput:
        tokens, numeric, lengths = batch
        beta = (self.kl_weight(self.train_step_, self.step_budget_) if net.training
                else self.config.beta)
        eps = torch.randn(len(tokens), self.config.latent_dim, device=tokens.device)
        terms, kl = event_terms(net, tokens, numeric, lengths,  # type: ignore[arg-type]
                                self.config.numeric_weight, beta, eps)
        recon = terms.sum(dim=1) - beta * kl  # (B,) the reconstruction part alone
        return terms.sum() / lengths.sum(), {"recon": recon, "kl": kl}

    # -- scoring ----------------------------------------------------------------------------
    @torch.inference_mode()
    def event_terms(self, data: EventSequences) -> tuple[np.ndarray, np.ndarray]:
        """float64 (n, L) per-event terms (NaN where padded; no unknown floor) and (n,) KL
        (0 for a session without events): a row's terms sum to its negative ELBO."""
        cfg = self.config
        tokens = self._tokens_for_score(data)
        mask = np.asarray(data.mask, dtype=bool)
        tok, num, lengths, order = self._prepare(tokens, np.asarray(data.numeric,
                                                                    dtype=np.float32), mask)
        n, width = tok.shape
        aligned = np.full((n, width), np.nan)
        kls = np.zeros(n)
        device = self.device
        draws = None
        if cfg.score_samples:
            rng = np.random.default_rng(cfg.seed)
            draws = torch.from_numpy(rng.standard_normal(
                (cfg.score_samples, cfg.latent_dim)).astype(np.float32)).to(device)
        by_length = np.argsort(lengths, kind="stable")
        by_length = by_length[lengths[by_length] > 0]
        for start in range(0, len(by_length), cfg.score_batch_size):
            rows = by_length[start:start + cfg.score_batch_size]
            top = int(lengths[rows[-1]])
            args = (torch.from_numpy(tok[rows, :top]).to(device),
                    torch.from_numpy(num[rows, :top]).to(device),
                    torch.from_numpy(lengths[rows]).to(device), cfg.numeric_weight, cfg.beta)
            if draws is None:
                terms, kl = event_terms(self.net_, *args, None)
            else:  # the mean over draws of the reconstruction; the KL does not depend on z
                runs = [event_terms(self.net_, *args, e.expand(len(rows), -1)) for e in draws]
                terms = torch.stack([t for t, _ in runs]).mean(dim=0)
                kl = runs[0][1]
            block = terms.to("cpu", torch.float64).numpy()
            block[np.arange(top)[None, :] >= lengths[rows][:, None]] = np.nan
            aligned[rows, :top] = block
            kls[rows] = kl.to("cpu", torch.float64).numpy()
        if order is not None:
            out = np.full((n, width), np.nan)
            np.put_along_axis(out, order, aligned, axis=1)
            aligned = out
        return aligned, kls

    def score_events(self, data: EventSequences) -> np.ndarray:
        """float64 (n, L) per-event share of the negative ELBO (at least ``unknown_floor_``
        for an event type never seen in training), NaN where padded."""
        terms, _ = self.event_terms(data)
        unknown = (self._tokens_for_score(data) == EventSequences.UNKNOWN) & np.asarray(
            data.mask, dtype=bool)
        return apply_unknown_floor(terms, unknown, self.unknown_floor_)

    def negative_elbo(self, data: EventSequences) -> np.ndarray:
        """float64 (n,) the sessions' negative ELBO (0 for a session without events)."""
        terms, _ = self.event_terms(data)
        return np.nansum(terms, axis=1)

    def score(self, data: EventSequences) -> np.ndarray:
        """float64 (n,) session score: event scores reduced by ``aggregation``."""
        return self.reduce_events(self.score_events(data))

    def reduce_events(self, events: np.ndarray) -> np.ndarray:
        """Session scores from the (n, L) output of ``score_events``."""
        return aggregate_events(events, self.config.aggregation, self.config.top_k)
