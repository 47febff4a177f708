"""Model folders that appear whole or not at all.

A new model is written under a hidden partial name (``.partial-<pid>-<model id>``), registered
(committed), then renamed to its id. A process killed before the commit leaves only a partial
folder of an unregistered model, which the next training in that store removes once its
process is gone; one killed between the commit and the rename leaves a registered model whose
partial folder the first reader renames into place (``model_folder``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from core.errors import ModelError
from core.faults import crash_point
from core.files import make_private, make_tree_private
from core.store import Store

log = logging.getLogger(__name__)

PARTIAL_PREFIX = ".partial-"


def partial_folder(store: Store, models_dir: Path, model_id: str) -> Path:
    """Where to write model ``model_id`` until it is registered; first sweeps the leftovers
    of killed runs (see ``sweep_partial_folders``)."""
    sweep_partial_folders(store, models_dir)
    return models_dir / f"{PARTIAL_PREFIX}{os.getpid()}-{model_id}"


def register_model_folder(store: Store, partial: Path, params: dict[str, Any]) -> Path:
    """Register the model written in ``partial`` (``register_model`` with ``params``, its
    ``path`` filled in) and rename the folder to the model's id; if the registration fails,
    nothing is left."""
    folder = partial.parent / str(params["model_id"])
    make_private(partial.parent)  # <store dir>/models: the product's own folder
    make_tree_private(partial)  # weights and specs: 0600 files in 0700 folders
    try:
        with store.transaction():
            store.run("register_model", {**params, "path": str(folder.resolve())})
            crash_point("train.before_commit")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    crash_point("train.after_commit")
    partial.rename(folder)
    return folder


def model_folder(row: dict[str, Any]) -> Path:
    """The folder of registered model ``row``, completing a rename that a killed training left
    undone; ModelError when it is missing."""
    folder = Path(row["path"])
    if not folder.exists():
        pending = sorted(folder.parent.glob(f"{PARTIAL_PREFIX}*-{folder.name}"))
        if pending:
            pending[-1].rename(folder)
            log.info("completed the interrupted save of model %s", folder.name)
    if not folder.exists():
        raise ModelError(
            f"model folder must exist, got a missing {folder}. The model files were moved or "
            f"deleted: train {row.get('detector', 'the model')} again."
        )
    return folder


def sweep_partial_folders(store: Store, models_dir: Path) -> list[Path]:
    """Remove partial folders of models not registered in ``store`` whose writing process no
    longer runs; returns them. (A store sharing the folder could have registered one in the
    instant before its process was killed: that model then asks to be trained again.)"""
    removed: list[Path] = []
    if not models_dir.is_dir() or os.name == "nt":  # no safe liveness probe on Windows
        return removed
    for path in models_dir.glob(f"{PARTIAL_PREFIX}*"):
        pid_text, _, model_id = path.name[len(PARTIAL_PREFIX):].partition("-")
        if (pid_text.isdigit() and not _running(int(pid_text))
                and not _registered(store, model_id)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %d half-written model folder(s) of killed runs", len(removed))
    return removed


def _registered(store: Store, model_id: str) -> bool:
    return not store.frame("model_by_id", {"model_id": model_id}).empty


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
