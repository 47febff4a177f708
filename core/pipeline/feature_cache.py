"""Session features materialised beside the store, so rescoring reads them instead of
rebuilding them from the events.

A full build (every session) of a feature spec is written to
``<store dir>/feature_cache/<store file name>/``: the float32 matrix as ``.npy`` (read back
memory-mapped, copy-on-write), the per-session meta as Parquet, and last a JSON header that
names both and says what they were built from: the spec, the events' fingerprint (event
count, the last ingest's id and start time: any ingest changes it, a recreated store too) and
the code version. The header is renamed into place after the data files, so a reader sees a
whole entry or none; any mismatch or unreadable file is a miss, and the caller rebuilds. The
two most recently written specs of a store are kept, and the folders of stores that are gone
from the directory are removed when another store writes. ``ANOMALYST_FEATURE_CACHE=off``
turns it off (a cold build every time).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import core
from core.datasets import FeatureMatrix
from core.files import atomic_file, make_private, private_dir
from core.store import Store

log = logging.getLogger(__name__)

FORMAT = 2  # bump when feature values change (2: text features by sparse means, 2026-12-05)
KEEP = 2  # specs kept per store (most recently written)
SETTLE_S = 300.0  # an unreferenced file younger than this may be another writer's, in progress
ENV = "ANOMALYST_FEATURE_CACHE"


def enabled() -> bool:
    return os.environ.get(ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def cache_dir(store: Store) -> Path | None:
    """Where ``store``'s cached features live; None for an in-memory store."""
    if str(store.path) == ":memory:":
        return None
    return store.path.parent / "feature_cache" / store.path.name


