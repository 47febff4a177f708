"""A model folder's checksum, recorded in the store when the model is registered.

The weights' SHA-256 in ``config.json`` proves only that the two files beside each other agree:
whoever replaces the weights can update it too, and a valid but wrong weights file then loads
(it silently zeroed every score). The registry in the store is the reference instead: the
digest of every file in the folder is written in the same transaction that registers the model,
and every load compares the folder with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.errors import ModelError

_CHUNK = 1 << 20


def folder_digest(folder: Path) -> str:
    """SHA-256 over every file under ``folder``: its relative path and its content's hash."""
    outer = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                inner.update(chunk)
        outer.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        outer.update(inner.digest())
    return outer.hexdigest()


def verify_folder(folder: Path, expected: str | None, model_id: str) -> None:
    """ModelError unless ``folder`` has the digest the store recorded (rows registered before
    digests existed have none and are checked by their own files only)."""
    if not expected:
        return
    actual = folder_digest(folder)
    if actual != expected:
        raise ModelError(
            f"model {model_id} files must match the checksum recorded in the store, got "
            f"different files in {folder} (a file was replaced or changed). Restore the "
            "original folder or train the model again."
        )
