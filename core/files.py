"""Files and folders the product writes are its owner's alone: 0600 files, 0700 folders.

The CLI has no login; file permissions are its security boundary (docs/RELIABILITY.md), so the
store, its WAL, the feature cache, model folders, score exports and reports must not be
readable by other local users. Writers call these helpers; files created by libraries that take
a path (DuckDB, numpy, fpdf2) are made private right after with ``make_private``, and
``private_umask`` covers whole trees written by code that does not know about permissions.

``atomic_file`` and ``atomic_dir`` write a file or a folder all or nothing: a reader (or a
process killed halfway) sees the old version or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700
_UMASK = 0o077


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) as 0700 folders; an existing folder is left as it
    is unless this process owns it and it is open to others (then it is tightened)."""
    folder = Path(path)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(OSError):
            os.chmod(created, DIR_MODE)  # mkdir's mode is filtered by the umask
    return folder


def make_private(path: str | os.PathLike[str]) -> None:
    """chmod 0600 (files) or 0700 (folders) when this process owns ``path``; else leave it."""
    target = Path(path)
    try:
        info = target.stat()
    except OSError:
        return
    if info.st_uid != os.getuid():
        return
    mode = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
    if stat.S_IMODE(info.st_mode) != mode:
        with contextlib.suppress(OSError):
            os.chmod(target, mode)


def make_tree_private(root: str | os.PathLike[str]) -> None:
    """``make_private`` on ``root`` and everything under it."""
    make_private(root)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            make_private(Path(folder) / name)


@contextlib.contextmanager
def private_file(path: str | os.PathLike[str], mode: str = "w",
                 encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open ``path`` for writing, created 0600 (an existing file is truncated and tightened)."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    make_private(target)
    binary = "b" in mode
    with os.fdopen(fd, mode, encoding=None if binary else encoding,
                   newline=None if binary else "") as handle:
        yield handle


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created inside the block are 0600/0700 (process-wide umask 077).

    The umask is per process; the few writers that use this run in the CLI or in a
    dashboard request that writes only the product's own files."""
    previous = os.umask(_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb", *,
                encoding: str | None = "utf-8", durable: bool = True) -> Iterator[IO]:
    """Write ``path`` all or nothing: into a 0600 temp file beside it, then renamed over it.

    ``durable`` fsyncs the data before the rename, so a power cut cannot leave an empty file
    under the new name (a cache that is rebuilt anyway may skip it). On any error the temp
    file is removed and ``path`` is left as it was."""
    target = Path(path)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        binary = "b" in mode
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else "") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh folder beside ``path`` to fill; on success it takes ``path``'s place (an
    existing folder is moved aside first and removed after), on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        yield tmp
        if not target.exists():
            os.replace(tmp, target)
            return
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
