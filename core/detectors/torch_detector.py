"""``TorchDetector``: the fit skeleton every torch detector repeats, with hooks for the rest.

``fit(data, y, validation=, progress=)`` runs, in order:

1. ``_fit_inputs(data, y)``: check the input, learn its metadata (feature names, vocabulary)
   and return row-aligned raw arrays (first axis = sessions);
2. the train/validation split: ``validation`` through ``_validation_inputs`` when given, else
   ``_split(raw)`` (default: the latest ``config.validation_fraction`` of the rows,
   ``split_by_time``; the classifiers keep both classes in training);
3. ``_fit_scaler(train_raw)``: learn scaling statistics from the training rows only;
4. ``_training_arrays(raw)``: raw arrays -> the net's inputs (scaled, aligned, filtered), then
   ``_select_rows(train, val)`` (e.g. subsample the training rows; default: unchanged);
5. ``_build_net()`` and ``_batch_loss(net, batch)`` inside ``_training.train_model`` (step
   budget, LR schedule, early stopping on validation loss, best weights kept, device from
   ``config.device``, bf16 autocast on CUDA only). The loss may return ``(loss, {name:
   per-row tensor or scalar})``: each named component is averaged per check, for training
   and validation, into ``history_`` (a ``ComponentHistory``: ``to_dict()["components"]``
   and ``["val_components"]``), so a page can draw e.g. recon and KL apart;
6. ``_calibrate(data)``: optional, after training (e.g. a floor for unseen event types).

During training ``self.train_step_`` counts optimiser steps and ``self.step_budget_`` is the
run's budget, so a loss can anneal a weight (the VAEs' KL warm-up); validation runs in eval
mode (``net.training`` is False), where a loss should use its final weights.

Save/restore: ``_get_state`` stores ``_extra_state()`` (JSON metadata plus named arrays,
written as ``learned/<name>``) and the history; the net's weights are stored under their
``state_dict`` names, as the detectors written before this class stored them. ``_set_state``
calls ``_restore_extra`` and then ``_build_net()``, so ``_build_net`` must only need what
``_restore_extra`` sets (shapes: number of features, tokens, channels).
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from core.detectors._training import (
    Progress,
    TorchTrainingConfig,
    TrainingHistory,
    autocast,
    load_arrays_into,
    resolve_device,
    split_by_time,
    state_to_arrays,
    train_model,
)
from core.detectors.base import ConfigT, Detector

LEARNED_PREFIX = "learned/"
"""Prefix of the non-weight arrays in model.safetensors (a state_dict key never has '/')."""

LossOutput = torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]


@dataclasses.dataclass(frozen=True)
class ComponentHistory(TrainingHistory):
    """A ``TrainingHistory`` plus named loss components per check (e.g. recon, kl):
    ``components[name][i]`` is the training mean since check i-1, ``val_components`` the
    validation mean at check i (empty without validation)."""

    components: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    val_components: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {
            "components": {k: list(v) for k, v in self.components.items()},
            "val_components": {k: list(v) for k, v in self.val_components.items()}}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ComponentHistory:
        values = values or {}
        base = TrainingHistory.from_dict(values)

        def read(key: str) -> dict[str, tuple[float, ...]]:
            return {str(k): tuple(float(x) for x in v)
                    for k, v in (values.get(key) or {}).items()}

        return cls(**dataclasses.asdict(base), components=read("components"),
                   val_components=read("val_components"))


class _ComponentMeter:
    """Sums of named loss components (weighted by rows) between checks, train and eval apart."""

    def __init__(self) -> None:
        self.sums: dict[bool, dict[str, torch.Tensor]] = {True: {}, False: {}}
        self.counts: dict[bool, int] = {True: 0, False: 0}
        self.history: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}

    def add(self, training: bool, components: dict[str, torch.Tensor], rows: int) -> None:
        sums = self.sums[training]
        for name, value in components.items():
            part = value.detach().float().mean() * rows
            sums[name] = sums[name] + part if name in sums else part
        self.counts[training] += rows

    def snapshot(self) -> None:
        """Close a check: the means since the last one become one history entry each."""
        if self.counts[True] == 0:  # the final progress call, after the last check
            return
        for training in (True, False):
            count = self.counts[training]
            for name, total in self.sums[training].items():
                self.history[training].setdefault(name, []).append(float(total) / max(count, 1))
            self.sums[training], self.counts[training] = {}, 0


class TorchDetector(Detector[ConfigT]):
    """Base of the torch detectors: implement the hooks below, inherit ``fit``, save, load.

    Learned: what the hooks set, plus ``net_`` (eval mode, on the device) and ``history_``.
    """

    description: ClassVar[str] = "training"
    """Label of the progress bar and the progress messages."""
    net_: nn.Module
    history_: ComponentHistory
    train_step_: int
    step_budget_: int

    # -- hooks ------------------------------------------------------------------------------
    def _fit_inputs(self, data: Any, y: np.ndarray | None) -> list[np.ndarray]:
        """Check ``data``, learn its metadata, return raw row-aligned arrays."""
        raise NotImplementedError

    def _validation_inputs(self, validation: Any) -> list[np.ndarray]:
        """Raw arrays of an explicit validation set (checked against what fit learned)."""
        raise NotImplementedError

    def _split(self, raw: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Train and validation row positions when fit gets no ``validation``."""
        cfg: TorchTrainingConfig = self.config  # type: ignore[assignment]
        return split_by_time(len(raw[0]), cfg.validation_fraction)

    def _fit_scaler(self, train_raw: list[np.ndarray]) -> None:
        """Learn scaling statistics from the training rows (default: none)."""

    def _training_arrays(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        """Raw arrays -> the net's training inputs (default: unchanged)."""
        return raw

    def _select_rows(self, train: list[np.ndarray], val: list[np.ndarray] | None
                     ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """The rows the net trains and validates on (default: all, in order)."""
        return train, val

    def _bucket_lengths(self, train: list[np.ndarray]) -> np.ndarray | None:
        """Per-row lengths for length-bucketed batches (sequence models), or None."""
        return None

    def _build_net(self) -> nn.Module:
        raise NotImplementedError

    def _batch_loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> LossOutput:
        """Scalar loss of a batch, or (loss, {component name: per-row or scalar tensor})."""
        raise NotImplementedError

    def _calibrate(self, data: Any) -> None:
        """Runs after training with the fitted net (default: nothing)."""

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned metadata (JSON-able) and arrays besides the net's weights."""
        return {}, {}

    def _restore_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Inverse of ``_extra_state`` (runs before ``_build_net`` when loading)."""

    # -- the skeleton -----------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_")

    @property
    def device(self) -> torch.device:
        """Where the fitted net lives."""
        return next(self.net_.parameters()).device

    def autocast(self) -> AbstractContextManager[Any]:
        """bf16 autocast on CUDA, nothing on CPU (for scoring code that wants it)."""
        return autocast(self.device)  # type: ignore[no-any-return]

    def fit(self, data: Any, y: np.ndarray | None = None, *, validation: Any = None,
            progress: Progress | None = None) -> Self:
        """Train on ``data`` (sorted by time). Early stopping uses ``validation`` when given,
        else the latest ``config.validation_fraction`` of ``data``."""
        train, val = self.prepare_fit(data, y, validation=validation)
        self._train(train, val, progress)
        self._calibrate(data)
        return self

    def prepare_fit(self, data: Any, y: np.ndarray | None = None, *, validation: Any = None,
                    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Everything ``fit`` does before the training loop: check the data, learn its
        metadata and scaling, and return the net's (train, validation) arrays. A distributed
        run (core.scale.ray_train) calls it once, then runs ``train_prepared`` per worker."""
        raw = self._fit_inputs(data, y)
        if validation is None:
            train_idx, val_idx = self._split(raw)
            train_raw = [a[train_idx] for a in raw]
            val_raw = [a[val_idx] for a in raw] if len(val_idx) else None
        else:
            self._check_input(validation)
            train_raw, val_raw = raw, self._validation_inputs(validation)
        self._fit_scaler(train_raw)
        train = self._training_arrays(train_raw)
        val = None if val_raw is None else self._training_arrays(val_raw)
        train, val = self._select_rows(train, val)
        if val is not None and len(val[0]) == 0:
            val = None
        return train, val

    def train_prepared(self, train: list[np.ndarray], val: list[np.ndarray] | None) -> None:
        """The training loop alone, on arrays from ``prepare_fit`` (no progress)."""
        self._train(train, val, None)

    def finish_fit(self, data: Any, state: tuple[dict[str, Any], dict[str, np.ndarray]],
                   ) -> Self:
        """Take a net trained elsewhere (``_get_state`` of the trained copy), then calibrate
        on ``data`` as ``fit`` does."""
        self._set_state(*state)
        self.train_step_ = int(self.history_.n_steps)
        self.step_budget_ = int(self.history_.step_budget)
        self._calibrate(data)
        return self

    def _train(self, train: list[np.ndarray], val: list[np.ndarray] | None,
               progress: Progress | None) -> None:
        cfg: TorchTrainingConfig = self.config  # type: ignore[assignment]
        meter = _ComponentMeter()
        self.train_step_ = 0
        self.step_budget_ = cfg.step_budget(len(train[0]))[0]

        def batch_loss(net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            out = self._batch_loss(net, batch)
            loss, components = out if isinstance(out, tuple) else (out, {})
            if components:
                meter.add(net.training, components, len(batch[0]))
            if net.training:
                self.train_step_ += 1
            return loss

        def on_check(fraction: float, message: str) -> None:
            meter.snapshot()
            if progress is not None:
                progress(fraction, message)

        net, history = train_model(self._build_net, batch_loss, train, cfg, val, on_check,
                                   self.description, lengths=self._bucket_lengths(train))
        self.net_ = net
        self.history_ = ComponentHistory(
            **dataclasses.asdict(history),
            components={k: tuple(v) for k, v in meter.history[True].items()},
            val_components={k: tuple(v) for k, v in meter.history[False].items()})

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        extra, extra_arrays = self._extra_state()
        arrays = state_to_arrays(self.net_)
        arrays.update({LEARNED_PREFIX + k: np.asarray(v) for k, v in extra_arrays.items()})
        return extra | {"history": self.history_.to_dict()}, arrays

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        cfg: TorchTrainingConfig = self.config  # type: ignore[assignment]
        extra = {k[len(LEARNED_PREFIX):]: v for k, v in arrays.items()
                 if k.startswith(LEARNED_PREFIX)}
        weights = {k: v for k, v in arrays.items() if not k.startswith(LEARNED_PREFIX)}
        self._restore_extra(state, extra)
        net = self._build_net()
        load_arrays_into(net, weights)
        self.history_ = ComponentHistory.from_dict(state.get("history"))
        self.net_ = net.to(resolve_device(cfg.device, strict=False)).eval()


def linear_warmup(step: int, budget: int, fraction: float) -> float:
    """Weight in [0, 1] at optimiser step ``step`` (0-based): rises linearly from 1/n to 1
    over the first ``fraction`` of ``budget`` (n steps), then stays 1; 1 when ``fraction``
    is 0."""
    n = int(round(fraction * budget))
    if n <= 0:
        return 1.0
    return min(1.0, (step + 1) / n)

