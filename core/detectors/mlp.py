"""Multilayer perceptron on the session features, trained on labels; score = calibrated
probability that the session is anomalous.

>>> import numpy as np
>>> from core.datasets import FeatureMatrix
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(400, 4)).astype(np.float32)
>>> y = (x[:, 0] > 1.5).astype(float)
>>> data = FeatureMatrix(np.arange(400).astype(object), x, ("a", "b", "c", "d"))
>>> detector = MLPDetector(MLPConfig(hidden_dims=(8,), epochs=2, quiet=True)).fit(data, y)
>>> p = detector.score(data)
>>> p.shape, bool(((p >= 0) & (p <= 1)).all())
((400,), True)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from core.datasets import FeatureMatrix
from core.detectors._scaling import SCALINGS, fit_scaler, scaler_from_state, scaler_to_state
from core.detectors._supervised import (
    SupervisedConfig,
    SupervisedMixin,
    binary_loss,
    check_labels,
    resolve_pos_weight,
    split_supervised,
)
from core.detectors._training import (
    Progress,
    load_arrays_into,
    resolve_device,
    state_to_arrays,
    train_model,
)
from core.detectors.base import FeatureDetector
from core.detectors.config import check_choice, check_float, check_int
from core.detectors.registry import register
from core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class MLPConfig(SupervisedConfig):
    """MLP settings (plus the supervised and torch training fields).

    Attributes:
        hidden_dims: widths of the hidden layers.
        dropout: dropout after each hidden layer while training.
        scaling: feature standardisation, as in the autoencoder ("robust" = median / IQR).
        clip: standardised features are clipped to [-clip, clip].
        score_batch_size: rows per scoring batch.
    """

    hidden_dims: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    scaling: str = "robust"
    clip: float = 10.0
    score_batch_size: int = 65_536
    epochs: int = 20
    batch_size: int = 512
    learning_rate: float = 2e-3
    patience: int = 4

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
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_choice("scaling", self.scaling, SCALINGS)
        check_float("clip", self.clip, 0.0, 1e6, low_open=True)
        check_int("score_batch_size", self.score_batch_size, 1)


class MLPNet(nn.Module):
    """(B, f) standardised features -> (B,) logits."""

    def __init__(self, n_features: int, hidden_dims: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z).squeeze(-1)  # (B, f) -> (B, 1) -> (B,)


@register("mlp")
class MLPDetector(SupervisedMixin, FeatureDetector[MLPConfig]):
    """Supervised MLP on the session feature matrix.

    Learned: ``feature_names_``, ``centre_``/``scale_``, ``net_``, ``history_``,
    ``pos_weight_``, ``calibration_`` and ``validation_ap_``.
    """

    config_class = MLPConfig
    tiny_config: ClassVar[dict[str, Any]] = {
        "hidden_dims": (16,), "epochs": 2, "batch_size": 64, "quiet": True, "device": "cpu"}
    centre_: np.ndarray
    scale_: np.ndarray
    net_: MLPNet

    def fit(self, data: FeatureMatrix, y: np.ndarray | None = None,
            event_labels: np.ndarray | None = None, *, progress: Progress | None = None) -> Self:
        """Train on ``data`` (sorted by time) and 0/1 labels ``y``; ``event_labels`` is ignored
        (features have no events). The latest ``validation_fraction`` of sessions is held out
        for early stopping, calibration and the validation AP."""
        cfg = self.config
        values = self._values_for_fit(data)
        labels = check_labels(y, len(values), self.kind)
        train_idx, val_idx = split_supervised(len(values), labels, cfg.validation_fraction)
        self.centre_, self.scale_ = fit_scaler(values[train_idx], cfg.scaling)
        z = self._standardise(values)
        pos_weight = resolve_pos_weight(labels[train_idx], cfg.pos_weight)
        n_features = values.shape[1]

        def build() -> nn.Module:
            return MLPNet(n_features, cfg.hidden_dims, cfg.dropout)

        def batch_loss(net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, target = batch
            return binary_loss(net(x), target, pos_weight, cfg.loss, cfg.focal_gamma)

        validation = [z[val_idx], labels[val_idx]] if len(val_idx) else None
        net, self.history_ = train_model(build, batch_loss, [z[train_idx], labels[train_idx]],
                                         cfg, validation, progress, "mlp")
        self.net_ = net  # type: ignore[assignment]
        self.feature_names_ = tuple(data.names)
        self._finish_supervised(cfg, self._logits(z[val_idx]), labels[val_idx], pos_weight)
        return self

    def _standardise(self, values: np.ndarray) -> np.ndarray:
        z = (values - self.centre_.astype(np.float32)) / self.scale_.astype(np.float32)
        return np.clip(z, -self.config.clip, self.config.clip).astype(np.float32)

    @torch.inference_mode()
    def _logits(self, z: np.ndarray) -> np.ndarray:
        device = next(self.net_.parameters()).device
        out = np.empty(len(z), dtype=np.float64)
        step = self.config.score_batch_size
        for start in range(0, len(z), step):
            x = torch.from_numpy(z[start:start + step]).to(device)
            out[start:start + step] = self.net_(x).to("cpu", torch.float64).numpy()
        return out

    def score(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) calibrated probability that each session is anomalous."""
        values = self._values_for_score(data)
        return self.calibration_.apply(self._logits(self._standardise(values)))

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {"feature_names": list(self.feature_names_),
                 "scaler": scaler_to_state(self.centre_, self.scale_),
                 **self._supervised_state()}
        return state, state_to_arrays(self.net_)

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        cfg = self.config
        names = tuple(str(n) for n in state["feature_names"])
        self.centre_, self.scale_ = scaler_from_state(state["scaler"], len(names))
        net = MLPNet(len(names), cfg.hidden_dims, cfg.dropout)
        load_arrays_into(net, arrays)
        self.net_ = net.to(resolve_device(cfg.device, strict=False)).eval()
        self._set_supervised_state(state)
        self.feature_names_ = names
