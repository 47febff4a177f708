"""Dense autoencoder on session features; anomaly score = mean squared reconstruction error.

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
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from core.datasets import FeatureMatrix
from core.detectors._scaling import SCALINGS, fit_scaler, scaler_from_state, scaler_to_state
from core.detectors._training import (
    Progress,
    TorchTrainingConfig,
    TrainingHistory,
    load_arrays_into,
    resolve_device,
    split_by_time,
    state_to_arrays,
    train_model,
)
from core.detectors.base import FeatureDetector
from core.detectors.config import check_choice, check_float, check_int
from core.detectors.registry import register
from core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig(TorchTrainingConfig):
    """Dense autoencoder settings (plus the shared training fields).

    Attributes:
        hidden_dims: widths of the encoder layers; the decoder mirrors them.
        latent_dim: bottleneck width (smaller than the number of features).
        dropout: dropout after each hidden layer while training.
        scaling: "robust" (median / IQR), "standard" (mean / std) or "mad" (median / MAD).
        clip: standardised inputs are clipped to [-clip, clip] so wild values keep scores
            finite and do not dominate training.
        score_batch_size: rows per scoring batch.
    """

    hidden_dims: tuple[int, ...] = (64, 32)
    latent_dim: int = 8
    dropout: float = 0.0
    scaling: str = "robust"
    clip: float = 10.0
    score_batch_size: int = 65_536
    epochs: int = 10
    batch_size: int = 1024
    learning_rate: float = 3e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.hidden_dims, tuple | list) or not self.hidden_dims:
            raise ConfigError(
                f"hidden_dims must be a non-empty tuple of positive integers, got "
                f"{self.hidden_dims!r}. Pass e.g. (64, 32)."
            )
        object.__setattr__(self, "hidden_dims", tuple(self.hidden_dims))
        for width in self.hidden_dims:
            check_int("each of hidden_dims", width, 1)
        check_int("latent_dim", self.latent_dim, 1)
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_choice("scaling", self.scaling, SCALINGS)
        check_float("clip", self.clip, 0.0, 1e6, low_open=True)
        check_int("score_batch_size", self.score_batch_size, 1)


class DenseAutoencoderNet(nn.Module):
    """Standardise -> encoder MLP -> latent -> decoder MLP. Pure tensors in, tensors out."""

    centre: torch.Tensor
    scale: torch.Tensor

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

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """(B, f) raw -> (B, f) standardised and clipped."""
        return ((x - self.centre) / self.scale).clamp_(-self.clip, self.clip)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, f) standardised -> (B, f) reconstruction."""
        return self.decoder(self.encoder(z))  # (B, f) -> (B, latent) -> (B, f)


@register("autoencoder")
class AutoencoderDetector(FeatureDetector[AutoencoderConfig]):
    """Reconstruction-error detector on the session feature matrix.

    Learned: ``feature_names_``, ``centre_``/``scale_`` (standardisation), ``net_`` and
    ``history_`` (per-epoch losses).
    """

    config_class = AutoencoderConfig
    centre_: np.ndarray
    scale_: np.ndarray
    net_: DenseAutoencoderNet
    history_: TrainingHistory

    def fit(
        self, data: FeatureMatrix, y: np.ndarray | None = None, *,
        validation: FeatureMatrix | None = None, progress: Progress | None = None,
    ) -> Self:
        """Train on ``data`` (sorted by time); ``y`` is ignored (unsupervised).

        Early stopping uses ``validation`` when given, else the latest
        ``config.validation_fraction`` of ``data``.
        """
        cfg = self.config
        values = self._values_for_fit(data)
        if validation is None:
            train_idx, val_idx = split_by_time(len(values), cfg.validation_fraction)
            train_values, val_values = values[train_idx], values[val_idx]
        else:
            train_values = values
            val_values = self._values_for_fit(validation, min_rows=1)
            if tuple(validation.names) != tuple(data.names):
                raise ConfigError(
                    "validation features must match the training features, got different "
                    "names. Build both with the same feature version."
                )
        centre, scale = fit_scaler(train_values, cfg.scaling)
        n_features = values.shape[1]

        def standardise(x: np.ndarray) -> np.ndarray:
            z = (x - centre.astype(np.float32)) / scale.astype(np.float32)
            return np.clip(z, -cfg.clip, cfg.clip).astype(np.float32)

        def build() -> nn.Module:
            return DenseAutoencoderNet(
                n_features, cfg.hidden_dims, cfg.latent_dim, cfg.dropout, cfg.clip)

        def batch_loss(net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            (z,) = batch
            return torch.mean((net(z).float() - z) ** 2)

        net, history = train_model(
            build, batch_loss, [standardise(train_values)], cfg,
            [standardise(val_values)] if len(val_values) else None, progress, "autoencoder")
        self.centre_, self.scale_ = centre, scale
        self.net_ = net  # type: ignore[assignment]
        self._set_scaler_buffers()
        self.history_ = history
        self.feature_names_ = tuple(data.names)
        return self

    def _set_scaler_buffers(self) -> None:
        device = next(self.net_.parameters()).device
        self.net_.centre = torch.as_tensor(self.centre_, dtype=torch.float32, device=device)
        self.net_.scale = torch.as_tensor(self.scale_, dtype=torch.float32, device=device)

    @torch.inference_mode()
    def _errors(self, data: FeatureMatrix, per_feature: bool) -> np.ndarray:
        values = self._values_for_score(data)
        device = next(self.net_.parameters()).device
        step = self.config.score_batch_size
        out = np.empty((len(values), values.shape[1]) if per_feature else len(values))
        for start in range(0, len(values), step):
            x = torch.from_numpy(values[start:start + step]).to(device)  # (B, f)
            z = self.net_.standardise(x)
            squared = (self.net_(z) - z).square_()  # (B, f)
            part = squared if per_feature else squared.mean(dim=1)  # (B, f) or (B,)
            out[start:start + step] = part.to("cpu", torch.float64).numpy()
        return out

    def score(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) mean squared reconstruction error of the standardised features."""
        return self._errors(data, per_feature=False)

    def feature_errors(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n, f) squared reconstruction error per feature (columns in
        ``feature_names_`` order); its row mean is ``score``."""
        return self._errors(data, per_feature=True)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {
            "feature_names": list(self.feature_names_),
            "scaler": scaler_to_state(self.centre_, self.scale_),
            "history": self.history_.to_dict(),
        }
        return state, state_to_arrays(self.net_)

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        cfg = self.config
        names = tuple(str(n) for n in state["feature_names"])
        centre, scale = scaler_from_state(state["scaler"], len(names))
        net = DenseAutoencoderNet(len(names), cfg.hidden_dims, cfg.latent_dim, cfg.dropout,
                                  cfg.clip)
        load_arrays_into(net, arrays)
        self.net_ = net.to(resolve_device(cfg.device, strict=False)).eval()
        self.centre_, self.scale_ = centre, scale
        self._set_scaler_buffers()
        self.history_ = TrainingHistory.from_dict(state.get("history"))
        self.feature_names_ = names
