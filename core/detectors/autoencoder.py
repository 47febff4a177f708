"""Dense autoencoder on session features; anomaly score = mean squared reconstruction error,
each feature's error divided by its typical (median) error on the training rows.

>>> import numpy as np
>>> from core.datasets import FeatureMatrix
>>> rng = np.random.default_rng(0)
>>> data = FeatureMatrix(np.arange(200).astype(object),
...                      rng.normal(size=(200, 4)).astype(np.float32), ("a", "b", "c", "d"))
>>> detector = AutoencoderDetector(AutoencoderConfig(hidden_dims=(8,), latent_dim=2, epochs=2,
...                                                  quiet=True)).fit(data)
>>> detector.score(data).shape
(200,)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from core.datasets import FeatureMatrix
from core.detectors._dense_config import DenseConfig
from core.detectors._lanes import run_blocks
from core.detectors._scaling import fit_scaler, scaler_from_state, scaler_to_state
from core.detectors._training import trimmed_mean
from core.detectors.base import FeatureDetector, raise_not_finite
from core.detectors.config import check_choice
from core.detectors.registry import register
from core.detectors.torch_detector import TorchDetector
from core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig(DenseConfig):
    """Dense autoencoder settings (``DenseConfig``: layers, scaling, clip, plus the shared
    training fields). ``score_batch_size`` rows are scored at a time, on the CPU at most
    8,192 in parallel lanes (see core.detectors._lanes)."""

    # hidden_dims (48, 16) and latent_dim 8 (DenseConfig's): a higher mean AP over seeds on
    # the sample than 64-32/8, with fewer multiply-adds a row (docs/BENCHMARKS.md,
    # 'Measurements behind design choices').
    # dropout 0.2 keeps a network trained to convergence from learning the identity: it
    # raised the median ROC-AUC over ADBench's ten sets and the AP on the sample
    dropout: float = 0.2
    score_batch_size: int = 65_536
    # at most 20 passes over the training rows, and at most 3,000 steps (3 passes over 1M
    # sessions): trained on to convergence, the network learns to reconstruct the rare rows
    # too; 20 passes raised the median AP over ADBench's ten sets from 0.31 to 0.55
    # (docs/FEATURES.md, "The autoencoder's passes"). Early stopping (10 checks without a
    # better validation loss) may end sooner
    max_steps: int = 3000
    epochs: int | None = 20
    patience: int = 10
    batch_size: int = 1024
    learning_rate: float = 3e-3
    # "median": each feature's squared error is divided by its median on the fitted rows
    # (floored at ERROR_FLOOR), so features the network cannot model do not drown the ones it
    # reconstructs well; "none": the plain mean squared error. The median beat "none" on 9 of
    # 15 benchmark sets (docs/FEATURES.md, "The autoencoder's error scale")
    error_scale: str = "median"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("error_scale", self.error_scale, ERROR_SCALES)


ERROR_SCALES = ("none", "median")
ERROR_FLOOR = 1e-2
"""A feature's error scale is at least this share of the mean squared error over every
feature and fitted row: a feature the network reconstructs exactly in training (a column
constant in training, a count almost always 0) counts at most 100 times an average one.
1e-3 lost the sample data's AP (0.35 -> 0.22), where such counts move for normal sessions
too; 1e-1 gave up most of the gain elsewhere (docs/FEATURES.md)."""
ERROR_SCALE_ROWS = 50_000
"""At most this many fitted rows (evenly spaced in time order) give the medians."""


class ScaledFeaturesMixin:
    """TorchDetector hooks of a net on standardised, clipped session features (the dense
    autoencoder, VAE and MLP): learns ``feature_names_`` and ``centre_``/``scale_``
    (``config.scaling`` over the training rows), saved as config.json's "feature_names" and
    "scaler". The first raw array is the feature values; later ones (labels) pass through.
    """

    config: Any
    feature_names_: tuple[str, ...]
    centre_: np.ndarray
    scale_: np.ndarray

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_") and hasattr(self, "feature_names_")

    def _fit_inputs(self, data: FeatureMatrix, y: np.ndarray | None) -> list[np.ndarray]:
        values = self._values_for_fit(data)  # type: ignore[attr-defined]
        self.feature_names_ = tuple(data.names)
        return [values]

    def _validation_inputs(self, validation: FeatureMatrix) -> list[np.ndarray]:
        values = self._values_for_fit(validation, min_rows=1)  # type: ignore[attr-defined]
        if tuple(validation.names) != self.feature_names_:
            raise ConfigError(
                "validation features must match the training features, got different "
                "names. Build both with the same feature version."
            )
        return [values]

    def _fit_scaler(self, train_raw: list[np.ndarray]) -> None:
        self.centre_, self.scale_ = fit_scaler(train_raw[0], self.config.scaling,
                                               self.feature_names_)

    def _standardise(self, values: np.ndarray) -> np.ndarray:
        z = (values - self.centre_.astype(np.float32)) / self.scale_.astype(np.float32)
        return np.clip(z, -self.config.clip, self.config.clip).astype(np.float32)

    def _training_arrays(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        return [self._standardise(raw[0]), *raw[1:]]

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"feature_names": list(self.feature_names_),
                "scaler": scaler_to_state(self.centre_, self.scale_)}, {}

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        names = tuple(str(n) for n in state["feature_names"])
        self.centre_, self.scale_ = scaler_from_state(state["scaler"], len(names))
        self.feature_names_ = names


@functools.cache
def _mkldnn_linear() -> Any:
    """oneDNN's fused linear(+ReLU) on the CPU, or None where this torch build lacks it.

    Probed on first use, not at import: the benchmark runner forks after importing and must
    not have run a torch operator before.
    """
    try:
        op = torch.ops.mkldnn._linear_pointwise
        probe = torch.ones(2, 3)
        if torch.equal(op(probe, torch.ones(4, 3), torch.ones(4), "relu", [], ""),
                       torch.full((2, 4), 4.0)):
            return op
    except (AttributeError, RuntimeError):
        pass
    return None


def _linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, relu: bool) -> torch.Tensor:
    """(B, in) -> (B, out): h @ weight.T + bias, then ReLU when ``relu``; inference only.

    On the CPU one oneDNN call (bias and ReLU applied in the matmul's output loop: less time
    than matmul, add, ReLU); elsewhere matmul then in-place add
    (``addmm`` broadcasts the bias into its output with a slow strided copy).
    """
    fused = _mkldnn_linear() if h.device.type == "cpu" and h.dtype == torch.float32 else None
    if fused is not None:
        return fused(h, weight, bias, "relu" if relu else "none", [], "")
    out = torch.mm(h, weight.t()).add_(bias)
    return out.relu_() if relu else out


@dataclasses.dataclass(frozen=True)
class ScoringPlan:
    """A dense autoencoder rearranged for scoring in few passes over memory.

    Clipping z = (x - centre) / scale to [-clip, clip] is clipping x to [low, high]; the
    standardisation is folded into the first layer (W / scale, b + W shift) and the shift
    into the last bias, so z is never materialised: error = (reconstruction - shift) -
    clipped * inv_scale, one fused multiply-add. Each layer is one ``_linear`` call.
    """

    low: torch.Tensor  # (f,) centre - clip * scale
    high: torch.Tensor  # (f,) centre + clip * scale
    inv_scale: torch.Tensor  # (f,)
    steps: list[tuple[torch.Tensor, torch.Tensor, bool]]  # (weight, bias, ReLU after)
    error_root: torch.Tensor | None = None  # (f,) sqrt of the error weights; None: all 1


class DenseAutoencoderNet(nn.Module):
    """Standardise -> encoder MLP -> latent -> decoder MLP. Pure tensors in, tensors out."""

    centre: torch.Tensor
    scale: torch.Tensor
    inv_scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, n_features: int, hidden_dims: tuple[int, ...], latent_dim: int,
                 dropout: float, clip: float) -> None:
        super().__init__()
        def stack(widths: list[int], last: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for a, b in zip(widths[:-1], widths[1:], strict=True):
                layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
                if dropout > 0:  # no identity modules on the scoring path when unused
                    layers.append(nn.Dropout(dropout))
            return nn.Sequential(*layers, nn.Linear(widths[-1], last))

        self.encoder = stack([n_features, *hidden_dims], latent_dim)
        self.decoder = stack([latent_dim, *reversed(hidden_dims)], n_features)
        self.clip = clip
        # Scaler statistics live in config.json, not in the weights (persistent=False).
        self.register_buffer("centre", torch.zeros(n_features), persistent=False)
        self.register_buffer("scale", torch.ones(n_features), persistent=False)
        self.register_buffer("inv_scale", torch.ones(n_features), persistent=False)
        self.register_buffer("shift", torch.zeros(n_features), persistent=False)
        # sqrt of each feature's error weight (1: the plain mean squared error)
        self.register_buffer("error_root", torch.ones(n_features), persistent=False)

    def set_error_weights(self, weights: np.ndarray) -> None:
        """Each feature's squared error is multiplied by ``weights`` (f,) when scoring."""
        device = next(self.parameters()).device
        self.error_root = torch.as_tensor(np.sqrt(weights), dtype=torch.float32, device=device)

    def set_scaler(self, centre: np.ndarray, scale: np.ndarray) -> None:
        """Standardise as (x - centre) / scale, kept as one multiply-add: x * inv + shift."""
        device = next(self.parameters()).device
        self.centre = torch.as_tensor(centre, dtype=torch.float32, device=device)
        self.scale = torch.as_tensor(scale, dtype=torch.float32, device=device)
        self.inv_scale = 1.0 / self.scale
        self.shift = -self.centre * self.inv_scale

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """(B, f) raw -> (B, f) standardised and clipped (a new tensor)."""
        return torch.addcmul(self.shift, x, self.inv_scale).clamp_(-self.clip, self.clip)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, f) standardised -> (B, f) reconstruction."""
        return self.decoder(self.encoder(z))  # (B, f) -> (B, latent) -> (B, f)

    def scoring_plan(self) -> ScoringPlan:
        """The eval-mode network rearranged for scoring (see ``ScoringPlan``); dropout is
        skipped. Kept while no parameter or buffer changes (a live service scores a few rows
        at a time: rebuilding it took longer than scoring them)."""
        key = tuple((t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers()))
        cached = getattr(self, "_plan_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        plan = self._build_scoring_plan()
        self._plan_cache = (key, plan)
        return plan

    @torch.no_grad()
    def _build_scoring_plan(self) -> ScoringPlan:
        layers = [*self.encoder, *self.decoder]
        steps = [[m.weight, m.bias, i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)]
                 for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
        weight, bias, _ = steps[0]  # W (z) + b with z = x * inv + shift
        steps[0][:2] = (weight * self.inv_scale).contiguous(), bias + weight @ self.shift
        steps[-1][1] = steps[-1][1] - self.shift  # the reconstruction, minus shift
        weighted = bool((self.error_root != 1.0).any())
        return ScoringPlan(self.centre - self.clip * self.scale,
                           self.centre + self.clip * self.scale, self.inv_scale,
                           [(w, b, bool(r)) for w, b, r in steps],
                           self.error_root if weighted else None)

    def squared_errors(
        self, x: torch.Tensor, *, per_feature: bool, plan: ScoringPlan | None = None
    ) -> torch.Tensor:
        """(B, f) raw -> (B,) mean or (B, f) per-feature squared reconstruction error.

        The arithmetic of ``standardise`` then ``forward`` in eval mode, in fewer passes over
        memory (``plan`` is ``scoring_plan()``, built once per scoring call).
        """
        plan = plan or self.scoring_plan()
        clipped = torch.clamp(x, plan.low, plan.high)  # (B, f), raw units
        h = clipped
        for weight, bias, relu in plan.steps:
            h = _linear(h, weight, bias, relu)  # (B, out)
        h = h.addcmul_(clipped, plan.inv_scale, value=-1.0)  # reconstruction - z
        if plan.error_root is not None:
            h = h.mul_(plan.error_root)
        if per_feature:
            return h.square_()
        return torch.linalg.vector_norm(h, dim=1).square_().div_(h.shape[1])  # (B,)


@register("autoencoder")
class AutoencoderDetector(ScaledFeaturesMixin, TorchDetector[AutoencoderConfig],
                          FeatureDetector[AutoencoderConfig]):
    """Reconstruction-error detector on the session feature matrix.

    Learned: ``feature_names_``, ``centre_``/``scale_`` (standardisation), ``net_`` and
    ``history_`` (losses at each validation check, steps and passes run).
    """

    config_class = AutoencoderConfig
    description = "autoencoder"
    explain_preference = 1
    tiny_config: ClassVar[dict[str, Any]] = {
        "hidden_dims": (16,), "latent_dim": 4, "epochs": 2, "batch_size": 64, "quiet": True,
        "device": "cpu"}
    net_: DenseAutoencoderNet

    # -- TorchDetector hooks (inputs, scaler and state: ScaledFeaturesMixin) ----------------
    def _build_net(self) -> nn.Module:
        cfg = self.config
        net = DenseAutoencoderNet(len(self.feature_names_), cfg.hidden_dims, cfg.latent_dim,
                                  cfg.dropout, cfg.clip)
        net.set_scaler(self.centre_, self.scale_)  # scoring buffers; training feeds z
        weights = getattr(self, "error_weights_", None)
        if weights is not None:
            net.set_error_weights(weights)
        return net

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        (z,) = batch
        per_row = ((net(z).float() - z) ** 2).mean(dim=1)
        return trimmed_mean(per_row, self.config.trim if net.training else 0.0)

    def _calibrate(self, data: FeatureMatrix) -> None:
        """With ``error_scale`` "median": weight each feature's squared error by the inverse
        of its median on the fitted rows (training and validation), floored."""
        self.error_weights_ = np.ones(len(self.feature_names_))
        self.net_.set_error_weights(self.error_weights_)
        if self.config.error_scale == "none":
            return
        if len(data) > ERROR_SCALE_ROWS:
            data = data.take(np.linspace(0, len(data) - 1, ERROR_SCALE_ROWS).astype(np.int64))
        errors = self._errors(data, per_feature=True)
        scale = np.median(errors, axis=0)
        floor = max(ERROR_FLOOR * float(errors.mean()), 1e-12)
        self.error_weights_ = 1.0 / np.maximum(scale, floor)
        self.net_.set_error_weights(self.error_weights_)

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._extra_state()
        weights = getattr(self, "error_weights_", None)
        if weights is not None and np.any(weights != 1.0):
            arrays = {**arrays, "error_weights": np.asarray(weights, np.float64)}
        return state, arrays

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore_extra(state, arrays)
        if "error_weights" in arrays:
            self.error_weights_ = np.asarray(arrays["error_weights"], np.float64)
            return
        # saved unweighted (before error_scale existed, or with "none"): it scores as saved
        self.error_weights_ = np.ones(len(self.feature_names_))
        self.config = dataclasses.replace(self.config, error_scale="none")

    # -- scoring ----------------------------------------------------------------------------
    def _errors(self, data: FeatureMatrix, per_feature: bool) -> np.ndarray:
        values = self._values_for_score(data, check_finite=False)  # checked per block
        net = self.net_.eval()
        device = next(net.parameters()).device
        out = np.empty((len(values), values.shape[1]) if per_feature else len(values))
        plan = net.scoring_plan()

        def score_block(start: int, stop: int) -> None:
            x = torch.from_numpy(values[start:stop]).to(device)  # (B, f)
            # a sum is finite unless a value is not (or it overflows: then look closer)
            if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
                raise_not_finite(values[start:stop], self.feature_names_)
            part = net.squared_errors(x, per_feature=per_feature, plan=plan)  # (B, f) | (B,)
            out[start:stop] = part.cpu().numpy()  # float32 -> float64 in the copy

        run_blocks(len(values), self.config.score_batch_size, device, score_block)
        return out

    def score(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) mean squared reconstruction error of the standardised features, each
        feature's weighted by ``error_weights_`` (see ``AutoencoderConfig.error_scale``)."""
        return self._errors(data, per_feature=False)

    def feature_errors(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n, f) weighted squared reconstruction error per feature (columns in
        ``feature_names_`` order); its row mean is ``score``."""
        return self._errors(data, per_feature=True)
