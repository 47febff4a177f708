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
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from core.datasets import FeatureMatrix
from core.detectors._scaling import SCALINGS
from core.detectors._supervised import (
    SupervisedConfig,
    SupervisedMixin,
    binary_loss,
    check_labels,
    resolve_pos_weight,
)
from core.detectors.autoencoder import ScaledFeaturesMixin
from core.detectors.base import FeatureDetector
from core.detectors.config import check_choice, check_float, check_int
from core.detectors.registry import register
from core.detectors.torch_detector import TorchDetector
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
class MLPDetector(  # type: ignore[misc]  # its fit takes labels, not validation=
        SupervisedMixin, ScaledFeaturesMixin, TorchDetector[MLPConfig],
        FeatureDetector[MLPConfig]):
    """Supervised MLP on the session feature matrix (``event_labels`` in fit are ignored:
    features have no events).

    Learned: ``feature_names_``, ``centre_``/``scale_``, ``net_``, ``history_``,
    ``pos_weight_``, ``calibration_`` and ``validation_ap_``.
    """

    config_class = MLPConfig
    description = "mlp"
    tiny_config: ClassVar[dict[str, Any]] = {
        "hidden_dims": (16,), "epochs": 2, "batch_size": 64, "quiet": True, "device": "cpu"}
    net_: MLPNet

    # -- TorchDetector hooks (scaling and features: ScaledFeaturesMixin) --------------------
    def _fit_inputs(self, data: FeatureMatrix, y: np.ndarray | None) -> list[np.ndarray]:
        (values,) = super()._fit_inputs(data, y)
        return [values, check_labels(y, len(values), self.kind)]

    def _fit_scaler(self, train_raw: list[np.ndarray]) -> None:
        super()._fit_scaler(train_raw)
        self.pos_weight_ = resolve_pos_weight(train_raw[-1], self.config.pos_weight)

    def _build_net(self) -> nn.Module:
        cfg = self.config
        return MLPNet(len(self.feature_names_), cfg.hidden_dims, cfg.dropout)

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        cfg = self.config
        x, target = batch
        return binary_loss(net(x), target, self.pos_weight_, cfg.loss, cfg.focal_gamma)

    def _calibrate_on(self, val: list[np.ndarray]) -> None:
        z, labels = val
        self._finish_supervised(self.config, self._logits(z), labels, self.pos_weight_)

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._extra_state()
        return state | self._supervised_state(), arrays

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore_extra(state, arrays)
        self._set_supervised_state(state)

    # -- scoring ----------------------------------------------------------------------------
    @torch.inference_mode()
    def _logits(self, z: np.ndarray) -> np.ndarray:
        device = self.device
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