def events_fingerprint(store: Store, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the session features of ``store`` are a function of, besides the spec: the
    events, and the labels too when ``spec`` has history features (their delayed label
    risk moves with every decision and label ingest)."""
    n_events, last_id, last_at = store.summary.events_fingerprint()
    out = {"events": int(n_events), "last_ingest_id": last_id,
           "last_ingest_at": None if last_at is None else last_at.isoformat(),
           "code": core.__version__, "format": FORMAT}
    if spec and _reads_labels(spec):
        out["labels"] = {k: list(v) for k, v in sorted(store.labels.versions().items())}
    return out


def _reads_labels(spec: dict[str, Any]) -> bool:
    """Whether a saved input spec has history features (``{"features": {"history": ...}}``)."""
    features = spec.get("features")
    return bool(isinstance(features, dict) and features.get("history"))


def _plain(spec: dict[str, Any]) -> Any:
    """``spec`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(spec, default=str))


def _header_path(folder: Path, spec_hash: str) -> Path:
    if not spec_hash.isalnum():  # names a file: hex digests only
        raise ValueError(f"feature hash must be alphanumeric, got {spec_hash!r}")
    return folder / f"{spec_hash}.json"


def read(store: Store, spec: dict[str, Any]) -> tuple[FeatureMatrix, pd.DataFrame] | None:
    """The cached (matrix, meta) of a full build of ``spec`` on the store's current events,
    or None (no entry, another fingerprint, or an unreadable file)."""
    entry = _current(store, spec)
    return None if entry is None else (entry.matrix, entry.meta)


@dataclass(frozen=True)
class _Entry:
    matrix: FeatureMatrix
    meta: pd.DataFrame
    index: pd.Index  # session_id -> row


_LOADED: dict[tuple[str, str], _Entry] = {}
"""Entries this process read, by (header path, data file): a data file is written once under a
new name, so its name says which build it holds. Two are kept (the memory maps cost little)."""
_LOADED_LOCK = threading.Lock()


def _load(folder: Path, header_path: Path, header: dict[str, Any]) -> _Entry | None:
    key = (str(header_path), str(header.get("values")))
    with _LOADED_LOCK:
        found = _LOADED.get(key)
    if found is not None:
        return found
    try:
        values = np.load(folder / header["values"], mmap_mode="c", allow_pickle=False)
        meta = pd.read_parquet(folder / header["meta"])
        names = tuple(header["names"])
        if values.dtype != np.float32 or values.shape != (len(meta), len(names)):
            raise ValueError(f"shape {values.shape} does not match the header")
    except (OSError, ValueError, KeyError) as exc:
        log.warning("feature cache entry %s is unreadable (%s); rebuilding", header_path, exc)
        return None
    session_ids = meta["session_id"].to_numpy(dtype=object)
    entry = _Entry(FeatureMatrix(session_ids, values, names), meta, pd.Index(session_ids))
    with _LOADED_LOCK:
        for old in [k for k in _LOADED if k[0] == key[0]] + list(_LOADED)[:-1]:
            _LOADED.pop(old, None)
        _LOADED[key] = entry
    return entry


def _current(store: Store, spec: dict[str, Any]) -> _Entry | None:
    """The entry of a full build of ``spec`` on the store's current events, or None."""
    folder = cache_dir(store)
    if folder is None or not enabled() or not spec.get("hash"):
        return None
    header_path = _header_path(folder, str(spec["hash"]))
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if header.get("spec") != _plain(spec) or header.get("fingerprint") != _plain(
            events_fingerprint(store, spec)):
        return None
    return _load(folder, header_path, header)


def read_rows(store: Store, spec: dict[str, Any], session_ids: list[str]
              ) -> tuple[FeatureMatrix, pd.DataFrame] | None:
    """The cached rows of ``session_ids`` (in that order) from a full build of ``spec`` on the
    current events, or None when there is no such entry or it lacks one of them. At 1M
    sessions a build scoped to a few sessions still scans every event (~10 s); these rows
    come from the memory-mapped matrix in milliseconds once the process has read its index."""
    entry = _current(store, spec)
    if entry is None:
        return None
    rows = entry.index.get_indexer(pd.Index([str(s) for s in session_ids]))
    if (rows < 0).any():
        return None
    meta = entry.meta.iloc[rows].reset_index(drop=True)
    return entry.matrix.take(rows), meta


def write(store: Store, spec: dict[str, Any], data: FeatureMatrix, meta: pd.DataFrame) -> None:
    """Cache a full build of ``spec``; a failure to write is logged, never raised."""
    folder = cache_dir(store)
    if folder is None or not enabled() or not spec.get("hash"):
        return
    spec_hash = str(spec["hash"])
    token = uuid.uuid4().hex[:12]
    values_name, meta_name = f"{spec_hash}-{token}.npy", f"{spec_hash}-{token}.parquet"
    header = {"spec": _plain(spec), "fingerprint": events_fingerprint(store, spec),
              "names": list(data.names), "values": values_name, "meta": meta_name,
              "rows": len(meta)}
    try:
        private_dir(folder)  # features are data: 0700 folders, 0600 files
        make_private(folder.parent)
        _write_atomic(folder / values_name, lambda f: np.save(
            f, np.ascontiguousarray(data.values, dtype=np.float32), allow_pickle=False))
        _write_atomic(folder / meta_name, lambda f: meta.to_parquet(f, index=False))
        _write_atomic(_header_path(folder, spec_hash),
                      lambda f: f.write(json.dumps(header).encode("utf-8")))
        _evict(folder)
        _sweep_orphans(folder.parent, store.path.parent)
    except (OSError, ValueError) as exc:
        log.warning("could not cache the session features in %s (%s); scoring rebuilds them",
                    folder, exc)


def _write_atomic(path: Path, writer: Any) -> None:
    # A cache: after a power cut it is rebuilt, so the data is not fsynced.
    with atomic_file(path, durable=False) as handle:
        writer(handle)


def _sweep_orphans(root: Path, store_dir: Path) -> None:
    """Remove the cache folders of stores that no longer exist in ``store_dir`` (deleted or
    moved: their entries could never be read again), once nothing in them is recent."""
    now = time.time()
    for folder in root.iterdir():
        if not folder.is_dir() or (store_dir / folder.name).exists():
            continue
        try:
            settled = all(now - f.stat().st_mtime >= SETTLE_S for f in folder.iterdir())
        except OSError:  # another process is sweeping it too
            continue
        if settled:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the feature cache of %s: the store is gone", folder.name)


def _evict(folder: Path) -> None:
    """Keep the KEEP newest headers and the files they name; drop stale half-writes."""
    headers = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in headers[KEEP:]:
        old.unlink(missing_ok=True)
    kept: set[str] = set()
    for path in headers[:KEEP]:
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
            kept |= {header["values"], header["meta"]}
        except (OSError, ValueError, KeyError):
            continue
    now = time.time()
    for path in folder.iterdir():
        if path.suffix == ".json" or path.name in kept or now - path.stat().st_mtime < SETTLE_S:
            continue
        path.unlink(missing_ok=True)  # an open memory map stays valid on POSIX
