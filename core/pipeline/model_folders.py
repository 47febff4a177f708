"""Model folders that appear whole or not at all.

A new model is written under a hidden partial name (``.partial-<pid>-<model id>``), registered
(committed), then renamed to its id. A process killed before the commit leaves only a partial
folder of an unregistered model, which the next training in that store removes once its
process is gone; one killed between the commit and the rename leaves a registered model whose
partial folder the first reader renames into place (``model_folder``).

Where: the registry holds the folder's path relative to the store's folder (a moved store
finds its ``models/`` beside it) and, as ``origin_path``, where it was written. A copy of a
store made without its models folder falls back to the origin only when that folder still
matches the checksum the store recorded, and says so in a warning; otherwise it asks to copy
the folder or to train again. Rows from before v10 hold an absolute ``path``: the store's own
``models/<id>`` is preferred, then that path, with the same warning when it lies outside the
store's folder.
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
from core.pipeline.model_digest import folder_digest, verify_folder
from core.store import Store

log = logging.getLogger(__name__)

PARTIAL_PREFIX = ".partial-"


def partial_folder(store: Store, models_dir: Path, model_id: str) -> Path:
    """Where to write model ``model_id`` until it is registered; first sweeps the leftovers
    of killed runs (see ``sweep_partial_folders``)."""
    sweep_partial_folders(store, models_dir)
    return models_dir / f"{PARTIAL_PREFIX}{os.getpid()}-{model_id}"


def register_model_folder(store: Store, partial: Path, params: dict[str, Any]) -> Path:
    """Register the model written in ``partial`` (``store.models.register`` with ``params``,
    its ``path`` filled in) and rename the folder to the model's id; if the registration fails,
    nothing is left."""
    folder = partial.parent / str(params["model_id"])
    make_private(partial.parent)  # <store dir>/models: the product's own folder
    make_tree_private(partial)  # weights and specs: 0600 files in 0700 folders
    try:
        digest = folder_digest(partial)  # the store, not the folder, vouches for the files
        with store.transaction():
            store.models.register(**params, path=_relative_to_store(store, folder),
                                  origin_path=str(folder.resolve()), digest=digest)
            crash_point("train.before_commit")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    crash_point("train.after_commit")
    partial.rename(folder)
    return folder


def model_folder(row: dict[str, Any], store: Store | None = None) -> Path:
    """The folder of registered model ``row`` in ``store``, checked against the checksum the
    store recorded; completes a rename that a killed training left undone. ModelError when it
    is missing or its files changed."""
    base = _store_dir(store)
    recorded = Path(str(row["path"]))
    origin = _text(row.get("origin_path")) or (str(recorded) if recorded.is_absolute() else None)
    if recorded.is_absolute():  # registered before v10
        candidates = [base / "models" / recorded.name] if base is not None else []
    else:
        candidates = [base / recorded] if base is not None else []
    own = next((c for c in candidates if _complete(c)), None)
    folder = own
    if folder is None and origin is not None and _complete(Path(origin)):
        folder = Path(origin)
        if base is not None and not folder.resolve().is_relative_to(base.resolve()):
            log.warning(
                "model %s: using its folder at %s, where it was trained, because the store's "
                "own %s is missing (a copied or moved store). Copy that folder beside the "
                "store to make the copy independent.", row.get("model_id", folder.name),
                folder, candidates[0] if candidates else "models/ folder")
    if folder is None:
        where = candidates[0] if candidates else recorded
        raise ModelError(
            f"model folder must exist, got a missing {where}. The model files were moved or "
            f"deleted (copy the store's models/ folder with it): train "
            f"{row.get('detector', 'the model')} again."
        )
    verify_folder(folder, _text(row.get("digest")), str(row.get("model_id", folder.name)))
    return folder


def _complete(folder: Path) -> bool:
    """``folder`` exists, after finishing a rename a killed training left undone."""
    if not folder.exists():
        pending = sorted(folder.parent.glob(f"{PARTIAL_PREFIX}*-{folder.name}"))
        if pending:
            pending[-1].rename(folder)
            log.info("completed the interrupted save of model %s", folder.name)
    return folder.exists()


def _store_dir(store: Store | None) -> Path | None:
    if store is None or str(store.path) == ":memory:":
        return None
    return store.path.resolve().parent


def _relative_to_store(store: Store, folder: Path) -> str:
    """``folder`` relative to the store's folder (absolute for an in-memory store)."""
    base = _store_dir(store)
    if base is None:
        return str(folder.resolve())
    return os.path.relpath(folder.resolve(), base)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value) or None


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
    return store.models.exists(model_id)


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
