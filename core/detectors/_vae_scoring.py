"""The dense VAE's scores in few passes over memory (``VAEDetector.score``'s arithmetic).

``DenseVAENet.terms`` (used by training) builds its (B, S, f) terms from many temporaries; at
scoring time each of them is a pass over memory, and the VAE scored ~30k rows/s on two cores.
Here, for each block of rows:

* standardisation and clipping are one ``addcmul``/``clamp`` in torch;
* every dense layer is one ``_linear`` call (oneDNN's fused bias + ReLU on the CPU); the mu and
  logvar heads are one matrix (their rows stacked), as are the decoder's mean and logvar heads;
* the Gaussian negative log-likelihood summed over features is computed in place:
  ``sum_f logvar`` from the bounded ``tanh`` before it is exponentiated, then the weighted
  squared error, with no (B, S, f) temporaries beyond the head's own output;
* blocks are small (``BLOCK_ROWS``) so the head's output stays in the cache between passes.

The values equal ``DenseVAENet.terms``' to float32 rounding (a test compares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from core.detectors.autoencoder import _linear

LOG_2PI = math.log(2.0 * math.pi)
BLOCK_ROWS = 8192
"""Rows per block without draws (divided by the draws with them), as ``_lanes``' blocks."""


@dataclass(frozen=True)
class VAEScoringPlan:
    """The eval-mode weights of a ``DenseVAENet``, rearranged for ``vae_scores``."""

    encoder: list[tuple[torch.Tensor, torch.Tensor, bool]]  # (weight, bias, ReLU after)
    heads_in: tuple[torch.Tensor, torch.Tensor]  # mu and logvar heads stacked: (2d, h)
    decoder: list[tuple[torch.Tensor, torch.Tensor, bool]]
    heads_out: tuple[torch.Tensor, torch.Tensor]  # mean and logvar heads stacked: (2f, h)
    latent_dim: int
    n_features: int
    encoder_bound: float
    decoder_bound: float


def _dense_steps(trunk: nn.Sequential) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """(weight, bias, ReLU after) of each Linear of a trunk; dropout (eval: identity) skipped."""
    layers = [m for m in trunk if not isinstance(m, nn.Dropout)]
    return [(m.weight.detach(), m.bias.detach(),
             i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU))
            for i, m in enumerate(layers) if isinstance(m, nn.Linear)]


def scoring_plan(net: nn.Module, encoder_bound: float, decoder_bound: float) -> VAEScoringPlan:
    """``net`` (a ``DenseVAENet``) as a ``VAEScoringPlan``."""
    with torch.no_grad():
        heads_in = (torch.cat([net.mu.weight, net.logvar.weight]).contiguous(),
                    torch.cat([net.mu.bias, net.logvar.bias]).contiguous())
        heads_out = (torch.cat([net.mean.weight, net.out_logvar.weight]).contiguous(),
                     torch.cat([net.mean.bias, net.out_logvar.bias]).contiguous())
    return VAEScoringPlan(_dense_steps(net.encoder), heads_in, _dense_steps(net.decoder),
                          heads_out, net.mu.out_features, net.mean.out_features,
                          encoder_bound, decoder_bound)


def _trunk(h: torch.Tensor, steps: list[tuple[torch.Tensor, torch.Tensor, bool]]
           ) -> torch.Tensor:
    for weight, bias, relu in steps:
        h = _linear(h, weight, bias, relu)
    return h


def _bounded_(raw: torch.Tensor, bound: float) -> torch.Tensor:
    """bound * tanh(raw / bound), in place."""
    return raw.mul_(1.0 / bound).tanh_().mul_(bound)


def block_scores(plan: VAEScoringPlan, x: torch.Tensor, eps: torch.Tensor | None,
                 method: str, beta: float) -> torch.Tensor:
    """(B,) float32 scores of standardised rows ``x`` (B, f).

    eps (S, d) shared draws, or None to decode the posterior mean (S = 1).
    method "elbo": mean over draws of -log p(x|z) plus beta * KL;
    "reconstruction_probability": -log of the mean over draws of p(x|z).
    """
    d, f = plan.latent_dim, plan.n_features
    heads = _linear(_trunk(x, plan.encoder), *plan.heads_in, False)  # (B, 2d)
    mu, logvar = heads[:, :d], _bounded_(heads[:, d:], plan.encoder_bound)
    if eps is None:
        z, draws = mu, 1
    else:
        draws = eps.shape[0]
        z = torch.addcmul(mu[:, None, :], logvar.mul(0.5).exp_()[:, None, :], eps)
        z = z.reshape(-1, d)  # (B * S, d)
    out = _linear(_trunk(z, plan.decoder), *plan.heads_out, False)  # (B * S, 2f)
    # logvar = bound * tanh(raw / bound): its sum from the tanh, exp(-logvar) in place
    mean, bounded = out[:, :f], out[:, f:].mul_(1.0 / plan.decoder_bound).tanh_()
    sum_logvar = bounded.sum(dim=1).mul_(plan.decoder_bound)  # (B * S,)
    weight = bounded.mul_(-plan.decoder_bound).exp_()
    target = x if draws == 1 else x.repeat_interleave(draws, dim=0)
    error = mean.sub_(target).square_().mul_(weight).sum(dim=1)  # (B * S,)
    nll = (error.add_(sum_logvar).add_(f * LOG_2PI).mul_(0.5)).view(-1, draws)  # (B, S)
    if method == "elbo":
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)  # (B,)
        return nll.mean(dim=1) + beta * kl
    return math.log(draws) - torch.logsumexp(nll.neg_(), dim=1)


