"""Dense variational autoencoder on session features (``vae``).

A Gaussian encoder q(z|x) = N(mu(x), diag exp(logvar(x))) and a Gaussian decoder
p(x|z) = N(mean(z), diag exp(logvar_x(z))) over the standardised, clipped features, with a
standard normal prior. Training minimises the negative ELBO

    E_q[-log p(x|z)] + beta_t * KL(q(z|x) || N(0, I))

(one reparameterised sample a row) where beta_t rises linearly from 0 to ``beta`` over the
first ``kl_warmup`` of the step budget (KL annealing: the decoder learns to use z before the
KL pulls q to the prior); early stopping uses the validation loss at the full ``beta``. The
history records the reconstruction term and the (unweighted) KL per check:
``history_.to_dict()["components"]`` = {"recon": [...], "kl": [...]}.

Scores (``score``, higher = more anomalous), a ``score`` choice:

* ``elbo``: the negative ELBO, sum over features of -log p(x_f | z) + beta * KL, with z the
  posterior mean (``elbo_samples`` = 0) or averaged over that many samples;
* ``reconstruction_probability`` (An & Cho 2015): -log of the mean over ``score_samples``
  draws z_l ~ q(z|x) of p(x | z_l), the density under the decoder's own variance.

Sampled scores draw the same ``score_samples`` standard-normal vectors (seeded by ``seed``) for
every row, so a row's score depends on the row alone: the same in any batch, after a reload,
and smooth enough for the permutation SHAP path.

Default ``elbo`` with ``elbo_samples`` = 0 (decode the posterior mean), chosen by two
experiments (issue #25). On the ten ADBench "Classical" sets (raw features, capped at 20,000
rows, ADBench's stratified 70/30 split with seed 42, training part with its anomalies; 3 seeds,
default config, one torch thread; script in docs/BENCHMARKS.md), mean AP over the sets:

    score                                      mean AP   scoring, 1M x 89, 2 cores
    elbo, posterior mean (default)             0.335     2.42M rows/s
    reconstruction_probability, 8 draws        0.307     0.39M rows/s
    reconstruction_probability, 2 draws        0.301
    reconstruction_probability, 1 draw         0.290

The posterior-mean ELBO led on 5 of the 10 sets (by 0.06-0.16 AP on mammography, smtp and
thyroid) and trailed by at most 0.03; it is deterministic and a sixth of the reconstruction
probability's cost (one decoder pass, not one per draw), which the 2M rows/s scoring target
needs. An earlier small experiment (2,000 synthetic rows of 8 correlated features, 3 seeds)
had favoured the reconstruction probability (AP 0.995 vs 0.971): on outside data it did not
hold. Both stay available (``score``), and ``reconstruction_probability()`` and
``negative_elbo()`` give either whatever the config says.

Scoring runs through ``core.detectors._vae_scoring`` (fused layers, in-place likelihood, the
lanes of ``core.detectors._lanes``); its values equal ``DenseVAENet.terms``' arithmetic to
float32 rounding.

With the base class's once-a-pass checks and patience 10, runs on a synthetic set stopped
after 30-66 steps, before the KL warm-up ended, at ROC-AUC ~0.80; one seed with checks every
20 steps trained 2,760 steps and reached 1.0: hence ``eval_every=25``.

>>> import numpy as np
>>> from core.datasets import FeatureMatrix
>>> rng = np.random.default_rng(0)
>>> data = FeatureMatrix(np.arange(200).astype(object),
...                      rng.normal(size=(200, 4)).astype(np.float32), ("a", "b", "c", "d"))
>>> VAEDetector(VAEConfig(hidden_dims=(8,), latent_dim=2, epochs=2, quiet=True)
...             ).fit(data).score(data).shape
(200,)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from core.datasets import FeatureMatrix
from core.detectors._dense_config import DenseConfig
from core.detectors._lanes import run_blocks
from core.detectors._training import trimmed_mean
from core.detectors._vae_scoring import BLOCK_ROWS, VAEScoringPlan, block_scores, scoring_plan
from core.detectors.autoencoder import ScaledFeaturesMixin
from core.detectors.base import FeatureDetector, raise_not_finite
from core.detectors.config import check_choice, check_float, check_int
from core.detectors.registry import register
from core.detectors.torch_detector import LossOutput, TorchDetector, linear_warmup

VAE_SCORES = ("elbo", "reconstruction_probability")
LOG_2PI = math.log(2.0 * math.pi)
ENCODER_LOGVAR_BOUND = 8.0
DECODER_LOGVAR_BOUND = 6.0
"""Log-variances are soft-bounded to (-bound, bound) (bound * tanh(raw / bound)), so a
feature that is constant in training cannot drive the density to infinity."""


@dataclasses.dataclass(frozen=True)
class VAEConfig(DenseConfig):
    """Dense VAE settings (``DenseConfig``: layers, scaling, clip, plus the shared training
    fields; dropout 0 by default, as the KL already regularises).

    Attributes:
        beta: weight of the KL term (beta-VAE); 1 is the ELBO.
        kl_warmup: share of the step budget over which the KL weight rises from 0 to beta.
        score: "elbo" or "reconstruction_probability" (see the module docstring).
        elbo_samples: z samples averaged by the ELBO score (0: decode the posterior mean).
        score_samples: z samples of the reconstruction probability.
    """

    beta: float = 1.0
    kl_warmup: float = 0.25
    score: str = "elbo"
    elbo_samples: int = 0
    score_samples: int = 8
    max_steps: int = 3000
    epochs: int | None = None
    # a check every 25 steps, not once a pass: on 2,000 sessions a pass is 2 steps, and 10
    # checks without a better (noisy, sampled) validation loss stopped runs after 30-66 steps,
    # before the KL warm-up ended, at a third of the AP of a run that trained on
    eval_every: int = 25
    patience: int = 10
    # on an unlabelled window (which may hold anomalies) the VAE trained 3,000 steps learns
    # them: on ADBench's small sets its AP fell with the passes (thyroid 0.57 at 100 passes,
    # 0.25 at 3,000 steps); clean windows still train to the step budget (issue #25)
    unlabelled_epochs: int | None = 100
    batch_size: int = 1024
    learning_rate: float = 3e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("beta", self.beta, 0.0, 1e6)
        check_float("kl_warmup", self.kl_warmup, 0.0, 1.0)
        check_choice("score", self.score, VAE_SCORES)
        check_int("elbo_samples", self.elbo_samples, 0, 4096)
        check_int("score_samples", self.score_samples, 1, 4096)


def _bounded(raw: torch.Tensor, bound: float) -> torch.Tensor:
    return bound * torch.tanh(raw / bound)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise -log N(x; mean, exp(logvar))."""
    return 0.5 * (LOG_2PI + logvar + (x - mean).square() * torch.exp(-logvar))


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B,) KL(N(mu, diag exp(logvar)) || N(0, I)) of (B, d) parameters."""
    return 0.5 * (mu.square() + torch.exp(logvar) - 1.0 - logvar).sum(dim=-1)


class DenseVAENet(nn.Module):
    """(B, f) standardised features -> posterior (mu, logvar) and decoder (mean, logvar)."""

    def __init__(self, n_features: int, hidden_dims: tuple[int, ...], latent_dim: int,
                 dropout: float) -> None:
        super().__init__()

        def trunk(widths: list[int]) -> nn.Sequential:
            layers: list[nn.Module] = []
            for a, b in zip(widths[:-1], widths[1:], strict=True):
                layers += [nn.Linear(a, b), nn.ReLU()]
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
            return nn.Sequential(*layers)

        self.encoder = trunk([n_features, *hidden_dims])
        self.mu = nn.Linear(hidden_dims[-1], latent_dim)
        self.logvar = nn.Linear(hidden_dims[-1], latent_dim)
        self.decoder = trunk([latent_dim, *reversed(hidden_dims)])
        self.mean = nn.Linear(hidden_dims[0], n_features)
        self.out_logvar = nn.Linear(hidden_dims[0], n_features)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mu(h), _bounded(self.logvar(h), ENCODER_LOGVAR_BOUND)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.decoder(z)
        return self.mean(h), _bounded(self.out_logvar(h), DECODER_LOGVAR_BOUND)

    def terms(self, x: torch.Tensor, eps: torch.Tensor | None) -> tuple[
            torch.Tensor, torch.Tensor]:
        """(B, S, f) per-feature -log p(x|z_s) and (B,) KL, for z_s = mu + sigma * eps[s]
        (eps (S, d) shared by every row, or (B, S, d)); eps None: z = mu, S = 1."""
        mu, logvar = self.encode(x)  # (B, d)
        if eps is None:
            z = mu[:, None, :]
        else:
            z = mu[:, None, :] + torch.exp(0.5 * logvar)[:, None, :] * eps  # (B, S, d)
        mean, out_logvar = self.decode(z)  # (B, S, f)
        recon = gaussian_nll(x[:, None, :].float(), mean.float(), out_logvar.float())
        return recon, kl_to_standard_normal(mu.float(), logvar.float())


@register("vae")
class VAEDetector(ScaledFeaturesMixin, TorchDetector[VAEConfig], FeatureDetector[VAEConfig]):
    """Negative ELBO (or reconstruction probability) of a dense VAE on the session features.

    Learned: ``feature_names_``, ``centre_``/``scale_``, ``net_`` and ``history_`` (with the
    recon and KL components per check).
    """

    config_class = VAEConfig
    description = "vae"
    requires_labels: ClassVar[bool] = False
    outputs_probability: ClassVar[bool] = False
    event_score_meaning: ClassVar[str | None] = None
    has_attention: ClassVar[bool] = False
    combines_members: ClassVar[bool] = False
    explain_preference: ClassVar[int] = 0
    # its decoder's variance per feature absorbs novelty that training shows moving: held
    # out, markov300's AP fell 0.990 -> 0.160 (docs/FEATURES.md, "Novelty against training")
    novelty_held_out: ClassVar[bool] = False
    tiny_config: ClassVar[dict[str, Any]] = {
        "hidden_dims": (16,), "latent_dim": 2, "epochs": 2, "batch_size": 64, "quiet": True,
        "device": "cpu"}
    net_: DenseVAENet

    # -- TorchDetector hooks (inputs, scaler and state: ScaledFeaturesMixin) ----------------
    def _build_net(self) -> nn.Module:
        cfg = self.config
        return DenseVAENet(len(self.feature_names_), cfg.hidden_dims, cfg.latent_dim,
                           cfg.dropout)

    def kl_weight(self, step: int, budget: int) -> float:
        """The KL weight at optimiser step ``step`` of ``budget`` (linear warm-up to beta)."""
        return self.config.beta * linear_warmup(step, budget, self.config.kl_warmup)

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> LossOutput:
        (x,) = batch
        eps = torch.randn(len(x), 1, self.config.latent_dim, device=x.device)
        recon, kl = net.terms(x, eps)  # type: ignore[operator]
        recon = recon.sum(dim=(1, 2))  # (B,)
        beta = (self.kl_weight(self.train_step_, self.step_budget_) if net.training
                else self.config.beta)
        per_row = recon + beta * kl
        return trimmed_mean(per_row, self.config.trim if net.training else 0.0), {
            "recon": recon, "kl": kl}

    # -- scoring ----------------------------------------------------------------------------
    def _eps(self, samples: int, device: torch.device) -> torch.Tensor:
        rng = np.random.default_rng(self.config.seed)
        draws = rng.standard_normal((samples, self.config.latent_dim)).astype(np.float32)
        return torch.from_numpy(draws).to(device)

    def scoring_plan(self) -> VAEScoringPlan:
        """The fitted net rearranged for scoring (``core.detectors._vae_scoring``)."""
        return scoring_plan(self.net_.eval(), ENCODER_LOGVAR_BOUND, DECODER_LOGVAR_BOUND)

    def _scores(self, data: FeatureMatrix, method: str) -> np.ndarray:
        cfg = self.config
        values = self._values_for_score(data, check_finite=False)  # checked per block
        device = self.device
        samples = cfg.elbo_samples if method == "elbo" else cfg.score_samples
        eps = self._eps(samples, device) if samples else None
        plan = self.scoring_plan()
        centre = torch.as_tensor(self.centre_, dtype=torch.float32, device=device)
        inv_scale = 1.0 / torch.as_tensor(self.scale_, dtype=torch.float32, device=device)
        out = np.empty(len(values))

        def score_block(start: int, stop: int) -> None:
            x = torch.from_numpy(values[start:stop]).to(device)  # (B, f) raw
            # a sum is finite unless a value is not (or it overflows: then look closer)
            if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
                raise_not_finite(values[start:stop], self.feature_names_)
            z = (x - centre).mul_(inv_scale).clamp_(-cfg.clip, cfg.clip)
            out[start:stop] = block_scores(plan, z, eps, method, cfg.beta).to(
                "cpu", torch.float64).numpy()

        # draws multiply the decoder's rows: smaller blocks keep its output in the cache
        run_blocks(len(values), max(256, BLOCK_ROWS // max(samples, 1)), device, score_block)
        return out

    def score(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) negative ELBO or negative log reconstruction probability
        (``config.score``)."""
        return self._scores(data, self.config.score)

    def negative_elbo(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) negative ELBO, whatever ``config.score`` is."""
        return self._scores(data, "elbo")

    def reconstruction_probability(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) -log reconstruction probability, whatever ``config.score`` is."""
        return self._scores(data, "reconstruction_probability")
