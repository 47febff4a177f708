"""The shared training loop of the torch detectors (in the spirit of PyOD's deep base).

It owns device choice, seeding, mini-batching, bf16 autocast (CUDA only), AdamW, the
validation split, early stopping with best-weight restore, and progress. A detector supplies
only ``build_net()`` and ``batch_loss(net, batch)``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from core.detectors.config import DetectorConfig, check_choice, check_float, check_int
from core.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
BatchLoss = Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]
DEVICES = ("auto", "cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class TorchTrainingConfig(DetectorConfig):
    """Training fields shared by every torch detector.

    Attributes:
        epochs: passes over the training data (early stopping may end sooner).
        batch_size: rows per optimisation step.
        learning_rate, weight_decay: AdamW settings.
        validation_fraction: share of the *latest* sessions held out for early stopping (the
            data arrive sorted by time, so this is a split by time); 0 disables it.
        patience: epochs without a validation improvement before stopping.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        seed: seeds weights, shuffling and dropout; same seed, same data -> same scores.
        quiet: hide the tqdm progress bar.
    """

    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    validation_fraction: float = 0.1
    patience: int = 3
    device: str = "auto"
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("learning_rate", self.learning_rate, 0.0, 10.0, low_open=True)
        check_float("weight_decay", self.weight_decay, 0.0, 1.0)
        check_float("validation_fraction", self.validation_fraction, 0.0, 0.5)
        check_int("patience", self.patience, 1)
        check_choice("device", self.device, DEVICES)
        check_int("seed", self.seed, 0)
        if not isinstance(self.quiet, bool):
            raise ConfigError(f"quiet must be a bool, got {self.quiet!r}. Pass True or False.")


def resolve_device(name: str, *, strict: bool = True) -> torch.device:
    """``auto`` -> CUDA when available, else CPU. ``cuda`` without CUDA is a ConfigError when
    ``strict`` (training), and falls back to CPU with a warning otherwise (loading a model
    trained on a GPU machine)."""
    check_choice("device", name, DEVICES)
    if name == "cuda" and not torch.cuda.is_available() and not strict:
        logger.warning("model was trained with device='cuda'; no CUDA here, scoring on CPU")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device must be available, got 'cuda' on a machine without CUDA. "
            "Use device='auto' or 'cpu'."
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA; nothing on CPU (bf16 is slower there and costs accuracy)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@dataclasses.dataclass(frozen=True)
class TrainingHistory:
    """Per-epoch losses. ``val_loss`` is empty when no validation set was used."""

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    best_epoch: int
    stopped_early: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "train_loss": list(self.train_loss), "val_loss": list(self.val_loss)}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> TrainingHistory:
        values = values or {}
        return cls(
            tuple(float(v) for v in values.get("train_loss", ())),
            tuple(float(v) for v in values.get("val_loss", ())),
            int(values.get("best_epoch", 0)), bool(values.get("stopped_early", False)))


def split_by_time(n: int, fraction: float, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation positions: the last ``fraction`` of rows (the latest) is validation."""
    n_val = int(math.floor(n * fraction))
    if fraction <= 0 or n_val < min_rows or n - n_val < min_rows:
        return np.arange(n), np.arange(0)
    return np.arange(n - n_val), np.arange(n - n_val, n)


# Length bucketing sorts rows by length within windows of this many batches: batches hold
# sessions of similar length (little padding to compute) yet stay random across epochs.
_BUCKET_WINDOW = 50


def _epoch_batches(n: int, batch_size: int, generator: torch.Generator,
                   lengths: torch.Tensor | None) -> list[torch.Tensor]:
    """Row indices of each mini-batch of one epoch, in a random order."""
    order = torch.randperm(n, generator=generator)
    if lengths is not None:
        window = batch_size * _BUCKET_WINDOW
        parts = []
        for start in range(0, n, window):
            part = order[start:start + window]
            parts.append(part[torch.argsort(lengths[part], stable=True)])
        order = torch.cat(parts)
    batches = list(torch.split(order, batch_size))
    if lengths is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
    return batches


def _batches(
    arrays: Sequence[torch.Tensor], batch_size: int, device: torch.device,
    index_batches: list[torch.Tensor] | None = None,
) -> Iterator[tuple[torch.Tensor, ...]]:
    if index_batches is None:
        for start in range(0, len(arrays[0]), batch_size):
            batch = tuple(a[start:start + batch_size] for a in arrays)
            yield tuple(b.to(device, non_blocking=True) for b in batch)
        return
    for index in index_batches:
        yield tuple(a[index].to(device, non_blocking=True) for a in arrays)


