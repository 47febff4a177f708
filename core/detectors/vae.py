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

Default ``reconstruction_probability``: better on every seed of a small experiment (3 seeds,
CPU, default config but ``max_steps=400, eval_every=20``). Training: 2,000 rows of
tests/core/detectors/conftest.py's ``make_features`` (8 features mixed from 2 factors plus
noise); test: 500 normal rows, 25 rows shifted 3 std on one random feature and 25
correlation breaks (features 0 and 1 drawn independently of the other six):

    score                        ROC-AUC       AP            AP, breaks vs normal only
    elbo (posterior mean)        0.992 ± 0.005  0.971 ± 0.012  0.915
    reconstruction_probability   0.998 ± 0.002  0.995 ± 0.006  0.986

Both use the decoder's learned variance; the reconstruction probability also averages the
density over several codes (a log-mean-exp) where the ELBO decodes one and adds a KL term that
barely moves between rows. Which of these makes the difference was not isolated.
With the base class's once-a-pass checks and patience 10, runs on a first variant of this set
(6 std on two features, all columns permuted) stopped after 30-66 steps at ROC-AUC ~0.80 for
both scores; one seed with checks every 20 steps trained 2,760 steps and reached 1.0 for
both: hence ``eval_every=25``.

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
    score: str = "reconstruction_probability"
    elbo_samples: int = 0
    score_samples: int = 8
    max_steps: int = 3000
    epochs: int | None = None
    # a check every 25 steps, not once a pass: on 2,000 sessions a pass is 2 steps, and 10
    # checks without a better (noisy, sampled) validation loss stopped runs after 30-66 steps,
    # before the KL warm-up ended, at a third of the AP of a run that trained on
    eval_every: int = 25
    patience: int = 10
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
        return (recon + beta * kl).mean(), {"recon": recon, "kl": kl}

    # -- scoring ----------------------------------------------------------------------------
    def _eps(self, samples: int, device: torch.device) -> torch.Tensor:
        rng = np.random.default_rng(self.config.seed)
        draws = rng.standard_normal((samples, self.config.latent_dim)).astype(np.float32)
        return torch.from_numpy(draws).to(device)

    @torch.inference_mode()
    def _scores(self, data: FeatureMatrix, method: str) -> np.ndarray:
        cfg = self.config
        values = self._values_for_score(data, check_finite=False)
        if not np.isfinite(values).all():
            raise_not_finite(values, self.feature_names_)
        net = self.net_.eval()
        device = self.device
        if method == "elbo":
            eps = self._eps(cfg.elbo_samples, device) if cfg.elbo_samples else None
        else:
            eps = self._eps(cfg.score_samples, device)
        out = np.empty(len(values))
        for start in range(0, len(values), cfg.score_batch_size):
            x = torch.from_numpy(self._standardise(values[start:start + cfg.score_batch_size]))
            recon, kl = net.terms(x.to(device), eps)  # (B, S, f), (B,)
            if method == "elbo":
                score = recon.sum(dim=2).mean(dim=1) + cfg.beta * kl
            else:  # -log mean_s p(x | z_s)
                log_p = -recon.sum(dim=2)  # (B, S)
                score = math.log(log_p.shape[1]) - torch.logsumexp(log_p, dim=1)
            out[start:start + len(x)] = score.to("cpu", torch.float64).numpy()
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
