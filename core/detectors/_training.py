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
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
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

    The budget is counted in optimiser steps, not epochs, so one default converges on 5k
    sessions (hundreds of passes) and on 1M (a few passes): training runs ``max_steps`` steps
    (or ``epochs`` passes, when that cap is given and smaller), with a learning-rate warm-up
    and cosine decay over that budget, and stops early once the validation loss has not
    improved for ``patience`` checks.

    Attributes:
        max_steps: optimiser-step budget.
        epochs: optional cap on passes over the training data (None: ``max_steps`` decides).
        batch_size: rows per optimisation step.
        learning_rate, weight_decay: AdamW settings (the peak learning rate).
        lr_schedule: "cosine" (linear warm-up, then cosine decay to 5%) or "constant".
        validation_fraction: share of the *latest* sessions held out for early stopping (the
            data arrive sorted by time, so this is a split by time); 0 disables it.
        patience: validation checks without improvement before stopping. A check runs every
            ``eval_every`` steps (0: once a pass, at most every 200 steps).
        device: "auto" (CUDA when available), "cpu" or "cuda".
        seed: seeds weights, shuffling and dropout; same seed, same data -> same scores.
        quiet: hide the tqdm progress bar.
    """

    max_steps: int = 2000
    epochs: int | None = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    lr_schedule: str = "cosine"
    validation_fraction: float = 0.1
    patience: int = 3
    eval_every: int = 0
    device: str = "auto"
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        check_int("max_steps", self.max_steps, 1)
        if self.epochs is not None:
            check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("learning_rate", self.learning_rate, 0.0, 10.0, low_open=True)
        check_float("weight_decay", self.weight_decay, 0.0, 1.0)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_float("validation_fraction", self.validation_fraction, 0.0, 0.5)
        check_int("patience", self.patience, 1)
        check_int("eval_every", self.eval_every, 0)
        check_choice("device", self.device, DEVICES)
        check_int("seed", self.seed, 0)
        if not isinstance(self.quiet, bool):
            raise ConfigError(f"quiet must be a bool, got {self.quiet!r}. Pass True or False.")

    def step_budget(self, n_rows: int) -> tuple[int, int]:
        """(total optimiser steps, steps between validation checks) for ``n_rows`` rows."""
        per_epoch = max(1, math.ceil(n_rows / self.batch_size))
        total = self.max_steps if self.epochs is None else min(
            self.max_steps, self.epochs * per_epoch)
        every = self.eval_every or min(per_epoch, _MAX_EVAL_EVERY)
        return total, min(every, total)


_MAX_EVAL_EVERY = 200
VALIDATION_SEED = 12_345
"""Seeds the noise of every validation check (``evaluate_loss``)."""
LR_SCHEDULES = ("cosine", "constant")


def lr_factor(step: int, total: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based) of ``total``.

    Cosine: linear warm-up from 10% over the first 5% of steps (at most 100), then cosine
    decay to 5% at the end of the budget.
    """
    if schedule == "constant":
        return 1.0
    warm = min(100, max(1, total // 20))
    if step < warm:
        return 0.1 + 0.9 * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


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
    """Losses at each validation check (``val_loss`` empty when no validation set was used).

    ``train_loss[i]`` is the mean training loss since the previous check, ``steps[i]`` the
    optimiser steps done at check i; ``best_epoch`` is the index of the best check (its
    weights were kept), ``epochs`` the passes over the training data that were run.
    """

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    best_epoch: int
    stopped_early: bool
    steps: tuple[int, ...] = ()
    n_steps: int = 0
    epochs: float = 0.0
    step_budget: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
            "steps": list(self.steps)}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> TrainingHistory:
        values = values or {}
        return cls(
            tuple(float(v) for v in values.get("train_loss", ())),
            tuple(float(v) for v in values.get("val_loss", ())),
            int(values.get("best_epoch", 0)), bool(values.get("stopped_early", False)),
            tuple(int(v) for v in values.get("steps", ())), int(values.get("n_steps", 0)),
            float(values.get("epochs", 0.0)), int(values.get("step_budget", 0)))


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


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel run (``torch.distributed`` initialised, e.g. by
    Ray Train). Every worker draws the same global mini-batches and computes the loss on its
    slice; gradients are summed across workers, each weighted by its share of the batch, so a
    step equals one local step on the whole batch (DDP's averaging, without wrapping the
    module: every detector's loss hooks stay as they are)."""

    rank: int
    world_size: int

    def slice(self, index: torch.Tensor) -> torch.Tensor:
        return index[self.rank::self.world_size]

    def reduce_gradients(self, net: nn.Module, share: float) -> None:
        import torch.distributed as dist

        for p in net.parameters():
            if not p.requires_grad:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.mul_(share)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)

    def sum(self, *values: float, device: torch.device) -> tuple[float, ...]:
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tuple(float(v) for v in tensor)


_DATA_PARALLEL: ContextVar[DataParallel | None] = ContextVar("data_parallel", default=None)


@contextmanager
def data_parallel(rank: int, world_size: int) -> Iterator[None]:
    """Train with ``train_model`` as worker ``rank`` of ``world_size`` inside this block."""
    token = _DATA_PARALLEL.set(DataParallel(rank, world_size))
    try:
        yield
    finally:
        _DATA_PARALLEL.reset(token)


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

    Runs the step budget of ``config.step_budget`` (warm-up and cosine decay of the learning
    rate over it), checks the validation loss every ``eval_every`` steps, keeps the best
    weights and stops after ``patience`` checks without improvement.

    Args:
        build_net: makes the untrained network (called after seeding, so init is seeded).
        batch_loss: (net, batch tensors on the device) -> scalar loss.
        train: aligned arrays, first axis = rows.
        validation: aligned arrays for early stopping; None to train without it.
        progress: called with (fraction done in [0, 1], message) after every check.
        lengths: per training row (e.g. events per session); when given, mini-batches group
            rows of similar length so a sequence model computes less padding.

    Returns:
        The network with the best validation (or last training) weights, in eval mode, on the
        device, and the history.
    """
    device = resolve_device(config.device)
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in train]
    val_tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in validation or ()]
    has_val = bool(val_tensors) and len(val_tensors[0]) > 0
    length_tensor = None if lengths is None else torch.from_numpy(np.asarray(lengths))
    n_rows = len(tensors[0])
    budget, every = config.step_budget(n_rows)
    parallel = _DATA_PARALLEL.get()
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        net = build_net().to(device)
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: lr_factor(step, budget, config.lr_schedule))
        shuffler = torch.Generator().manual_seed(config.seed)
        train_hist: list[float] = []
        val_hist: list[float] = []
        check_steps: list[int] = []
        best_loss, best_check, best_state = math.inf, 0, None
        stale, stopped_early, step = 0, False, 0
        total, count = 0.0, 0
        bar = tqdm(total=budget, desc=description, disable=config.quiet, leave=False)
        try:
            while step < budget and not stopped_early:
                net.train()
                index_batches = _epoch_batches(n_rows, config.batch_size, shuffler,
                                               length_tensor)
                sizes = [len(index) for index in index_batches]
                if parallel is not None:
                    index_batches = [parallel.slice(index) for index in index_batches]
                for size, batch in zip(sizes, _batches(tensors, config.batch_size, device,
                                                       index_batches), strict=True):
                    optimiser.zero_grad(set_to_none=True)
                    rows = len(batch[0])
                    loss_value = 0.0
                    if rows:
                        with autocast(device):
                            loss = batch_loss(net, batch)
                        if not torch.isfinite(loss):
                            raise ModelError(
                                f"training loss must stay finite, got {loss.item()} at step "
                                f"{step + 1}. Lower learning_rate or check the input features."
                            )
                        loss.backward()
                        loss_value = loss.item()
                    if parallel is not None:
                        parallel.reduce_gradients(net, rows / size)
                    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    optimiser.step()
                    schedule.step()
                    step += 1
                    total += loss_value * rows
                    count += rows
                    bar.update(1)
                    if step % every and step < budget:
                        continue
                    if parallel is not None:
                        total, count = parallel.sum(total, count, device=device)
                    train_hist.append(total / max(count, 1))
                    total, count = 0.0, 0
                    check_steps.append(step)
                    current = train_hist[-1]
                    if has_val:
                        current = evaluate_loss(net, batch_loss, val_tensors,
                                                config.batch_size * 4, device)
                        val_hist.append(current)
                        net.train()
                    bar.set_postfix(loss=f"{train_hist[-1]:.4g}",
                                    **({"val": f"{current:.4g}"} if has_val else {}))
                    if current < best_loss - 1e-4 * abs(best_loss) or best_state is None:
                        best_loss, best_check, stale = current, len(check_steps) - 1, 0
                        best_state = copy.deepcopy(net.state_dict())
                    else:
                        stale += 1
                    if progress is not None:
                        progress(step / budget, f"{description}: step {step}/{budget}, "
                                                f"loss {current:.4g}")
                    if has_val and stale >= config.patience:
                        stopped_early = True
                        logger.info("early stop at step %d (best check %d)", step,
                                    best_check + 1)
                    if stopped_early or step >= budget:
                        break
        finally:
            bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
    if progress is not None:
        progress(1.0, f"{description}: done")
    net.eval()
    history = TrainingHistory(tuple(train_hist), tuple(val_hist), best_check, stopped_early,
                              tuple(check_steps), step,
                              round(step * config.batch_size / max(n_rows, 1), 3), budget)
    return net, history


@torch.inference_mode()
def evaluate_loss(
    net: nn.Module, batch_loss: BatchLoss, arrays: Sequence[torch.Tensor], batch_size: int,
    device: torch.device,
) -> float:
    """Mean ``batch_loss`` over ``arrays`` in eval mode (weighted by batch size).

    A loss that draws noise (masked events, a VAE's latent sample) draws the same noise at
    every check (``VALIDATION_SEED``, on a forked generator, so training's own random stream
    is untouched): checks then differ by the weights alone, and early stopping does not stop
    on a lucky or unlucky draw.
    """
    was_training = net.training
    net.eval()
    total, count = 0.0, 0
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(VALIDATION_SEED)
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


def trimmed_mean(per_row: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of ``per_row`` without its highest ``fraction`` (at least one row is kept).

    >>> float(trimmed_mean(torch.tensor([1.0, 2.0, 3.0, 100.0]), 0.25))
    2.0
    """
    if fraction <= 0 or len(per_row) < 2:
        return per_row.mean()
    keep = max(1, int(round(len(per_row) * (1.0 - fraction))))
    return torch.topk(per_row, keep, largest=False, sorted=False).values.mean()
