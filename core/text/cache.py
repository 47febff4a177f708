"""Text embeddings cached in the store (``text_embeddings``: encoder, md5 of the text, vector).

Only texts not yet cached for the encoder are embedded; a second call over the same texts
embeds nothing. A read-only store (the dashboard) or a bare connection without the table
still gets embeddings, they are just not kept.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from core.store.text import Texts
from core.text.embeddings import TextEncoder, encoder_name, load_encoder

log = logging.getLogger(__name__)

_LOOKUP_CHUNK = 100_000
"""Hashes bound per cache lookup (keeps one bound list a few MB)."""


@dataclass(frozen=True)
class CacheStats:
    """How ``embed_texts`` served its texts: distinct texts, from the cache, newly embedded."""

    n_distinct: int
    n_cached: int
    n_embedded: int
    is_stored: bool


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """md5 hex digests of the UTF-8 texts (DuckDB's ``md5`` gives the same)."""
    return np.array([hashlib.md5(t.encode("utf-8")).hexdigest() for t in texts], dtype=object)


def cache_is_writable(con: duckdb.DuckDBPyConnection) -> tuple[bool, bool]:
    """(the cache table exists, the store can be written)."""
    texts = Texts(con)
    return texts.has_cache_table(), not texts.is_read_only()


def embed_texts(
    con: duckdb.DuckDBPyConnection,
    texts: Sequence[str],
    *,
    encoder: TextEncoder | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, CacheStats]:
    """Unit-length embeddings (len(texts), dim) of ``texts`` in order, served from the cache
    where possible; new ones are embedded (loading the encoder only then) and cached."""
    name = encoder.name if encoder is not None else encoder_name()
    hashes = text_hashes(texts)
    unique, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    has_table, writable = cache_is_writable(con)
    found: dict[str, np.ndarray] = {}
    if has_table and len(unique):
        found = _lookup(Texts(con), name, unique)
    missing = np.array([h not in found for h in unique], dtype=bool)
    vectors: np.ndarray | None = None
    if missing.any():
        encoder = encoder or load_encoder()
        new = encoder.encode([texts[i] for i in first[missing]], progress=progress)
        if has_table and writable:
            _store(Texts(con), name, unique[missing], new)
        elif has_table:
            log.info("store is read-only: %d new text embeddings are not cached", len(new))
        dim = new.shape[1]
        vectors = np.empty((len(unique), dim), dtype=np.float32)
        vectors[missing] = new
    if found:
        dim = next(iter(found.values())).shape[0]
        if vectors is None:
            vectors = np.empty((len(unique), dim), dtype=np.float32)
        cached_rows = np.flatnonzero(~missing)
        vectors[cached_rows] = np.stack([found[h] for h in unique[cached_rows]])
    if vectors is None:  # no texts at all
        vectors = np.empty((0, 0), dtype=np.float32)
    stats = CacheStats(len(unique), int((~missing).sum()), int(missing.sum()),
                       has_table and writable)
    log.info("text embeddings: %d distinct texts, %d from the cache, %d embedded",
             stats.n_distinct, stats.n_cached, stats.n_embedded)
    return vectors[inverse] if len(texts) else vectors, stats


def _lookup(texts: Texts, name: str, hashes: np.ndarray) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(hashes), _LOOKUP_CHUNK):
        table = texts.cached_embeddings(name, hashes[start:start + _LOOKUP_CHUNK].tolist())
        if table.num_rows == 0:
            continue
        column = table.column("embedding").combine_chunks()
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        matrix = flat.reshape(table.num_rows, -1)
        for h, row in zip(table.column("text_hash").to_pylist(), matrix, strict=True):
            found[h] = row
    return found


def _store(texts: Texts, name: str, hashes: np.ndarray, vectors: np.ndarray) -> None:
    dim = vectors.shape[1]
    table = pa.table({
        "text_hash": pa.array(hashes.tolist(), type=pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel()), dim),
    })
    texts.insert_embeddings(name, table)


def cache_embeddings(con: duckdb.DuckDBPyConnection, texts: Sequence[str],
                     vectors: np.ndarray) -> None:
    """Cache embeddings computed elsewhere (the scoring service's encoder) under the
    installed encoder; texts already cached keep theirs."""
    has_table, writable = cache_is_writable(con)
    if not (has_table and writable) or not len(texts):
        return
    hashes = text_hashes(texts)
    unique, first = np.unique(hashes, return_index=True)
    _store(Texts(con), encoder_name(), unique, np.asarray(vectors, np.float32)[first])
