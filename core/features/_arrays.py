"""Vectorised per-session reductions in numpy over events grouped into contiguous segments.

The session feature builder fetches each event column once (as numpy, through Arrow) and
reduces it here: segment sums/min/max, distinct (session, value) pairs and first uses. No
Python loop runs per session or per event.

String values (devices, IPs, items, ...) are compared by DuckDB's 64-bit ``hash``; NULL is
code 0 and every non-NULL value has its lowest bit set, so the two never mix. Two different
strings share a code only on a hash collision (probability about n^2 / 2^64 for n distinct
values of one column, < 1e-7 with a million distinct devices).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

# Fetching runs the store's SQL (core.store.features); kept reachable as ``A.fetch`` for the
# builders.
from core.store.features import fetch as fetch
from core.store.features import fetch_in_background as fetch_in_background


def hashed(expr: str) -> str:
    """SQL: 0 for NULL, otherwise an odd 64-bit hash of ``expr``."""
    return f"if(({expr}) IS NULL, 0::UBIGINT, hash({expr}) | 1::UBIGINT)"


ROW_BLOCK = 4096


def row_major(columns: list[np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """float32 matrix whose row i holds every column's value at ``rows[i]`` (at i when
    ``rows`` is None); NaN and infinities become 0.

    Blocks of rows are transposed in cache (faster than transposing the whole matrix at
    once; docs/BENCHMARKS.md, 'Measurements behind design choices'), then whole rows are
    gathered when ``rows`` is given; both steps split over up to 4 threads (numpy copies
    release the GIL).
    """
    n, d = (len(columns[0]) if columns else 0), len(columns)
    by_row = np.empty((n, d), dtype=np.float32)

    def transpose(lo: int, hi: int) -> None:
        for start in range(lo, hi, ROW_BLOCK):
            block = by_row[start:min(start + ROW_BLOCK, hi)]
            for j, column in enumerate(columns):
                block[:, j] = column[start:start + len(block)]
            np.copyto(block, 0.0, where=~np.isfinite(block))

    workers = max(1, min(4, os.cpu_count() or 1, n // ROW_BLOCK))
    with ThreadPoolExecutor(workers, thread_name_prefix="features-rows") as pool:
        _split(pool, transpose, n, workers)
        if rows is None:
            return by_row
        out = np.empty((len(rows), d), dtype=np.float32)

        def gather(lo: int, hi: int) -> None:
            np.take(by_row, rows[lo:hi], axis=0, out=out[lo:hi])

        _split(pool, gather, len(rows), workers)
    return out


def _split(pool: ThreadPoolExecutor, step: Callable[[int, int], None], size: int, parts: int
           ) -> None:
    """``step(lo, hi)`` over ``parts`` equal ranges of ``range(size)`` on ``pool``."""
    cuts = np.linspace(0, size, parts + 1).astype(np.int64)
    list(pool.map(step, cuts[:-1].tolist(), cuts[1:].tolist()))


def seg_starts(counts: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive segments of the given (positive) sizes."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def seg_sum(seg: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per-segment sum of ``weights`` (float64); ``seg`` need not be sorted."""
    return np.bincount(seg, weights=weights, minlength=n)[:n]


def seg_count(seg: np.ndarray, flags: np.ndarray, n: int) -> np.ndarray:
    """Per-segment number of True ``flags`` (int64)."""
    return np.bincount(seg[flags], minlength=n)[:n].astype(np.int64)


def dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense int64 codes 0..k-1 of ``values`` and k."""
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques)


def distinct_pairs(
    seg: np.ndarray, code: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (segment, value) pairs of non-zero ``code``s; ``seg`` must be sorted.

    Returns (segments, dense value ids, hash of each dense id), sorted by segment then id.
    Consecutive repeats are dropped before the sort, so mostly-constant columns cost little.
    """
    keep = code != 0
    if len(code) > 1:
        keep[1:] &= (code[1:] != code[:-1]) | (seg[1:] != seg[:-1])
    s, v = seg[keep].astype(np.int64), code[keep]
    ids, uniques = pd.factorize(v, sort=False)
    k = max(len(uniques), 1)
    key = np.sort(s * k + ids.astype(np.int64))
    if len(key) > 1:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return key // k, key % k, np.asarray(uniques, dtype=np.uint64)


def distinct_count(seg: np.ndarray, code: np.ndarray, n: int) -> np.ndarray:
    """Per-segment number of distinct non-zero ``code``s (float64); ``seg`` need not be sorted."""
    keep = code != 0
    s = seg[keep]
    ids, k = dense_codes(code[keep])
    if n * k <= 1 << 26:  # few values (categories, user agents): a (segment, value) bitmap
        seen = np.zeros(n * k, dtype=bool)
        seen[s * k + ids] = True
        return seen.reshape(n, k).sum(axis=1, dtype=np.int64).astype(np.float64)
    key = np.sort(s * k + ids)
    if len(key) > 1:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return np.bincount(key // k, minlength=n)[:n].astype(np.float64)


def first_uses(
    pair_seg: np.ndarray, pair_id: np.ndarray, rank: np.ndarray, user: np.ndarray, n_ids: int
) -> np.ndarray:
    """True for the pairs whose session is the user's first (lowest ``rank``) with that value."""
    key, k = dense_codes(user[pair_seg] * max(n_ids, 1) + pair_id)
    pair_rank = rank[pair_seg]
    best = np.full(k, np.iinfo(np.int64).max)
    np.minimum.at(best, key, pair_rank)
    return pair_rank == best[key]


def segmented_prev_max(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Max of ``values`` over the earlier rows of the same group (rows sorted by group, then
    time); NaN values are skipped, NaN where there is none."""
    filled = np.where(np.isnan(values), -np.inf, values)
    running = pd.Series(filled).groupby(group, sort=False).cummax().to_numpy()
    prev = np.full(len(values), -np.inf)
    if len(values) > 1:
        same = group[1:] == group[:-1]
        prev[1:] = np.where(same, running[:-1], -np.inf)
    prev[np.isneginf(prev)] = np.nan
    return prev
