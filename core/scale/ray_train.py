"""Data-parallel training of the torch detectors with Ray Train (``train --engine ray``).

The driver builds the features from the store and runs the detector's ``prepare_fit`` once:
the scalers and vocabularies are learned there, on all the training rows, before any worker
starts. Ray Train's ``TorchTrainer`` then runs the training loop on each worker with
``torch.distributed`` set up (gloo on CPUs, NCCL on GPUs): every worker draws the same global
mini-batches, computes the loss on its slice and the gradients are summed, weighted by each
slice's share (core.detectors._training.DataParallel), so a step is one step on the whole
batch. Worker 0 reports the trained weights as a checkpoint; the driver loads them,
calibrates, and the pipeline saves and registers the model folder as local training does.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, ModelError

_STATE = "state.json"
_ARRAYS = "arrays.npz"


def ray_fitter(workers: int | None = None, address: str | None = None,
               use_gpu: bool = False) -> Any:
    """A ``fit(model, data, fit_kwargs)`` for core.pipeline.training that trains on Ray."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}.")

    def fit(model: Any, data: Any, fit_kwargs: dict[str, Any]) -> None:
        fit_with_ray(model, data, fit_kwargs, workers=workers, address=address,
                     use_gpu=use_gpu)
    return fit


def fit_with_ray(model: Any, data: Any, fit_kwargs: dict[str, Any], *,
                 workers: int | None = None, address: str | None = None,
                 use_gpu: bool = False) -> None:
    """Fit torch detector ``model`` on ``data`` with ``workers`` Ray Train workers."""
    from core.detectors.torch_detector import TorchDetector
    from core.scale.ray_engine import require_ray, start_ray

    if not isinstance(model, TorchDetector):
        raise ConfigError(f"engine 'ray' trains the torch detectors, got {type(model).__name__}"
                          ", which trains in one process: use --engine local.")
    ray = require_ray()
    train, val = model.prepare_fit(data, **fit_kwargs)
    start_ray(address)
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    cpus = int(ray.cluster_resources().get("CPU", 1))
    n_workers = workers or max(1, min(cpus, 2))
    payload = ray.put((model, train, val))
    with tempfile.TemporaryDirectory(prefix="anomalyst-ray-train-") as storage:
        trainer = TorchTrainer(
            _train_loop, train_loop_config={"payload": payload},
            scaling_config=ScalingConfig(num_workers=n_workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": 1}),
            run_config=RunConfig(storage_path=storage, name="anomalyst-train",
                                 checkpoint_config=CheckpointConfig(num_to_keep=1)))
        result = trainer.fit()
        if result.checkpoint is None:
            raise ModelError(f"Ray training must end with the trained weights, got none "
                             f"({result.error or 'no error reported'}).")
        with result.checkpoint.as_directory() as folder:
            state = _read_state(Path(folder))
    model.finish_fit(data, state)


def _train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray
    import ray.train

    from core.detectors._training import data_parallel

    context = ray.train.get_context()
    model, train, val = ray.get(config["payload"])
    rank, world = context.get_world_rank(), context.get_world_size()
    with data_parallel(rank, world):
        model.train_prepared(train, val)
    if rank == 0:
        with tempfile.TemporaryDirectory() as folder:
            _write_state(Path(folder), model._get_state())
            ray.train.report({"steps": int(model.history_.n_steps)},
                             checkpoint=ray.train.Checkpoint.from_directory(folder))
    else:
        ray.train.report({"steps": int(model.history_.n_steps)})


def _write_state(folder: Path, state: tuple[dict[str, Any], dict[str, np.ndarray]]) -> None:
    meta, arrays = state
    (folder / _STATE).write_text(json.dumps(meta), encoding="utf-8")
    np.savez(folder / _ARRAYS, **arrays)


def _read_state(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    meta = json.loads((folder / _STATE).read_text(encoding="utf-8"))
    with np.load(folder / _ARRAYS) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, arrays
