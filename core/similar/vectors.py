"""Sessions as unit vectors, and the nearest stored sessions of one.

Representation (a decision, docs/FEATURES.md "Similar sessions"): a session is its row of
session features under the feature spec of the newest scored feature model (the spec whose
full build the feature cache holds, since scoring writes it), or, without such a model, a
spec learned from the store (most frequent event types, no text features). Each column is
robust-scaled (median and IQR, with the floor of the detectors' scaling,
``core.detectors._scaling``, for near-constant columns), clipped to ±``CLIP`` so one extreme
count cannot decide alone, and the row is L2-normalised. Similarity is the cosine (a dot
product of unit rows), distance ``1 - cosine``.

Rows come from the feature cache (the full matrix, memory-mapped) when it holds the spec on
the current events; else the full matrix is built once and cached (as scoring does); without
a feature model they are built for the needed sessions only. A :class:`VectorIndex` is a
float32 matrix of unit rows: a query is one matrix-vector product and an ``argpartition``
(~10 ms at 100k rows and ~90 columns; docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.datasets import FeatureMatrix
from core.errors import ConfigError
from core.store import Store

log = logging.getLogger(__name__)

CLIP = 10.0
"""Scaled values beyond ±CLIP are clipped (as the feature detectors clip)."""
SCALER_SAMPLE = 100_000
"""Rows the centre and scale are learned from (a seeded sample of the rows at hand)."""
LOO_SAMPLE = 2_000
"""Pool rows whose leave-one-out nearest distance calibrates the "no close match" cut."""


# --- the representation --------------------------------------------------------------------
def representation_spec(store: Store) -> dict[str, Any] | None:
    """The input spec of the newest scored model that reads session features, or None."""
    scored = store.models.scored()
    features = scored[scored["input_kind"] == "features"]
    for model_id in reversed(features["model_id"].tolist()):
        row = store.models.by_id(str(model_id)) or {}
        try:
            spec = json.loads(str(row.get("feature_spec") or ""))
        except ValueError:
            continue
        if isinstance(spec, dict) and spec.get("kind") == "features" and spec.get("features"):
            return spec
    return None


@dataclass
class Representation:
    """How a session becomes a unit vector: the feature spec, the scaling, and (when the
    feature cache held it) the full feature matrix to read query rows from."""

    spec: dict[str, Any]
    centre: np.ndarray
    scale: np.ndarray
    full: FeatureMatrix | None = None
    row_of: pd.Index | None = field(default=None, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.full.names) if self.full is not None else tuple(self._names)

    _names: tuple[str, ...] = ()

    def embed(self, values: np.ndarray) -> np.ndarray:
        """Unit rows (float32) of raw feature rows."""
        x = (np.asarray(values, dtype=np.float32) - self.centre) / self.scale
        np.clip(x, -CLIP, CLIP, out=x)
        x[~np.isfinite(x)] = 0.0
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.maximum(norms, 1e-6)).astype(np.float32, copy=False)

    def raw(self, store: Store | None, session_ids: Sequence[str]) -> np.ndarray:
        """Raw feature rows of ``session_ids`` (in that order): from the cached full matrix,
        the rest built from the store. ConfigError names unknown ids."""
        ids = [str(s) for s in session_ids]
        out = np.zeros((len(ids), len(self.centre)), dtype=np.float32)
        missing = list(range(len(ids)))
        if self.full is not None and self.row_of is not None:
            rows = self.row_of.get_indexer(ids)
            found = rows >= 0
            if found.any():
                out[found] = self.full.values[np.sort(rows[found])][
                    np.argsort(np.argsort(rows[found]))]
            missing = np.flatnonzero(~found).tolist()
        if missing:
            if store is None:
                raise ConfigError(
                    f"session must be one of the indexed sessions, got {ids[missing[0]]!r}. "
                    "Rebuild the index on an open store.")
            out[missing] = _build(store, self.spec, [ids[i] for i in missing]).values
        return out

    def vectors(self, store: Store | None, session_ids: Sequence[str]) -> np.ndarray:
        return self.embed(self.raw(store, session_ids))


def _build(store: Store, spec: dict[str, Any] | None, session_ids: list[str]) -> FeatureMatrix:
    from core.pipeline.inputs import build_input

    built = build_input(store, "features", spec, session_ids=sorted(set(session_ids)),
                        progress=False)
    data = built.data
    assert isinstance(data, FeatureMatrix)
    pos = pd.Index(data.session_ids).get_indexer(session_ids)
    return FeatureMatrix(np.asarray(session_ids, dtype=object), data.values[pos], data.names)


def build_representation(store: Store, needed: Sequence[str], *, seed: int = 0) -> tuple[
        Representation, np.ndarray]:
    """The representation of ``store`` and the unit vectors of ``needed`` (in that order).

    With a feature model: its spec's full matrix, from the feature cache, else built for every
    session once and written to the cache as scoring does (a build scoped to a few sessions
    costs about as much as a full one: ~10 s at 1M sessions, docs/BENCHMARKS.md), so every
    later query is a row lookup. The scaling is then learned from a sample of every session.
    Without one: a spec learned from the ``needed`` sessions, built for them only (queries of
    other sessions build their row)."""
    from core.pipeline import feature_cache

    needed = [str(s) for s in needed]
    spec = representation_spec(store)
    cached = feature_cache.read(store, spec) if spec else None
    if cached is None and spec:
        from core.pipeline.inputs import build_input

        built_all = build_input(store, "features", spec, progress=False)  # writes the cache
        reread = feature_cache.read(store, spec)  # memory-mapped rather than held, if written
        data = built_all.data
        assert isinstance(data, FeatureMatrix)
        cached = reread if reread is not None else (data, built_all.meta)
    rng = np.random.default_rng(seed)
    if cached is not None:
        full = cached[0]
        row_of = pd.Index(full.session_ids)
        n = len(row_of)
        sample = np.sort(rng.choice(n, min(n, SCALER_SAMPLE), replace=False))
        centre, scale = fit_scaler(np.asarray(full.values[sample]))
        rep = Representation(spec or {}, centre.astype(np.float32), scale.astype(np.float32),
                             full, row_of)
        return rep, rep.vectors(store, needed) if needed else _empty(rep)
    if not needed:
        raise ConfigError("sessions to index must be at least one, got none. Label or decide "
                          "some sessions first.")
    from core.features import build_session_features

    # no feature model: a spec learned from these sessions, without text features
    first = build_session_features(store.con, session_ids=sorted(set(needed)), text=False,
                                   progress=False)
    spec = {"kind": "features", "features": first.spec.to_dict(), "hash": first.spec.hash}
    pos = pd.Index(first.matrix.session_ids).get_indexer(needed)
    built = FeatureMatrix(np.asarray(needed, dtype=object), first.matrix.values[pos],
                          first.matrix.names)
    values = np.asarray(built.values, dtype=np.float32)
    sample = rng.choice(len(values), min(len(values), SCALER_SAMPLE), replace=False)
    centre, scale = fit_scaler(values[np.sort(sample)])
    rep = Representation(spec, centre.astype(np.float32), scale.astype(np.float32),
                         _names=tuple(built.names))
    return rep, rep.embed(values)


def _empty(rep: Representation) -> np.ndarray:
    return np.zeros((0, len(rep.centre)), dtype=np.float32)


def fit_scaler(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median, IQR/1.349) per column; a zero IQR falls back to the standard deviation, then
    to the floor of ``core.detectors._scaling`` (0.1 units, or 1% of a large constant). The
    same rule as the detectors' robust scaling, without importing the detectors (torch)."""
    x = np.asarray(values, dtype=np.float64)
    if x.shape[0] == 0:
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    q25, centre, q75 = np.percentile(x, [25, 50, 75], axis=0)
    scale = (q75 - q25) / 1.349
    fallback = x.std(axis=0)
    floor = np.maximum(0.1, 0.01 * np.abs(centre))
    scale = np.where(scale > 1e-12, scale, np.where(fallback > 1e-12, fallback, floor))
    return centre, scale