def train_model(
    build_net: Callable[[], nn.Module],
    batch_loss: BatchLoss,
    train: Sequence[np.ndarray],
    config: TorchTrainingConfig,
    validation: Sequence[np.ndarray] | None = None,
    progress: Progress | None = None,
    description: str = "training",
    lengths: np.ndarray | None = None,
) -> tuple[nn.Module, TrainingHistory]:
    """Fit ``build_net()`` by minimising the mean of ``batch_loss`` over mini-batches.

    Args:
        build_net: makes the untrained network (called after seeding, so init is seeded).
        batch_loss: (net, batch tensors on the device) -> scalar loss.
        train: aligned arrays, first axis = rows.
        validation: aligned arrays for early stopping; None to train without it.
        progress: called with (fraction done in [0, 1], message) after every epoch.
        lengths: per training row (e.g. events per session); when given, mini-batches group
            rows of similar length so a sequence model computes less padding.

    Returns:
        The network with the best validation (or last training) weights, in eval mode, on the
        device, and the per-epoch history.
    """
    device = resolve_device(config.device)
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in train]
    val_tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in validation or ()]
    has_val = bool(val_tensors) and len(val_tensors[0]) > 0
    length_tensor = None if lengths is None else torch.from_numpy(np.asarray(lengths))
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        net = build_net().to(device)
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        shuffler = torch.Generator().manual_seed(config.seed)
        train_hist: list[float] = []
        val_hist: list[float] = []
        best_loss, best_epoch, best_state = math.inf, 0, None
        stale, stopped_early = 0, False
        n_steps = math.ceil(len(tensors[0]) / config.batch_size)
        bar = tqdm(total=config.epochs * n_steps, desc=description, disable=config.quiet,
                   leave=False)
        try:
            for epoch in range(config.epochs):
                net.train()
                index_batches = _epoch_batches(len(tensors[0]), config.batch_size, shuffler,
                                               length_tensor)
                total, count = 0.0, 0
                for batch in _batches(tensors, config.batch_size, device, index_batches):
                    with autocast(device):
                        loss = batch_loss(net, batch)
                    if not torch.isfinite(loss):
                        raise ModelError(
                            f"training loss must stay finite, got {loss.item()} in epoch "
                            f"{epoch + 1}. Lower learning_rate or check the input features."
                        )
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    optimiser.step()
                    total += loss.item() * len(batch[0])
                    count += len(batch[0])
                    bar.update(1)
                train_hist.append(total / max(count, 1))
                current = train_hist[-1]
                if has_val:
                    current = evaluate_loss(net, batch_loss, val_tensors, config.batch_size * 4,
                                            device)
                    val_hist.append(current)
                bar.set_postfix(loss=f"{train_hist[-1]:.4g}",
                                **({"val": f"{current:.4g}"} if has_val else {}))
                if current < best_loss:
                    best_loss, best_epoch, stale = current, epoch, 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    stale += 1
                if progress is not None:
                    progress((epoch + 1) / config.epochs,
                             f"{description}: epoch {epoch + 1}/{config.epochs}, "
                             f"loss {current:.4g}")
                if has_val and stale >= config.patience:
                    stopped_early = True
                    logger.info("early stop after epoch %d (best %d)", epoch + 1, best_epoch + 1)
                    break
        finally:
            bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
    if progress is not None:
        progress(1.0, f"{description}: done")
    net.eval()
    history = TrainingHistory(tuple(train_hist), tuple(val_hist), best_epoch, stopped_early)
    return net, history


@torch.inference_mode()
def evaluate_loss(
    net: nn.Module, batch_loss: BatchLoss, arrays: Sequence[torch.Tensor], batch_size: int,
    device: torch.device,
) -> float:
    """Mean ``batch_loss`` over ``arrays`` in eval mode (weighted by batch size)."""
    was_training = net.training
    net.eval()
    total, count = 0.0, 0
    for batch in _batches(arrays, batch_size, device):
        with autocast(device):
            total += float(batch_loss(net, batch)) * len(batch[0])
        count += len(batch[0])
    net.train(was_training)
    return total / max(count, 1)


def state_to_arrays(net: nn.Module) -> dict[str, np.ndarray]:
    """The net's weights as float32 numpy arrays (for safetensors)."""
    return {k: v.detach().to("cpu", torch.float32).numpy().copy()
            for k, v in net.state_dict().items()}


def load_arrays_into(net: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    """Load weights saved by ``state_to_arrays``; ModelError naming what does not fit."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ModelError(
            f"model.safetensors must hold the weights config.json describes, got missing "
            f"{missing or 'none'} and unexpected {extra or 'none'}. Save the model again or "
            "retrain it."
        )
    for name, tensor in expected.items():
        if tuple(arrays[name].shape) != tuple(tensor.shape):
            raise ModelError(
                f"weight {name!r} must have shape {tuple(tensor.shape)}, got "
                f"{tuple(arrays[name].shape)}. Save the model again or retrain it."
            )
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
