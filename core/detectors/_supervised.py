"""What the supervised detectors share: label checks, class imbalance, losses, calibration and
the validation average precision.

Labels are rare (about 2% of sessions in the sample data), so the positive class is weighted in
the loss (``pos_weight``, default n_negative / n_positive) or a focal loss is used. Weighting
shifts the predicted odds by the weight, so raw sigmoid outputs are not probabilities; a
calibration fitted on the validation part (the latest sessions, as ``split_by_time`` cuts them)
maps logits to probabilities: Platt scaling (slope and intercept) by default, or a temperature
after removing the known prior shift. Without both classes in the validation part, only the
prior shift is removed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from core.detectors._refusals import unsupervised_detectors
from core.detectors._training import Progress, TorchTrainingConfig, split_by_time
from core.detectors.config import check_choice, check_float
from core.errors import ModelError

logger = logging.getLogger(__name__)

LOSSES = ("bce", "focal")
CALIBRATIONS = ("platt", "temperature", "none")
MAX_AUTO_POS_WEIGHT = 1000.0
"""The automatic positive weight n_negative / n_positive is capped here, so a handful of
positives among millions cannot make the loss explode."""


@dataclasses.dataclass(frozen=True)
class SupervisedConfig(TorchTrainingConfig):
    """Training fields shared by the supervised detectors (plus the torch training fields).

    Attributes:
        loss: "bce" (binary cross-entropy) or "focal" (focal loss, Lin et al. 2017).
        focal_gamma: focusing exponent of the focal loss.
        pos_weight: weight of a positive in the loss; None = n_negative / n_positive of the
            training part (capped at 1000).
        calibration: "platt", "temperature" or "none", fitted on the validation part.
        validation_fraction: share of the latest sessions held out for early stopping,
            calibration and the validation average precision.
    """

    loss: str = "bce"
    focal_gamma: float = 2.0
    pos_weight: float | None = None
    calibration: str = "platt"
    validation_fraction: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("loss", self.loss, LOSSES)
        check_float("focal_gamma", self.focal_gamma, 0.0, 10.0)
        if self.pos_weight is not None:
            check_float("pos_weight", self.pos_weight, 0.0, 1e6, low_open=True)
        check_choice("calibration", self.calibration, CALIBRATIONS)


# ------------------------------------------------------------------------------------ labels
def check_labels(y: Any, n: int, kind: str) -> np.ndarray:
    """float32 (n,) 0/1 session labels; ModelError saying what to do otherwise."""
    if y is None:
        raise ModelError(
            f"labels y of the supervised detector {kind!r} must be given, got None. Pass one "
            "label per session (1 = anomalous, 0 = normal), or use an unsupervised detector: "
            f"{unsupervised_detectors()}."
        )
    labels = np.asarray(y, dtype=np.float64).ravel()
    if labels.shape != (n,):
        raise ModelError(
            f"labels y must have one value per session ({n}), got {labels.shape[0]}. "
            "Pass labels aligned with the sessions."
        )
    if not np.isin(labels, (0.0, 1.0)).all():
        bad = labels[~np.isin(labels, (0.0, 1.0))][:3]
        raise ModelError(
            f"labels y must be 0 or 1, got {bad.tolist()}. Count unlabelled sessions as 0."
        )
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise ModelError(
            f"labels y of {kind!r} must mark some sessions anomalous (1), got labels for all "
            f"{n:,} sessions and none anomalous. A classifier needs anomalous examples: label "
            "some, widen the training window, or use an unsupervised detector, which learns "
            f"from normal sessions alone: {unsupervised_detectors()}."
        )
    if n_pos == n:
        raise ModelError(
            f"labels y of {kind!r} must contain normal sessions too, got only anomalous ones "
            f"among {n:,}. Widen the training window."
        )
    return labels.astype(np.float32)


def check_event_labels(event_labels: Any, shape: tuple[int, int]) -> np.ndarray:
    """float32 (n, L) event labels: 1, 0, or -1 where unknown (NaN in the input)."""
    if event_labels is None:
        return np.full(shape, -1.0, dtype=np.float32)
    labels = np.asarray(event_labels, dtype=np.float64)
    if labels.shape != shape:
        raise ModelError(
            f"event_labels must have the shape of the tokens {shape}, got {labels.shape}. "
            "Pass one value per sequence position (NaN where unknown)."
        )
    known = ~np.isnan(labels)
    if not np.isin(labels[known], (0.0, 1.0)).all():
        raise ModelError(
            "event_labels must be 0, 1 or NaN (unknown), got other values. Fix the labels."
        )
    return np.where(known, labels, -1.0).astype(np.float32)


def resolve_pos_weight(targets: np.ndarray, configured: float | None) -> float:
    """The weight of a positive: ``configured``, else n_negative / n_positive (capped); 1.0
    when there are no known positives. ``targets`` may hold -1 (unknown), which is ignored."""
    if configured is not None:
        return float(configured)
    n_pos = float((targets == 1).sum())
    n_neg = float((targets == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return 1.0
    return float(min(max(n_neg / n_pos, 1.0), MAX_AUTO_POS_WEIGHT))


def binary_loss(logits: torch.Tensor, targets: torch.Tensor, pos_weight: float, loss: str,
                gamma: float) -> torch.Tensor:
    """Mean weighted BCE or focal loss over positions whose target is 0 or 1 (-1 = unknown,
    ignored); 0 when nothing is known (keeps the graph so backward still works)."""
    logits, targets = logits.float(), targets.float()
    known = targets >= 0
    target = targets.clamp(min=0.0)
    weight = torch.where(target > 0.5, pos_weight, 1.0) * known
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if loss == "focal":
        p_true = torch.exp(-bce)  # probability given to the true class
        bce = bce * (1.0 - p_true).pow(gamma)
    return (bce * weight).sum() / weight.sum().clamp(min=1.0)


# ------------------------------------------------------------------------------- calibration
@dataclasses.dataclass(frozen=True)
class Calibration:
    """probability = sigmoid(slope * logit + intercept)."""

    slope: float = 1.0
    intercept: float = 0.0
    method: str = "none"

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """float64 probabilities of float logits."""
        z = self.slope * np.asarray(logits, dtype=np.float64) + self.intercept
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Calibration:
        values = values or {}
        out = cls(float(values.get("slope", 1.0)), float(values.get("intercept", 0.0)),
                  str(values.get("method", "none")))
        if not (math.isfinite(out.slope) and math.isfinite(out.intercept)):
            raise ModelError(
                "calibration in config.json must be finite, got "
                f"{out.slope}, {out.intercept}. Save the model again or retrain it."
            )
        return out


def fit_calibration(logits: np.ndarray, y: np.ndarray, method: str,
                    pos_weight: float) -> Calibration:
    """Fit ``method`` on validation logits and 0/1 labels (entries of -1 are ignored).

    The prior shift of a loss that weights positives by ``pos_weight`` is log(pos_weight) in
    logit units; it is always removed first. Platt scaling then fits slope and intercept with
    Platt's smoothed targets ((n+ + 1) / (n+ + 2) and 1 / (n- + 2)), which keeps a validation
    part with few positives from producing probabilities of exactly 0 or 1.
    """
    shift = -math.log(pos_weight)
    if method == "none":
        return Calibration(1.0, 0.0, "none")
    z = np.asarray(logits, dtype=np.float64).ravel() + shift
    target = np.asarray(y, dtype=np.float64).ravel()
    known = target >= 0
    z, target = z[known], target[known]
    n_pos, n_neg = int(target.sum()), int((target == 0).sum())
    if n_pos == 0 or n_neg == 0:
        logger.warning("validation part lacks %s labels: calibration removes only the prior "
                       "shift of the class weight", "anomalous" if n_pos == 0 else "normal")
        return Calibration(1.0, shift, "prior_shift")
    soft = np.where(target > 0.5, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        slope, intercept = (params[0], params[1]) if method == "platt" else (params[0], 0.0)
        s = slope * z + intercept
        loss = np.logaddexp(0.0, s) - soft * s  # BCE with logits
        g = 1.0 / (1.0 + np.exp(-s)) - soft
        grad = np.array([np.dot(g, z), g.sum()]) if method == "platt" else np.array(
            [np.dot(g, z)])
        return float(loss.mean()), grad / len(z)

    start = np.array([1.0, 0.0]) if method == "platt" else np.array([1.0])
    result = minimize(nll, start, jac=True, method="L-BFGS-B",
                      bounds=[(1e-3, 100.0)] + ([(-50.0, 50.0)] if method == "platt" else []))
    slope = float(result.x[0])
    intercept = float(result.x[1]) if method == "platt" else 0.0
    # sigmoid(slope * (logit + shift) + intercept) as one slope and intercept on the raw logit
    return Calibration(slope, slope * shift + intercept, method)


def average_precision(scores: np.ndarray, y: np.ndarray) -> float | None:
    """Average precision of ``scores`` against 0/1 ``y`` (-1 ignored); None without both
    classes."""
    from sklearn.metrics import average_precision_score

    target = np.asarray(y).ravel()
    known = target >= 0
    target = target[known]
    if target.size == 0 or target.min() == target.max():
        return None
    return float(average_precision_score(target, np.asarray(scores).ravel()[known]))


# ---------------------------------------------------------------- the supervised detectors' base
class SupervisedMixin:
    """TorchDetector hooks every supervised detector shares; learns ``pos_weight_``,
    ``calibration_`` and ``validation_ap_`` (None when the validation part lacks a class).

    Put it first in the class bases. The detector's ``_fit_inputs`` returns the session labels
    (``check_labels``) as its last raw array; the split keeps both classes in training
    (``split_supervised``); after training ``_calibrate_on`` gets the validation part's
    training arrays (empty when there is none) to fit the calibration.
    """

    requires_labels = True
    outputs_probability = True
    config: Any
    pos_weight_: float
    calibration_: Calibration
    validation_ap_: float | None
    _event_labels: np.ndarray | None
    _val_raw: list[np.ndarray]

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_") and hasattr(self, "calibration_")

    def fit(self, data: Any, y: np.ndarray | None = None, event_labels: np.ndarray | None = None,
            *, progress: Progress | None = None) -> Self:
        """Train on ``data`` (sorted by time), 0/1 session labels ``y`` and, for a detector with
        an event head, ``event_labels`` (n, L): 1, 0 or NaN where unknown (ignored otherwise).
        The latest ``validation_fraction`` of sessions is held out for early stopping,
        calibration and the validation AP."""
        self._event_labels = event_labels
        try:
            return super().fit(data, y, progress=progress)  # type: ignore[misc,no-any-return]
        finally:
            for name in ("_event_labels", "_val_raw"):
                self.__dict__.pop(name, None)

    def _split(self, raw: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        labels = raw[-1]
        train_idx, val_idx = split_supervised(len(labels), labels, self.config.validation_fraction)
        self._val_raw = [a[val_idx] for a in raw]
        return train_idx, val_idx

    def _calibrate(self, data: Any) -> None:
        self._calibrate_on(self._training_arrays(self._val_raw))  # type: ignore[attr-defined]

    def _calibrate_on(self, val: list[np.ndarray]) -> None:
        """Fit the calibration on the validation part's training arrays."""
        raise NotImplementedError

    def _finish_supervised(self, config: SupervisedConfig, val_logits: np.ndarray,
                           val_y: np.ndarray, pos_weight: float) -> None:
        self.pos_weight_ = pos_weight
        self.calibration_ = fit_calibration(val_logits, val_y, config.calibration, pos_weight)
        self.validation_ap_ = average_precision(val_logits, val_y)
        logger.info("validation average precision %s",
                    "n/a" if self.validation_ap_ is None else f"{self.validation_ap_:.3f}")

    def _supervised_state(self) -> dict[str, Any]:
        return {"pos_weight": self.pos_weight_, "calibration": self.calibration_.to_dict(),
                "validation_ap": self.validation_ap_}

    def _set_supervised_state(self, state: dict[str, Any]) -> None:
        self.pos_weight_ = float(state.get("pos_weight", 1.0))
        self.calibration_ = Calibration.from_dict(state.get("calibration"))
        ap = state.get("validation_ap")
        self.validation_ap_ = None if ap is None else float(ap)


def split_supervised(n: int, y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation positions by time (the latest ``fraction`` is validation). When the
    training part would lack a class, everything is training (with a warning): a model must
    see both classes; the validation AP is then unknown."""
    train_idx, val_idx = split_by_time(n, fraction)
    part = y[train_idx]
    if len(val_idx) and (part.max() < 1 or part.min() > 0):
        logger.warning("the training part before the validation split lacks a class; "
                       "training on all sessions without validation")
        return np.arange(n), np.arange(0)
    return train_idx, val_idx