# --- the index -----------------------------------------------------------------------------
@dataclass
class VectorIndex:
    """Unit rows of some sessions; ``nearest`` answers a query by a dot product."""

    session_ids: np.ndarray
    vectors: np.ndarray  # (n, d) float32, unit rows
    _pos: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.session_ids = np.asarray(self.session_ids, dtype=object)
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        self._pos = pd.Index(self.session_ids)

    def __len__(self) -> int:
        return len(self.session_ids)

    def position(self, session_id: str) -> int:
        """The row of ``session_id``, -1 when it is not indexed."""
        return int(self._pos.get_indexer([str(session_id)])[0])

    def nearest(self, vector: np.ndarray, k: int, *, exclude: str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, similarities) of the ``k`` most similar rows, most similar first;
        ``exclude`` (a session id) is left out."""
        n = len(self)
        if n == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sims = self.vectors @ np.asarray(vector, dtype=np.float32)
        skip = self.position(exclude) if exclude is not None else -1
        if skip >= 0:
            sims[skip] = -np.inf
        k_eff = min(k, n - (skip >= 0))
        if k_eff <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-sims, k_eff - 1)[:k_eff] if k_eff < n else np.arange(n)
        top = top[np.isfinite(sims[top])]
        order = top[np.lexsort((top, -sims[top]))]
        return order, sims[order]

    def nearest_many(self, vectors: np.ndarray, k: int, *, exclude: Sequence[str | None] = (),
                     chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Row-wise ``nearest`` for a batch: (rows, similarities), each (m, k), most similar
        first (k capped at the index size; an excluded id gets -inf similarity)."""
        m = len(vectors)
        k_eff = min(k, len(self))
        rows = np.zeros((m, k_eff), dtype=np.int64)
        sims_out = np.zeros((m, k_eff), dtype=np.float32)
        if k_eff == 0:
            return rows, sims_out
        skip = (self._pos.get_indexer([str(e) for e in exclude]) if len(exclude)
                else np.full(m, -1))
        for start in range(0, m, chunk):
            block = np.asarray(vectors[start:start + chunk], dtype=np.float32) @ self.vectors.T
            own = skip[start:start + len(block)]
            hit = np.flatnonzero(own >= 0)
            block[hit, own[hit]] = -np.inf
            if k_eff == 1:
                top = block.argmax(axis=1)[:, None]
            elif k_eff < len(self):
                top = np.argpartition(-block, k_eff - 1, axis=1)[:, :k_eff]
            else:
                top = np.tile(np.arange(len(self)), (len(block), 1))
            vals = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            rows[start:start + len(block)] = np.take_along_axis(top, order, axis=1)
            sims_out[start:start + len(block)] = np.take_along_axis(vals, order, axis=1)
        return rows, sims_out


def distance(similarity: np.ndarray | float) -> np.ndarray | float:
    """Cosine distance, 0 (same direction) to 2."""
    return 1.0 - similarity


def loo_distance_cut(index: VectorIndex, *, quantile: float = 0.95,
                     sample: int = LOO_SAMPLE, seed: int = 0) -> float:
    """The ``quantile`` of leave-one-out nearest distances of (a sample of) the index's rows:
    a query farther than this from every row is farther than almost any indexed session is
    from its own nearest neighbour. ``inf`` below two rows."""
    n = len(index)
    if n < 2:
        return float("inf")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n, sample), replace=False))
    _, sims = index.nearest_many(index.vectors[rows], 1,
                                 exclude=[str(s) for s in index.session_ids[rows]])
    return float(np.quantile(distance(sims[:, 0].astype(np.float64)), quantile))
